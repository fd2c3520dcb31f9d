//! Replays the `pci_virt` fuzz corpus (`fuzz/corpus/pci_virt`) on stable.

#[path = "../../../../fuzz/replay.rs"]
mod replay;

#[test]
fn replay_corpus() {
    replay::replay("pci_virt", |_, data| pci_virt::fuzzing::run(data));
}
