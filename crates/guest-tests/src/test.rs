//! What a guest test is, what it needs from the VM, and how it fails.

use crate::driver::{Driver, Transport};
use serde::Serialize;
use std::fmt;

/// One guest test. Each runs alone in a freshly booted VM.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    /// Starts with the area: `rig-…`, `kit-…`, `nvme-…`, `e1000e-…`, `vfio-user-…`.
    pub name: &'static str,
    /// What the test checks, one line (shown by `cargo xtask e2e --list`).
    pub about: &'static str,
    pub run: fn(&Ctx) -> Outcome,
    pub needs: Needs,
}

/// The result of a test body: `Ok(())` passes; `Err` fails with its message.
pub type Outcome = Result<(), Failure>;

/// The disk image attached to the NVMe controller (serial `pcibox-nvme0`, `0000:00:04.0`).
/// `cargo xtask e2e --disk PATH` replaces it with PATH for every test that works on any disk
/// (any partition table or none; `/rig/disk.kind` is then `user`); a test that needs this image
/// declares [`Needs::own_disk`] and keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disk {
    /// 64 MiB of zeros.
    Blank,
    /// 64 MiB, GPT with three partitions.
    Gpt,
    /// 64 MiB, MBR with a primary, an extended and two logical partitions.
    Mbr,
    /// The GPT image with the primary header's CRC zeroed (the backup header is intact).
    DamagedGpt,
}

/// How the host should judge the test. Only hidden rig self-tests expect anything but `Pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Pass,
    Fail,
    Hung,
}

/// What the VM must provide for a test.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Needs {
    /// Seconds the test body may run (after boot) before the host reports it HUNG.
    pub timeout_s: u32,
    pub disk: Disk,
    /// The test needs `disk` itself: `--disk PATH` does not replace it.
    pub own_disk: bool,
    /// The test sends QEMU monitor commands (`Ctx::monitor`); refused otherwise.
    pub monitor: bool,
    /// Not part of the default run (rig self-tests: `cargo xtask e2e --self-test`).
    pub hidden: bool,
    pub expect: Expect,
    /// Where the test's driver commands run ([`crate::driver`]).
    pub transport: Transport,
    /// The test also exists as `vfio-user-NAME`, run over vfio-user as nobody.
    pub twin: bool,
}

impl Needs {
    /// A blank disk, no monitor, 20 s.
    pub const DEFAULT: Needs = Needs {
        timeout_s: 20,
        disk: Disk::Blank,
        own_disk: false,
        monitor: false,
        hidden: false,
        expect: Expect::Pass,
        transport: Transport::Vfio,
        twin: false,
    };

    pub const fn disk(self, disk: Disk) -> Needs {
        Needs { disk, ..self }
    }
    /// The test needs its declared image (`disk`), not whatever `--disk PATH` attaches.
    pub const fn own_disk(self) -> Needs {
        Needs {
            own_disk: true,
            ..self
        }
    }
    pub const fn timeout_s(self, timeout_s: u32) -> Needs {
        Needs { timeout_s, ..self }
    }
    pub const fn monitor(self) -> Needs {
        Needs {
            monitor: true,
            ..self
        }
    }
    /// Declares the test's vfio-user twin (see [`crate::driver`]).
    pub const fn twin_over_vfio_user(self) -> Needs {
        Needs { twin: true, ..self }
    }
    /// A hidden rig self-test whose outcome must be `expect`.
    pub const fn self_test(self, expect: Expect) -> Needs {
        Needs {
            hidden: true,
            expect,
            ..self
        }
    }
}

/// One entry of `list --json`.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub name: &'static str,
    pub about: &'static str,
    pub needs: Needs,
}

impl Test {
    /// The `vfio-user-NAME` twin of a test that declares one: the same body, its driver run as
    /// nobody over vfio-user, with twice the time (every trapped register access is a message).
    pub fn twin(&self) -> Option<Test> {
        if !self.needs.twin {
            return None;
        }
        // Built once per process (the test list is), so leaking the two strings is bounded.
        let name: &'static str = Box::leak(format!("vfio-user-{}", self.name).into_boxed_str());
        let about: &'static str =
            Box::leak(format!("as nobody over vfio-user: {}", self.about).into_boxed_str());
        Some(Test {
            name,
            about,
            run: self.run,
            needs: Needs {
                transport: Transport::VfioUser,
                twin: false,
                timeout_s: self.needs.timeout_s * 2,
                ..self.needs
            },
        })
    }

    pub fn listing(&self) -> Listing {
        Listing {
            name: self.name,
            about: self.about,
            needs: self.needs,
        }
    }
}

/// Names must be unique and start with a known area prefix.
pub fn check_names<'a>(tests: impl Iterator<Item = &'a Test>) -> Result<(), String> {
    const PREFIXES: &[&str] = &["rig-", "kit-", "nvme-", "e1000e-", "vfio-user-"];
    let mut seen = std::collections::HashSet::new();
    for t in tests {
        if !PREFIXES.iter().any(|p| t.name.starts_with(p)) {
            return Err(format!(
                "test name {:?} does not start with an area prefix",
                t.name
            ));
        }
        if t.name.chars().any(|c| c.is_whitespace()) {
            return Err(format!("test name {:?} contains whitespace", t.name));
        }
        if !seen.insert(t.name) {
            return Err(format!("duplicate test name {:?}", t.name));
        }
    }
    Ok(())
}

/// Why a test failed: a message, possibly built up with `Context::context`.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure(msg.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any error converts (so `?` works on io, parse, … errors), with its whole
/// cause chain; add context with `.context(…)`.
impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(pcibox_kit::Chain(&e).to_string())
    }
}

/// `.context("what was being done")` on results and options.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure>;
}

impl<T, E: Into<Failure>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{what}: {}", e.into())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.ok_or_else(|| Failure(what.to_string()))
    }
}

/// Fail the test with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::test::Failure::new(format!($($arg)*))) };
}

/// Fail the test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => { if !$cond { $crate::fail!($($arg)*); } };
}

/// Fail unless `left == right`, showing both.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)*) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    $crate::fail!("{}: {:?} != {:?}", format!($($arg)*), l, r);
                }
            }
        }
    };
}

/// What a running test can ask of its VM.
#[derive(Debug)]
pub struct Ctx {
    pub test: &'static Test,
    /// How driver commands reach the device.
    pub driver: Driver,
}

impl Ctx {
    pub fn new(test: &'static Test) -> Ctx {
        Ctx {
            test,
            driver: Driver::new(test.needs.transport),
        }
    }

    /// Runs a QEMU monitor (HMP) command on the host and returns its output.
    /// The test must declare `Needs::monitor()`.
    pub fn monitor(&self, command: &str) -> Result<String, Failure> {
        if !self.test.needs.monitor {
            return Err(Failure::new(format!(
                "monitor command {command:?}: the test does not declare Needs::monitor()"
            )));
        }
        crate::host::request("monitor", command)
    }

    /// A file the host put into `/rig/` (e.g. `sfdisk.dump`), as text.
    pub fn rig_file(&self, name: &str) -> Result<String, Failure> {
        let path = format!("/rig/{name}");
        std::fs::read_to_string(&path).context(&path)
    }

    /// A file the host put into `/rig/`, as bytes.
    pub fn rig_bytes(&self, name: &str) -> Result<Vec<u8>, Failure> {
        let path = format!("/rig/{name}");
        std::fs::read(&path).context(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &Ctx) -> Outcome {
        Ok(())
    }

    #[test]
    fn names_are_checked() {
        let t = |name| Test {
            name,
            about: "",
            run: ok,
            needs: Needs::DEFAULT,
        };
        assert!(check_names([t("rig-a"), t("nvme-b")].iter()).is_ok());
        assert!(check_names([t("rig-a"), t("rig-a")].iter()).is_err());
        assert!(check_names([t("other-a")].iter()).is_err());
        assert!(check_names([t("rig-a b")].iter()).is_err());
    }

    #[test]
    fn needs_builders_compose() {
        let n = Needs::DEFAULT.disk(Disk::Gpt).monitor().timeout_s(5);
        assert_eq!(n.disk, Disk::Gpt);
        assert!(n.monitor && !n.hidden && !n.own_disk);
        assert!(n.own_disk().own_disk);
        assert_eq!(n.timeout_s, 5);
        let json = serde_json::to_string(&Needs::DEFAULT.disk(Disk::DamagedGpt)).expect("json");
        assert!(json.contains("\"disk\":\"damaged-gpt\""), "{json}");
        assert!(json.contains("\"own_disk\":false"), "{json}");
    }

    #[test]
    fn context_prefixes_the_cause() {
        let r: Result<(), Failure> = Err(Failure::new("boom"));
        assert_eq!(
            r.context("reading x").err().map(|f| f.to_string()),
            Some("reading x: boom".into())
        );
        // A typed error brings its whole cause chain, each cause once.
        let os = std::io::Error::from_raw_os_error(12);
        let r: Result<(), pcibox_kit::Error> = Err(pcibox_kit::Error::Os {
            op: "mmap",
            source: std::io::Error::from_raw_os_error(12),
        });
        assert_eq!(
            r.context("mapping").err().map(|f| f.to_string()),
            Some(format!("mapping: mmap failed: {os}"))
        );
        assert_eq!(
            None::<u8>.context("missing").err().map(|f| f.to_string()),
            Some("missing".into())
        );
    }
}
