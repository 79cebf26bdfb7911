#!/usr/bin/env bash
# local/with-env.sh [--keep] CMD...: installs what is needed, builds the functions, starts the
# emulators and the functions, runs CMD with local/.run/env loaded, and stops everything it
# started (also on failure) unless --keep. The demo and the soak run this way.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
if [ "${1:-}" = "--keep" ]; then
    keep=true
    shift
fi
[ $# -gt 0 ] || { echo "usage: local/with-env.sh [--keep] CMD..." >&2; exit 2; }

local/install.sh
local/build-functions.sh
$keep || trap 'local/down.sh' EXIT
local/up.sh
set -a
# shellcheck disable=SC1091
. local/.run/env
set +a
"$@"
