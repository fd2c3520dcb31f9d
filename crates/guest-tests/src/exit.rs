//! Ending the VM through QEMU's `isa-debug-exit` device (I/O port 0xf4): QEMU exits with
//! status `(value << 1) | 1`. The rig writes 0x10 on pass (QEMU exit 33), 0x11 on failure (35).
#![allow(unsafe_code)]

use std::process::ExitCode;

const PORT: u16 = 0xf4;

extern "C" {
    /// glibc's ioperm(2) wrapper.
    fn ioperm(
        from: std::ffi::c_ulong,
        num: std::ffi::c_ulong,
        turn_on: std::ffi::c_int,
    ) -> std::ffi::c_int;
}

/// Writes the debug-exit value for test status `code` (0 = pass). Returns only if the write did
/// not end the VM (not running under the rig).
pub fn debug_exit(code: u8) -> ExitCode {
    let value: u8 = if code == 0 { 0x10 } else { 0x11 };
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    let rc = unsafe { ioperm(PORT.into(), 1, 1) };
    if rc != 0 {
        eprintln!(
            "pcibox-guest-tests: ioperm(0x{PORT:x}): {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit in the rig; ioperm above granted access, and an
    // `out` to it touches no memory.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") PORT, in("al") value, options(nomem, nostack, preserves_flags));
    }
    eprintln!("pcibox-guest-tests: isa-debug-exit write did not end the VM");
    ExitCode::FAILURE
}
