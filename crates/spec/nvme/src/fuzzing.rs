//! The body of the `nvme_identify` fuzz target, shared with the stable test that replays its
//! corpus (`tests/fuzz_corpus.rs`): one definition of what "handles any bytes" means.

use crate::identify::{parse_namespace_list, IdentifyController, IdentifyData, IdentifyNamespace};
use crate::{Completion, CompletionEntry, IDENTIFY_SIZE};

/// Parses `data` as a completion entry and as IDENTIFY controller / namespace / namespace-list
/// data (zero-padded to 4096 bytes), checking what the parsers promise. Panics on a broken
/// promise, which is what a fuzzer wants.
pub fn identify(data: &[u8]) {
    if let Ok(cqe) = CompletionEntry::new_checked(data) {
        let c = Completion::parse(&cqe);
        let _ = c.status.to_string();
    }
    let mut page = vec![0u8; IDENTIFY_SIZE];
    let n = data.len().min(page.len());
    page[..n].copy_from_slice(&data[..n]);
    let Ok(view) = IdentifyData::new_checked(&page[..]) else {
        return;
    };
    if let Ok(c) = IdentifyController::parse(&view) {
        let mut out = vec![0u8; IDENTIFY_SIZE];
        if c.emit(&mut out).is_ok() {
            let again = IdentifyData::new_checked(&out[..])
                .ok()
                .and_then(|v| IdentifyController::parse(&v).ok());
            assert_eq!(again.as_ref(), Some(&c), "controller emit/parse round trip");
        }
        let _ = c.max_transfer(4096);
    }
    if let Ok(ns) = IdentifyNamespace::parse(&view) {
        assert!(ns.block_size() >= 512);
        let _ = ns.capacity_bytes();
    }
    assert!(parse_namespace_list(&view).len() <= 1024);
}
