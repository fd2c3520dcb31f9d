//! Arbitrary bytes as e1000 descriptors, ring indices and IVAR values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    e1000_spec::check_descriptor_bytes(data);
});
