//! Corpus replay on stable, shared by each fuzzed crate's `tests/fuzz_corpus.rs`
//! (included there with `#[path]`; every fuzzed crate sits three folders below
//! the repository root, so `CARGO_MANIFEST_DIR/../../../fuzz` is this folder).

use std::path::{Path, PathBuf};

/// The corpus folder of fuzz target `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of `target`'s corpus and returns how many there
/// were; panics if the folder is missing, unreadable or empty.
pub fn replay(target: &str, mut check: impl FnMut(&Path, &[u8])) -> usize {
    let dir = corpus_dir(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()));
    let mut files = 0;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&path, &data);
        files += 1;
    }
    assert!(files > 0, "corpus folder {} is empty", dir.display());
    files
}
