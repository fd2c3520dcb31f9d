//! Parse arbitrary bytes as a stream of vfio-user messages, as a server or
//! client reading its socket would; whatever parses must re-emit to bytes
//! that parse to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfio_user_wire::{check_stream, parse_message};

fuzz_target!(|data: &[u8]| {
    check_stream(data);
    let _ = parse_message(data);
});
