#!/usr/bin/env bash
# Every test, from a fresh clone: installs the local tools, runs the unit tests, then starts the
# emulators and the functions, runs the end-to-end tests, a short soak run and the Stripe front's
# tests, and stops
# everything it started, whether the tests pass or not.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
phase_started=$started
# How long each phase took, so the total's breakdown is in the log.
phase() {
  local now; now=$(date +%s)
  echo "=== $1: $(( now - phase_started )) s (total $(( now - started )) s)"
  phase_started=$now
}
local/install.sh
phase install

local/check-template.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
phase "template check, fmt, clippy"

# One build for everything: unit tests, end-to-end tests and the functions.
cargo build --workspace --all-targets
phase build
cargo test --workspace
phase "unit tests"
local/build-functions.sh
phase "function binaries"

trap 'local/down.sh' EXIT
local/up.sh
phase "emulators up"
set -a
# shellcheck disable=SC1091
. local/.run/env
set +a

# The end-to-end tests are the workspace's only ignored tests. `--workspace`, not
# `-p integration-tests`: the same features as the build above, so nothing is compiled again.
cargo test --workspace -- --ignored --test-threads=1
phase "end-to-end tests"
# The soak run, short: 200 deliveries for 20 customers, with the AWS emulator restarted mid-run.
local/.venv/bin/python local/soak.py --customers 20 --events 200
phase soak
local/.venv/bin/python -m pytest -q local/stripe_front/tests local/tests
phase "Stripe front tests"
# What the functions, cargo lambda watch and the emulators logged during all of that.
local/.venv/bin/python local/check-logs-for-secrets.py

echo "all tests passed in $(( $(date +%s) - started )) s"
