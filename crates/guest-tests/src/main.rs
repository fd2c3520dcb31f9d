//! `pcibox-guest-tests`: the tests that run inside the QEMU guest rig.
//!
//! - `pcibox-guest-tests list [--json] [--all]` (host or guest): the tests and what each needs
//!   from the VM; `cargo xtask e2e` learns the needs from `list --json`.
//! - `pcibox-guest-tests run NAME` (guest, started by the rig's `/init`): runs one test and prints
//!   `@@rig result pass` or `@@rig result fail: REASON` on the console. Exit 0 on pass.
//! - `pcibox-guest-tests exit CODE` (guest): ends the VM through QEMU's isa-debug-exit device.
//!
//! See docs/rig.md for how to add a test.

mod driver;
mod exit;
mod guest;
mod host;
mod test;

use std::process::ExitCode;
use test::{Ctx, Test};

/// Declares the areas: one line per area, each a module `src/NAME.rs` with `pub const TESTS`.
macro_rules! areas {
    ($($area:ident,)*) => {
        $(mod $area;)*
        /// Every area's tests, in order.
        const AREAS: &[&[Test]] = &[$($area::TESTS,)*];
    };
}

areas! {
    rig,
    kit,
    nvme,
    e1000e,
    vfio_user,
}

/// Every test: each area's, then the vfio-user twins of those that declare one.
fn all_tests() -> impl Iterator<Item = &'static Test> {
    static ALL: std::sync::OnceLock<Vec<Test>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let declared = AREAS.iter().flat_map(|area| area.iter());
        let twins: Vec<Test> = declared.clone().filter_map(Test::twin).collect();
        declared.copied().chain(twins).collect()
    })
    .iter()
}

fn usage() -> ExitCode {
    eprintln!("usage: pcibox-guest-tests list [--json] [--all] | run NAME | exit CODE");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["list", flags @ ..] => list(flags),
        ["run", name] => run(name),
        ["exit", code] => match code.parse::<u8>() {
            Ok(code) => exit::debug_exit(code),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

fn list(flags: &[&str]) -> ExitCode {
    let json = flags.contains(&"--json");
    let all = flags.contains(&"--all") || json;
    if let Some(bad) = flags.iter().find(|f| !matches!(**f, "--json" | "--all")) {
        eprintln!("pcibox-guest-tests: unknown flag {bad}");
        return usage();
    }
    if let Err(dup) = test::check_names(all_tests()) {
        eprintln!("pcibox-guest-tests: {dup}");
        return ExitCode::FAILURE;
    }
    let tests = all_tests().filter(|t| all || !t.needs.hidden);
    if json {
        let list: Vec<_> = tests.map(Test::listing).collect();
        match serde_json::to_string_pretty(&list) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("pcibox-guest-tests: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        for t in tests {
            println!("{}", t.name);
        }
    }
    ExitCode::SUCCESS
}

fn run(name: &str) -> ExitCode {
    let Some(test) = all_tests().find(|t| t.name == name) else {
        println!("@@rig result fail: no test named {name:?}");
        return ExitCode::FAILURE;
    };
    println!("@@rig start {name}");
    let ctx = Ctx::new(test);
    // A panic is a failure like any other: report it with its message.
    // After a panic the context is only dropped (its servers killed), never used again.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (test.run)(&ctx)));
    let verdict = match outcome {
        // A vfio-user twin also needs its servers to stop cleanly.
        Ok(Ok(())) => ctx.driver.release_all().map_err(|f| f.to_string()),
        Ok(Err(failure)) => Err(failure.to_string()),
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    };
    match verdict {
        Ok(()) => {
            println!("@@rig result pass");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            // One line: the host prints the reason after `FAIL name:`.
            println!("@@rig result fail: {}", reason.replace('\n', " | "));
            ExitCode::FAILURE
        }
    }
}
