//! Replays the `pci_config` fuzz corpus (`fuzz/corpus/pci_config`) on stable.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_corpus() {
    replay::replay("pci_config", |_, data| pci_lspci::fuzzing::config(data));
}
