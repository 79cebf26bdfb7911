#!/usr/bin/env bash
# `sam build` of every function for arm64, offline (cargo-lambda, zig from PyPI), then a check
# that each function in the built template has an arm64 bootstrap. 6 to 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
local/install.sh
local/.venv/bin/pip install -q -r local/requirements-build.txt
rustup target add aarch64-unknown-linux-gnu >/dev/null
export SAM_CLI_TELEMETRY=0
PATH=$PWD/local/.venv/bin:$PATH local/.venv-sam/bin/sam build --beta-features
local/.venv/bin/python local/check-sam-build.py
