#!/usr/bin/env bash
# Builds bench-harness (bench/harness, its own workspace, release): the local Lambda Runtime API
# that the soak run's and the burst's concurrent webhook processes and `make bench` poll.
# Its own target directory (target/harness), so that it never waits on the lock of a workspace
# build: local/test.sh builds it alongside the tests.
set -euo pipefail
cd "$(dirname "$0")/../bench/harness"
# exec: the pid local/test.sh holds is cargo's, so stopping it on a failure stops the build.
CARGO_TARGET_DIR="$PWD/../../target/harness" exec cargo build --release --locked
