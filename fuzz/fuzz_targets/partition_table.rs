//! The partition table reader over an arbitrary disk image. The body lives in
//! `partition_table::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partition_table::fuzzing::table(data));
