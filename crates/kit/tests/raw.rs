//! `Device::map_raw`: caller memory mapped for DMA, against the fake (whose
//! DMA space reaches file-less windows with volatile copies).
#![allow(clippy::unwrap_used, unsafe_code)]

use pcibox_kit::{Device, IOVA_FLOOR};
use pcibox_model::fake::Fake;

#[test]
fn raw_caller_memory_maps_and_unmaps() {
    let f = Fake::new(1, 2);
    let d = Device::new(Box::new(f.clone())).unwrap();
    let p = d.page_size() as usize;
    let mut mem = vec![0u8; 3 * p];
    let start = mem.as_mut_ptr().align_offset(p);
    mem[start..start + 4].copy_from_slice(b"mine");
    let base = mem.as_mut_ptr();
    // SAFETY: the page-aligned window lies in `mem`, which outlives the
    // mapping (dropped below) and is not touched while mapped.
    let m = unsafe { d.map_raw(base.add(start), p, true) }.unwrap();
    assert_eq!(f.mapping_count(), 1);
    assert!(m.iova() >= IOVA_FLOOR);
    assert_eq!(m.len(), p as u64);
    // The device reaches exactly the mapped page.
    assert_eq!(f.dma_read(m.iova(), 4).unwrap(), b"mine");
    f.dma_write(m.iova() + 8, b"device").unwrap();
    assert!(f.dma_write(m.iova() + p as u64 - 2, b"xyz").is_err());
    drop(m);
    assert_eq!(f.mapping_count(), 0);
    assert_eq!(&mem[start + 8..start + 14], b"device");
    assert!(f.dma_read(IOVA_FLOOR, 1).is_err(), "unmapped on drop");
    // SAFETY: misaligned on purpose; refused before anything is mapped.
    assert!(unsafe { d.map_raw(mem.as_mut_ptr().add(start + 1), p, true) }.is_err());
    assert_eq!(f.mapping_count(), 0);
}
