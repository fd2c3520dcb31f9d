//! `cargo xtask`: build and test automation.

fn main() -> std::process::ExitCode {
    eprintln!("usage: cargo xtask <e2e> …  (nothing here yet)");
    std::process::ExitCode::FAILURE
}
