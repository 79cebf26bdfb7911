#!/usr/bin/env bash
# The scripted demo on the local emulators: installs what is needed, starts everything, walks
# the lifecycle printing each check, and stops everything it started (also on failure).
# `local/demo.sh --keep` leaves the environment running afterwards (make dev) and prints the
# example site's URL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--keep" ]; then
    exec local/with-env.sh local/.venv/bin/python local/demo.py
fi
local/with-env.sh --keep local/.venv/bin/python local/demo.py
# shellcheck disable=SC1091
. local/.run/env
echo
echo "Still running. The example site: $SITE_ORIGIN (sign up there; stop everything: make down)"
