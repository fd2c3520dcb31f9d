//! QEMU must not outlive xtask (Ctrl-C, a CI timeout): the kernel kills it when we die.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arranges for the command's process to get SIGKILL when this process exits.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs between fork and exec; it makes one raw prctl(2) syscall (via
    // rustix, no allocation, no locks), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        })
    }
}
