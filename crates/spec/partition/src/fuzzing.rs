//! The body of the `partition_table` fuzz target, shared with the stable test that replays its
//! corpus (`tests/fuzz_corpus.rs`).

use crate::{read_table, sfdisk, sgdisk, SliceSource, Table};

/// The first byte picks the block size (even: 512, odd: 4096), the rest is the disk image.
/// Reads the table and formats whatever is accepted; panics only on a broken promise.
pub fn table(data: &[u8]) {
    let Some((&sel, image)) = data.split_first() else {
        return;
    };
    let block_size = if sel & 1 == 0 { 512 } else { 4096 };
    if let Ok(table) = read_table(&mut SliceSource::new(image, block_size)) {
        let text = sfdisk::dump(&table, "fuzz.img");
        assert!(text.starts_with("label: "));
        let _ = table.warnings();
        if let Table::Gpt(g) = &table {
            let _ = sgdisk::print(g, "fuzz.img");
        }
    }
}
