//! Guest tests of the `e1000e` area (names start with `e1000e-`). See docs/rig.md.

#[allow(unused_imports)]
use crate::test::{Ctx, Needs, Outcome, Test};

pub const TESTS: &[Test] = &[];
