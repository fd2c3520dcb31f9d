//! Test outcomes and the lines `cargo xtask e2e` prints for them.

use std::time::Duration;

/// How one guest test ended, as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    /// No result within the test's timeout after it started (or within the boot timeout).
    Hung(String),
}

/// What a test's needs say the outcome should be (`pass`, `fail`, `hung`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Pass,
    Fail,
    Hung,
}

impl Outcome {
    pub fn matches(&self, expect: Expect) -> bool {
        matches!(
            (self, expect),
            (Outcome::Pass, Expect::Pass)
                | (Outcome::Fail(_), Expect::Fail)
                | (Outcome::Hung(_), Expect::Hung)
        )
    }

    fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Hung(_) => "HUNG",
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The line for one test. For an ordinary test (`expect` = Pass):
/// `PASS name (1.9 s)`, `FAIL name: reason (1.9 s)`, `HUNG name: reason`.
/// For a self-test the verdict is whether the outcome matched the expectation:
/// `PASS name (FAIL as expected: reason; 2.0 s)`.
pub fn line(name: &str, outcome: &Outcome, expect: Expect, took: Duration) -> (bool, String) {
    let ok = outcome.matches(expect);
    if expect != Expect::Pass {
        let detail = match outcome {
            Outcome::Pass => String::new(),
            Outcome::Fail(r) | Outcome::Hung(r) => format!(": {r}"),
        };
        let verdict = if ok { "PASS" } else { "FAIL" };
        let how = if ok { "as expected" } else { "but expected" };
        let want = match expect {
            Expect::Pass => "PASS",
            Expect::Fail => "FAIL",
            Expect::Hung => "HUNG",
        };
        let text = if ok {
            format!(
                "{verdict} {name} ({} {how}{detail}; {})",
                outcome.word(),
                secs(took)
            )
        } else {
            format!(
                "{verdict} {name}: {}{detail} {how} {want} ({})",
                outcome.word(),
                secs(took)
            )
        };
        return (ok, text);
    }
    let text = match outcome {
        Outcome::Pass => format!("PASS {name} ({})", secs(took)),
        Outcome::Fail(r) => format!("FAIL {name}: {r} ({})", secs(took)),
        Outcome::Hung(r) => format!("HUNG {name}: {r}"),
    };
    (ok, text)
}

/// The closing line, with the spread of boot times (QEMU start to test start).
pub fn summary(passed: usize, failed: usize, took: Duration, boots: &[Duration]) -> String {
    let mut boots = boots.to_vec();
    boots.sort();
    match (boots.first(), boots.get(boots.len() / 2), boots.last()) {
        (Some(min), Some(median), Some(max)) => format!(
            "{passed} passed, {failed} failed ({}; boot min {:.1} / median {:.1} / max {:.1} s)",
            secs(took),
            min.as_secs_f64(),
            median.as_secs_f64(),
            max.as_secs_f64()
        ),
        _ => format!("{passed} passed, {failed} failed ({})", secs(took)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(1940);

    #[test]
    fn ordinary_lines() {
        assert_eq!(
            line("rig-boot", &Outcome::Pass, Expect::Pass, T),
            (true, "PASS rig-boot (1.9 s)".into())
        );
        assert_eq!(
            line("rig-x", &Outcome::Fail("no device".into()), Expect::Pass, T),
            (false, "FAIL rig-x: no device (1.9 s)".into())
        );
        assert_eq!(
            line(
                "rig-y",
                &Outcome::Hung("no result 20 s after start".into()),
                Expect::Pass,
                T
            ),
            (false, "HUNG rig-y: no result 20 s after start".into())
        );
    }

    #[test]
    fn self_test_lines() {
        let (ok, text) = line(
            "rig-selftest-hang",
            &Outcome::Hung("3 s".into()),
            Expect::Hung,
            T,
        );
        assert!(ok);
        assert_eq!(
            text,
            "PASS rig-selftest-hang (HUNG as expected: 3 s; 1.9 s)"
        );
        let (ok, text) = line("rig-selftest-fail", &Outcome::Pass, Expect::Fail, T);
        assert!(!ok);
        assert_eq!(
            text,
            "FAIL rig-selftest-fail: PASS but expected FAIL (1.9 s)"
        );
        assert!(!line("s", &Outcome::Fail("x".into()), Expect::Hung, T).0);
    }

    #[test]
    fn summary_line() {
        assert_eq!(
            summary(3, 1, Duration::from_secs(12), &[]),
            "3 passed, 1 failed (12.0 s)"
        );
        let boots = [3.0, 2.5, 9.0].map(Duration::from_secs_f64);
        assert_eq!(
            summary(3, 0, Duration::from_secs(20), &boots),
            "3 passed, 0 failed (20.0 s; boot min 2.5 / median 3.0 / max 9.0 s)"
        );
    }
}
