//! Replays the `nvme_identify` fuzz corpus (`fuzz/corpus/nvme_identify`) on stable.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_corpus() {
    replay::replay("nvme_identify", |_, data| {
        nvme_spec::fuzzing::identify(data)
    });
}
