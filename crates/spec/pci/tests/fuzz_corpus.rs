//! Replays the `pci_config` fuzz corpus (`fuzz/corpus/pci_config`) on stable.

#[test]
fn replay_corpus() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fuzz/corpus/pci_config");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        pci::fuzzing::config(&data);
        n += 1;
    }
    assert!(n > 0, "{} is empty", dir.display());
}
