#!/usr/bin/env bash
# Builds each function the way `cargo lambda watch` runs it (`cargo run --bin <name>`, one
# package selected), so the first invocation starts at once instead of compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
for function in post-confirmation checkout portal webhook; do
    cargo build -p "$function"
done
