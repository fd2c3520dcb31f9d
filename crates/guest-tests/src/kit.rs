//! Guest tests of the `kit` area (names start with `kit-`). See docs/rig.md.

#[allow(unused_imports)]
use crate::test::{Ctx, Needs, Outcome, Test};

pub const TESTS: &[Test] = &[];
