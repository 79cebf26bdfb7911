#!/usr/bin/env bash
# Builds each function the way `cargo lambda watch` runs it, so the first invocation starts at
# once instead of compiling; and bench-harness (its own workspace, release), the Runtime API the
# soak run's concurrent webhook processes and `make bench` poll.
#
# cargo lambda watch runs `cargo run --bin <name>` at the workspace root: `--bin` without `-p`
# resolves features over the whole workspace, so `cargo build -p <name>` would build dependencies
# with other features (other artifacts) and leave the first invocation to compile them again.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin post-confirmation --bin checkout --bin portal --bin webhook
(cd bench/harness && CARGO_TARGET_DIR="$PWD/../../target" cargo build --release --locked)
