//! What the kit's integration tests share.
#![allow(clippy::unwrap_used, dead_code)]

/// Lines of /proc/self/maps that map the memfd named `name`.
pub fn process_mappings_of(name: &str) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("/memfd:{name} ")))
        .count()
}
