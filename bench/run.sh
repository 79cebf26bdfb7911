#!/usr/bin/env bash
# make bench: builds ours (release), the Node.js and Python peers and bench-harness, starts the
# local environment (moto, cognito-local and the Stripe front: the store, the real mix and the
# lifecycle call count), measures (bench/run.py, bench/lifecycle_calls.py) and writes
# bench/results.md and bench/results.png. Everything listens on 127.0.0.1 and is stopped at the
# end, also on failure.
#   BENCH_ROUNDS=20 (default) make bench
#
# One release build serves it all (FUNCTIONS_PROFILE=release): the webhook it measures, the
# functions cargo lambda watch runs for the lifecycle demo, billing-admin, and `make soak`
# after it; no debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
export FUNCTIONS_PROFILE=release

local/install.sh
local/.venv/bin/pip install -q -r bench/requirements.txt
bench/peers/install.sh
# The peers do the same work as ours, checked before they are measured.
local/.venv/bin/python bench/peers/smoke.py
local/build-functions.sh
# The example needs billing-core's test-util feature: built on its own, so that only
# billing-core and webhook are compiled again for it, not the functions.
cargo build --release --example core_instructions
mkdir -p bench/.out/zips
rm -f bench/.out/zips/rust-webhook.zip
local/.venv/bin/python - <<'PY'
import zipfile
with zipfile.ZipFile("bench/.out/zips/rust-webhook.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.write("target/release/webhook", "bootstrap")
PY

harness_pid=
cleanup() {
    [ -z "$harness_pid" ] || kill "$harness_pid" 2>/dev/null || true
    local/down.sh
}
trap cleanup EXIT
# cognito-local logs every request in debug: bench/lifecycle_calls.py counts ours there. moto
# keeps connections open as AWS's endpoints do (else every call of each runtime would pay for a
# new connection, which production does not).
MOTO_KEEP_ALIVE=1 COGNITO_DEBUG=1 local/up.sh
set -a
# shellcheck disable=SC1091
. local/.run/env
set +a
target/harness/release/bench-harness 9301 3 9390 9391 &
harness_pid=$!
export BENCH_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB

rm -f bench/.out/lifecycle-calls.json
local/.venv/bin/python bench/lifecycle_calls.py
local/.venv/bin/python bench/run.py --rounds "${BENCH_ROUNDS:-20}"
local/.venv/bin/python bench/report.py
