//! IDENTIFY controller / namespace / namespace-list data and completion entries: bytes a device
//! (or a hostile device model) controls. The body lives in `nvme_spec::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nvme_spec::fuzzing::identify(data));
