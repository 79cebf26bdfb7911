#!/usr/bin/env bash
# Builds each function the way `cargo lambda watch` runs it, so the first invocation starts at
# once instead of compiling; then bench-harness (local/build-harness.sh) unless --no-harness.
#
# cargo lambda watch runs `cargo run --bin <name>` at the workspace root: `--bin` without `-p`
# resolves features over the whole workspace, so `cargo build -p <name>` would build dependencies
# with other features (other artifacts) and leave the first invocation to compile them again.
# billing-admin is built in the same command (same features, nothing compiled twice): the demo's
# reconcile step runs target/<profile>/billing-admin, and `make admin` runs it with `cargo run`.
#
# FUNCTIONS_PROFILE=debug (default) or release: release is the build `make bench` measures and
# `make soak` runs (local/up.sh then runs cargo lambda watch --release), so the two share one
# release build instead of each building its own beside the debug one.
set -euo pipefail
cd "$(dirname "$0")/.."
harness=true
if [ "${1:-}" = "--no-harness" ]; then
    harness=false
fi
case ${FUNCTIONS_PROFILE:-debug} in
debug) profile=() ;;
release) profile=(--release) ;;
*)
    echo "build-functions: FUNCTIONS_PROFILE is debug or release, not ${FUNCTIONS_PROFILE}" >&2
    exit 2
    ;;
esac
cargo build "${profile[@]}" --bin post-confirmation --bin checkout --bin portal --bin webhook \
    --bin billing-admin
if $harness; then
    local/build-harness.sh
fi
