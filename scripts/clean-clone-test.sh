#!/usr/bin/env bash
# The repository stands alone: clone HEAD into an empty temporary folder (no
# sibling folders, nothing from the developer's tree) and run the host test
# suite there — every test that reads fixtures, corpora or data files reads
# them from the clone. Extra arguments go to `cargo test` (default:
# --workspace). Uncommitted changes are not part of the clone: commit first.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
parent=$(mktemp -d)
trap 'rm -rf "$parent"' EXIT
git clone -q --no-local "$repo" "$parent/pcibox"
cd "$parent/pcibox"
# Nothing beside the clone: the parent holds the clone and nothing else.
[[ $(ls -A "$parent") == pcibox ]]
# A target folder of its own (kept between runs, inside the developer's
# target/), so the clone's build never invalidates the main one.
export CARGO_TARGET_DIR="$repo/target/clean-clone"
if (($#)); then args=("$@"); else args=(--workspace); fi
echo "clean-clone-test: $(git log -1 --format='%h %s' | cut -c1-72) in $parent/pcibox"
cargo test --locked "${args[@]}"
