#!/usr/bin/env bash
# The scripted demo on the local emulators: installs what is needed, starts everything, walks
# the lifecycle printing each check, and stops everything it started (also on failure).
# `local/demo.sh --keep` leaves the environment running afterwards (make dev).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=()
[ "${1:-}" = "--keep" ] && keep=(--keep)
exec local/with-env.sh "${keep[@]}" local/.venv/bin/python local/demo.py
