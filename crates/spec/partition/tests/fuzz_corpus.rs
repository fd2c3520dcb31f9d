//! Replays the `partition_table` fuzz corpus (`fuzz/corpus/partition_table`) on stable.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_corpus() {
    replay::replay("partition_table", |_, data| {
        partition_table::fuzzing::table(data)
    });
}
