#!/usr/bin/env bash
# Stops what local/up.sh started, newest first: SIGTERM to every process carrying a part's tag
# (local/lib.sh), SIGKILL after STOP_TIMEOUT seconds, then removes the pid files. Safe to run
# twice; touches no process without the tag of a part in local/.run/pids. Logs stay in
# local/.run/logs.
#
#   local/down.sh             everything
#   local/down.sh lambda ...  only the named parts (moto localstripe stripe-front cognito lambda
#                             site), e.g. `local/down.sh lambda && local/up.sh` to run a new build
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_defaults

names=()
if [ $# -eq 0 ]; then
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        names+=("${COMPONENTS[i]}")
    done
else
    for name in "$@"; do
        case " ${COMPONENTS[*]} " in
        *" $name "*) names+=("$name") ;;
        *) die "unknown part: $name (one of: ${COMPONENTS[*]})" ;;
        esac
    done
fi

stopped=0
for name in "${names[@]}"; do
    if [ -f "$(pid_file "$name")" ]; then
        stop_component "$name"
        stopped=$((stopped + 1))
    fi
done
[ "$stopped" -gt 0 ] || log "nothing to stop"
[ $# -gt 0 ] || rmdir "$PID_DIR" 2>/dev/null || true
log "down"
