//! Replays the fuzz corpus (`fuzz/corpus/vfio_user_message`) through the fuzz
//! target's body on stable Rust.

use std::path::PathBuf;

#[test]
fn replay_vfio_user_message_corpus() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../fuzz/corpus/vfio_user_message");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()));
    let mut files = 0;
    let mut messages = 0;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        messages += vfio_user_wire::check_stream(&bytes);
        let _ = vfio_user_wire::parse_message(&bytes);
        files += 1;
    }
    assert!(files > 0, "corpus folder {} is empty", dir.display());
    // The seeds include valid messages of every kind: most must parse.
    assert!(
        messages >= 20,
        "only {messages} messages parsed from {files} files"
    );
}
