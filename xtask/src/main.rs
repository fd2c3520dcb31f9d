//! `cargo xtask`: build and test automation.
//!
//! - `cargo xtask e2e [FILTER…] [--disk PATH] [-j N] [--self-test] [--list] [-v]`: the QEMU
//!   guest rig (docs/rig.md).
//! - `cargo xtask deps [--check]`: the crate dependency picture in docs/architecture.md, from
//!   `cargo metadata`, and the layering rule checked on it.

mod cpio;
mod deps;
mod e2e;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("e2e") => e2e::main(args.collect()),
        Some("deps") => deps::main(args.collect()),
        _ => {
            eprintln!(
                "usage: cargo xtask e2e [FILTER…] [--disk PATH] [-j N] [--self-test] [--list] [-v]\n       cargo xtask deps [--check]"
            );
            ExitCode::from(2)
        }
    }
}
