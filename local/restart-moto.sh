#!/usr/bin/env bash
# Restarts the AWS emulator (moto) of a running local environment: SIGTERM (it finishes the
# requests in flight, answers 503 to new ones and saves its state), then a new process that loads
# that state. Calls made meanwhile are refused, as during an outage; DOWNTIME (seconds, default
# 0) keeps it down longer. Used by the soak run.
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_defaults
running_pid moto >/dev/null || die "moto is not running (local/up.sh starts it)"
stop_component moto
[ -f "$MOTO_STATE" ] || die "moto saved no state to $MOTO_STATE (log: local/.run/logs/moto.log)"
cp "$LOG_DIR/moto.log" "$LOG_DIR/moto.before-restart.log"
sleep "${DOWNTIME:-0}"
start_bg moto "$ROOT_DIR" "$VENV/bin/python" "$LOCAL_DIR/moto_durable.py" \
    --port "$MOTO_PORT" --state "$MOTO_STATE"
printf '%s\n' "$MOTO_PORT" >"$PID_DIR/moto.port"
wait_ready moto "$READY_TIMEOUT" http_answers "http://127.0.0.1:$MOTO_PORT/moto-api/"
log "moto restarted with its state"
