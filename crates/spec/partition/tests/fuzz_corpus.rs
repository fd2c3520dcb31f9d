//! Replays the `partition_table` fuzz corpus (`fuzz/corpus/partition_table`) on stable.

#[test]
fn replay_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../fuzz/corpus/partition_table");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        partition_table::fuzzing::table(&data);
        n += 1;
    }
    assert!(n > 0, "{} is empty", dir.display());
}
