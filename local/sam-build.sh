#!/usr/bin/env bash
# `sam build` of every function for arm64, offline (cargo-lambda, zig from PyPI), then a check
# that each function in the built template has an arm64 bootstrap. 6 to 10 minutes on 2 cores.
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT_DIR"
local/install.sh
ensure_venv "$VENV" "$LOCAL_DIR/requirements-build.txt"
ensure_venv "$LOCAL_DIR/.venv-sam" "$LOCAL_DIR/requirements-sam.txt"
rustup target add aarch64-unknown-linux-gnu >/dev/null
export SAM_CLI_TELEMETRY=0
PATH=$VENV/bin:$PATH local/.venv-sam/bin/sam build --beta-features
local/.venv/bin/python local/check-sam-build.py
