#!/usr/bin/env bash
# Every test, from a fresh clone: installs the local tools, runs the unit tests, then starts the
# emulators and the functions, runs the end-to-end tests, the example site's browser test, a short
# soak run, the Stripe front's tests and the template checks, and stops
# everything it started, whether the tests pass or not.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python keeps the modules it compiles (see the Makefile), also when this runs without make.
unset PYTHONDONTWRITEBYTECODE

# Waits for a job started in the background and shows its log (with "failures-only", only when
# it failed); a failure ends the run with the job's exit status.
await_job() {
  local pid=$1 log=$2 what=$3 show=${4:-always} status=0
  wait "$pid" || status=$?
  if [ "$status" != 0 ] || [ "$show" = always ]; then
    cat "$log"
  fi
  if [ "$status" != 0 ]; then
    echo "$what failed (exit $status); its log is above" >&2
    exit "$status"
  fi
}

started=$(date +%s)
phase_started=$started
# How long each phase took, so the total's breakdown is in the log.
phase() {
  local now; now=$(date +%s)
  echo "=== $1: $(( now - phase_started )) s (total $(( now - started )) s)"
  phase_started=$now
}
# The install (uv, npm, apt: mostly waiting on downloads and disks) runs while the workspace
# builds; its log is shown once both are done.
mkdir -p local/.run/logs
install_log=local/.run/logs/install.log
local/install.sh >"$install_log" 2>&1 &
install_pid=$!
trap 'kill "$install_pid" 2>/dev/null || true' EXIT
cargo fmt --all -- --check
phase fmt

# Clippy runs inside the one build: clippy-driver compiles the workspace's crates, as
# `cargo clippy` does for a check (the same CLIPPY_ARGS encoding of `-- -D warnings`), so
# the dependencies compile once instead of once for clippy's check and once for the build.
# Every cargo command below (cargo lambda watch included) keeps these variables, so nothing
# is compiled twice; `make lint` is the same lint as a plain `cargo clippy`.
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver) ||
  { echo "clippy-driver not found: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

# A build from scratch gains nothing from incremental compilation's caches and pays for writing
# them: measured alternately here, the workspace's own crates built in 92-100 s without against
# 121-129 s with. Exported, so every cargo command below (cargo lambda watch's included) has the
# same setting and reuses this build.
export CARGO_INCREMENTAL=0

# One build for everything, linted: unit tests, end-to-end tests and the functions.
cargo build --workspace --all-targets
phase "build with clippy (install alongside)"
await_job "$install_pid" "$install_log" local/install.sh
trap - EXIT
phase "install (what was left after the build)"
# bench-harness (its own workspace and target directory) builds while the unit and end-to-end
# tests run; the soak is the first to need it.
harness_log=local/.run/logs/build-harness.log
local/build-harness.sh >"$harness_log" 2>&1 &
harness_pid=$!
trap 'kill "$harness_pid" 2>/dev/null || true' EXIT
local/build-functions.sh --no-harness
phase "function binaries"

# The emulators and the functions start while the unit tests run: neither needs the other.
up_log=local/.run/logs/start-emulators.log
local/up.sh >"$up_log" 2>&1 &
up_pid=$!
trap 'kill "$up_pid" "$harness_pid" 2>/dev/null || true; local/down.sh' EXIT
cargo test --workspace
phase "unit tests (the emulators starting alongside)"
await_job "$up_pid" "$up_log" local/up.sh
phase "emulators up (what was left after the unit tests)"
set -a
# shellcheck disable=SC1091
. local/.run/env
set +a

# The Stripe front's and scripts' tests start their own servers on free ports: they run while
# the end-to-end tests wait on the emulators; their log is shown after the burst.
pytest_log=local/.run/logs/pytest.log
local/.venv/bin/python -m pytest -q local/stripe_front/tests local/tests >"$pytest_log" 2>&1 &
pytest_pid=$!
# So do the template checks (cfn-lint, sam validate, the alarm and policy checks): 20 s of CPU
# that beside the build made it about as much longer.
template_log=local/.run/logs/check-template.log
local/check-template.sh >"$template_log" 2>&1 &
template_pid=$!
trap 'kill "$pytest_pid" "$template_pid" "$harness_pid" 2>/dev/null || true; local/down.sh' EXIT

# The end-to-end tests are the workspace's only ignored tests. `--workspace`, not
# `-p integration-tests`: the same features as the build above, so nothing is compiled again.
cargo test --workspace -- --ignored --test-threads=1
phase "end-to-end tests"
# The example site in headless Chromium, one user's lifecycle through its pages (skips, saying
# so, where local/install.sh could not install Debian's chromium).
local/.venv/bin/python local/browser_test.py
phase "browser test"
await_job "$harness_pid" "$harness_log" local/build-harness.sh failures-only
phase "bench-harness build (what was left after the browser test)"
# The soak run, short: 200 deliveries for 20 customers, with the AWS emulator restarted mid-run.
local/.venv/bin/python local/soak.py --customers 20 --events 200
phase soak
# The burst, short: 40 sign-ups and 20 purchases at once against API Gateway's key-creation
# rate (make burst runs 500): every payer ends with one key, no user with two.
local/.venv/bin/python local/burst.py --users 40 --buyers 20 --webhook-processes 4
phase burst
await_job "$pytest_pid" "$pytest_log" "the Stripe front's and scripts' tests"
phase "Stripe front and scripts' tests (what was left after the burst)"
await_job "$template_pid" "$template_log" local/check-template.sh
phase "template checks (what was left)"
# What the functions, cargo lambda watch and the emulators logged during all of that.
local/.venv/bin/python local/check-logs-for-secrets.py

echo "all tests passed in $(( $(date +%s) - started )) s"
