//! Write (and read) sequences against a device model or a firewall over
//! arbitrary device bytes, checking the policy's invariants after each
//! write. The body lives in `pci_virt::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pci_virt::fuzzing::run(data));
