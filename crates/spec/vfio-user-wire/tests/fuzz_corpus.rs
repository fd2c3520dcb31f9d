//! Replays the fuzz corpus (`fuzz/corpus/vfio_user_message`) through the fuzz
//! target's body on stable Rust.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_vfio_user_message_corpus() {
    let mut messages = 0;
    let files = replay::replay("vfio_user_message", |_, bytes| {
        messages += vfio_user_wire::check_stream(bytes);
        let _ = vfio_user_wire::parse_message(bytes);
    });
    // The seeds include valid messages of every kind: most must parse.
    assert!(
        messages >= 20,
        "only {messages} messages parsed from {files} files"
    );
}
