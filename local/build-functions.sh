#!/usr/bin/env bash
# Builds each function the way `cargo lambda watch` runs it (`cargo run --bin <name>`, one
# package selected), so the first invocation starts at once instead of compiling; and
# bench-harness (its own workspace, release), the Runtime API the soak run's concurrent webhook
# processes and `make bench` poll.
set -euo pipefail
cd "$(dirname "$0")/.."
for function in post-confirmation checkout portal webhook; do
    cargo build -p "$function"
done
(cd bench/harness && CARGO_TARGET_DIR="$PWD/../../target" cargo build --release --locked)
