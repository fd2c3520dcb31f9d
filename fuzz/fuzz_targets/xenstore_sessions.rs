//! Structured sessions of six XenStore connections — transactions, watches,
//! domains, a log that runs out of room — against one store, checking its
//! invariants after every step (see `pcibox_xenstore::fuzzing::check_sessions`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pcibox_xenstore::fuzzing::check_sessions(data);
});
