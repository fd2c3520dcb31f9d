//! The vfio-user server's whole message handling: arbitrary bytes sent by a
//! client over a real socket to a server exporting the kit's fake device.
//! Nothing may panic or hang; the replay test also checks the device is left
//! clean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcibox_model::fake::Fake;
use pcibox_kit::IrqKind;

fuzz_target!(|data: &[u8]| {
    let fake = Fake::new(0x8086, 0x10d3)
        .with_region(0, 0x4000, vec![0..0x4000])
        .with_region(2, 0x1000, vec![])
        .with_irqs(IrqKind::Msix, 4)
        .with_irqs(IrqKind::Intx, 1);
    pcibox_vfio_user::fuzzing::serve_bytes(Box::new(fake.clone()), data);
    assert!(fake.irq_enabled().is_none(), "interrupts left on");
    assert_eq!(fake.mapping_count(), 0, "DMA left mapped");
});
