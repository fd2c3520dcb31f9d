//! PCI configuration space as a spec crate: no I/O, no `unsafe`.
#![forbid(unsafe_code)]
