#!/usr/bin/env bash
# The test command: installs what the tests need (as root, on Debian), then
# runs every check: formatting, lints, unit/property/integration tests and
# the QEMU guest rig. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Host packages the tests run against (real tools nobody here wrote).
# One list for the whole project: add-only, keep it sorted.
packages=(bsdutils busybox-static cpio fdisk gdisk groff-base pciutils python3-pyxs qemu-system-x86 systemd xenstore-utils)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing packages ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "test.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step() { echo "== $*"; "$@"; }
# A merge conflict left in a tracked file is a failure, whatever else passes.
no_conflict_markers() { ! git grep -nE '^(<<<<<<< |>>>>>>> )' -- . ':!Cargo.lock'; }
step no_conflict_markers
# The repository stands alone: nothing tracked points at folders beside the clone.
no_outside_paths() { ! git grep -nE '[.][.]/shared|/work/shared' -- . ':!scripts/test.sh'; }
step no_outside_paths
step cargo fmt --all --check
step cargo clippy --workspace --all-targets --locked -- -D warnings
# The layering rule and the dependency picture in docs/architecture.md.
step cargo xtask deps --check
step cargo test --workspace --locked
# The same tests from a fresh clone of HEAD in an empty folder.
step ./scripts/clean-clone-test.sh
# The rig proves it reports failures, panics, aborts and hangs. (The e1000e
# no-quiesce self-test depends on QEMU timing; run it by name, see docs/e1000e.md.)
step cargo xtask e2e --self-test rig-selftest
step cargo xtask e2e
echo "test.sh: all checks passed"
