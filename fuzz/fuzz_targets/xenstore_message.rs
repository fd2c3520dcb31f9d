//! Arbitrary bytes as the traffic of three XenStore connections into one
//! store (see `pcibox_xenstore::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pcibox_xenstore::fuzzing::check_message_stream(data);
});
