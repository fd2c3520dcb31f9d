//! Replays the `xenstore_message` fuzz corpus on stable.

use std::path::PathBuf;

#[test]
fn replay_xenstore_message_corpus() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fuzz/corpus/xenstore_message");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus folder {} missing: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("readable corpus folder").path();
        let data = std::fs::read(&path).expect("readable corpus file");
        pcibox_xenstore::fuzzing::check_message_stream(&data);
        n += 1;
    }
    assert!(n > 0, "corpus folder {} is empty", dir.display());
}
