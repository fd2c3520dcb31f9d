//! Guest tests of the `vfio-user` area (names start with `vfio-user-`). See docs/rig.md.

#[allow(unused_imports)]
use crate::test::{Ctx, Needs, Outcome, Test};

pub const TESTS: &[Test] = &[];
