#!/usr/bin/env bash
# The scripted demo on the local emulators: installs what is needed, starts everything, walks
# the lifecycle printing each check, and stops everything it started (also on failure).
# `local/demo.sh --keep` leaves the environment running afterwards (make dev).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
[ "${1:-}" = "--keep" ] && keep=true

local/install.sh
local/build-functions.sh
$keep || trap 'local/down.sh' EXIT
local/up.sh
set -a
# shellcheck disable=SC1091
. local/.run/env
set +a
local/.venv/bin/python local/demo.py
