//! Guest tests of the `nvme` area (names start with `nvme-`). See docs/rig.md.

#[allow(unused_imports)]
use crate::test::{Ctx, Needs, Outcome, Test};

pub const TESTS: &[Test] = &[];
