//! Replays the fuzz corpora (`fuzz/corpus/xenstore_message` and
//! `fuzz/corpus/xenstore_sessions`) on stable, and runs random sessions.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

use proptest::prelude::*;

#[test]
fn replay_corpus() {
    replay::replay("xenstore_message", |_, data| {
        pcibox_xenstore::fuzzing::check_message_stream(data)
    });
}

#[test]
fn replay_sessions_corpus() {
    replay::replay("xenstore_sessions", |_, data| {
        pcibox_xenstore::fuzzing::check_sessions(data)
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn random_sessions_keep_the_invariants(data in prop::collection::vec(any::<u8>(), 0..600)) {
        pcibox_xenstore::fuzzing::check_sessions(&data);
    }
}
