//! Replays the `e1000_descriptors` fuzz corpus (`fuzz/corpus/e1000_descriptors`) on stable.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_corpus() {
    replay::replay("e1000_descriptors", |_, data| {
        e1000_spec::check_descriptor_bytes(data)
    });
}
