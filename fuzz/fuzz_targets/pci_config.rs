//! Config spaces, lspci dumps and pci.ids text through the `pci` crate's
//! parsers, walks and lspci rendering. The body lives in `pci_lspci::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pci_lspci::fuzzing::config(data));
