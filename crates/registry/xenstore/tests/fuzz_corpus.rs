//! Replays the `xenstore_message` fuzz corpus (`fuzz/corpus/xenstore_message`) on stable.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_corpus() {
    replay::replay("xenstore_message", |_, data| {
        pcibox_xenstore::fuzzing::check_message_stream(data)
    });
}
