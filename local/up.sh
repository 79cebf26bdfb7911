#!/usr/bin/env bash
# Starts the local environment in the background, waits until each part answers, bootstraps it
# and writes local/.run/env (plain KEY=VALUE lines for `set -a; . local/.run/env; set +a` and for
# `cargo lambda watch --env-file`).
#
#   local/up.sh               moto, localstripe, the Stripe front, cognito-local, bootstrap,
#                             cargo lambda watch, one warm-up invoke of post-confirmation, then
#                             the example site's dev server (web/ and the local HTTP APIs)
#   local/up.sh --no-lambda   the emulators and the bootstrap only
#   local/up.sh --no-warm     skip the warm-up invoke
#
# Ports and timeouts: local/env.defaults, each overridable from the environment. State: local/.run/
# (pids/<name>.pid, logs/<name>.log, env, cognito/.cognito/). A part whose pid file names a live
# process is not started twice. Stop everything with local/down.sh.
#
# Every emulator starts empty: moto and localstripe keep their state in memory, and cognito-local's
# files are reset whenever up.sh (re)starts it, so the three stay consistent with each other.
#
# cognito-local 5.3.0 (read in local/node_modules/cognito-local/lib, see local/README.md):
# - PostConfirmation is invoked through the Lambda Invoke API (aws-sdk v2, RequestResponse) at
#   LambdaClient.endpoint, function name from TriggerFunctions.PostConfirmation:
#     ConfirmSignUp         -> PostConfirmation_ConfirmSignUp (callerContext.clientId = app client)
#     AdminConfirmSignUp    -> PostConfirmation_ConfirmSignUp (callerContext.clientId = null)
#     ConfirmForgotPassword -> PostConfirmation_ConfirmForgotPassword
#     SignUp when a PreSignUp trigger auto-confirms -> PostConfirmation_ConfirmSignUp
#   The event's region is "local" and pool ids look like local_AbCd1234. The user is saved as
#   CONFIRMED before the call, and a failing or timing-out trigger is only logged: the Confirm*
#   call still answers 200 (AWS would answer an error), so check the trigger's effects instead.
# - Confirmation codes: random 6 digits (or the value of $CODE for every code if set in
#   cognito-local's environment), printed in local/.run/logs/cognito.log and stored as
#   Users.<username>.ConfirmationCode in $COGNITO_LOCAL_DATA_DIR/<user pool id>.json.
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_defaults
export AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1
# Where the functions send the browser back to (bootstrap writes it to local/.run/env).
export SITE_ORIGIN=${SITE_ORIGIN:-http://127.0.0.1:$SITE_PORT}

with_lambda=true
warm=true
for arg in "$@"; do
    case $arg in
    --no-lambda) with_lambda=false ;;
    --no-warm) warm=false ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
        exit 0
        ;;
    *) die "unknown argument: $arg (see local/up.sh --help)" ;;
    esac
done

if [ ! -x "$VENV/bin/python" ] || [ ! -x "$LOCAL_DIR/node_modules/.bin/cognito-local" ]; then
    die "local tools missing: run local/install.sh first"
fi
mkdir -p "$LOG_DIR" "$PID_DIR"
cd "$ROOT_DIR"

# ensure NAME PORT_VARIABLE DIR CHECK... -- CMD...: starts CMD in DIR unless NAME runs already,
# then waits until CHECK succeeds. Returns 0 when it started it, 1 when it was running already.
ensure() {
    local name=$1 port_var=$2 dir=$3 check=() pid
    shift 3
    while [ "$1" != -- ]; do
        check+=("$1")
        shift
    done
    shift
    if pid=$(running_pid "$name"); then
        local was_port
        was_port=$(cat "$PID_DIR/$name.port" 2>/dev/null || true)
        if [ -n "$was_port" ] && [ "$was_port" != "${!port_var}" ]; then
            die "$name runs on port $was_port (pid $pid), not on $port_var=${!port_var}: stop it first (local/down.sh $name)"
        fi
        wait_ready "$name" "$READY_TIMEOUT" "${check[@]}"
        log "$name already running (pid $pid)"
        return 1
    fi
    stop_component "$name" # leftovers of a leader that died: its children, its pid file
    if port_busy "${!port_var}"; then
        die "127.0.0.1:${!port_var} is taken by a process up.sh did not start: stop it or set $port_var"
    fi
    log "starting $name on 127.0.0.1:${!port_var}"
    start_bg "$name" "$dir" "$@"
    printf '%s\n' "${!port_var}" >"$PID_DIR/$name.port"
    wait_ready "$name" "$READY_TIMEOUT" "${check[@]}"
    log "$name ready"
    return 0
}

# --- moto: DynamoDB, API Gateway, CloudFormation ----------------------------------------------
# moto_durable.py saves its state on SIGTERM and loads it on start (local/restart-moto.sh); a
# fresh start begins empty like the other emulators.
running_pid moto >/dev/null || rm -f "$MOTO_STATE"
ensure moto MOTO_PORT "$ROOT_DIR" http_answers "http://127.0.0.1:$MOTO_PORT/moto-api/" -- \
    "$VENV/bin/python" "$LOCAL_DIR/moto_durable.py" --port "$MOTO_PORT" --state "$MOTO_STATE" || true

# --- localstripe and our Stripe front ---------------------------------------------------------
ensure localstripe LOCALSTRIPE_PORT "$ROOT_DIR" http_answers "http://127.0.0.1:$LOCALSTRIPE_PORT/v1/customers" -- \
    "$VENV/bin/python" "$LOCAL_DIR/stripe_front/run_localstripe.py" --port "$LOCALSTRIPE_PORT" || true
ensure stripe-front STRIPE_PORT "$ROOT_DIR" http_ok "http://127.0.0.1:$STRIPE_PORT/_test/health" -- \
    "$VENV/bin/python" "$LOCAL_DIR/stripe_front/server.py" --port "$STRIPE_PORT" \
    --localstripe-url "http://127.0.0.1:$LOCALSTRIPE_PORT" || true

# --- cognito-local ----------------------------------------------------------------------------
# Started in local/.run/cognito, where it reads .cognito/config.json and keeps .cognito/db/.
if ! running_pid cognito >/dev/null; then
    rm -rf "$COGNITO_HOME/.cognito"
    mkdir -p "$COGNITO_HOME/.cognito"
    "$VENV/bin/python" - "$LOCAL_DIR/cognito/config.json.template" \
        "$COGNITO_HOME/.cognito/config.json" <<'PY'
import json, os, string, sys
text = string.Template(open(sys.argv[1]).read()).substitute(os.environ)
json.loads(text)  # the rendered config must be valid JSON
with open(sys.argv[2], "w") as f:
    f.write(text)
PY
fi
# HOST and PORT are its own variables (config.json sets the same). COGNITO_DEBUG=1 makes it log
# every request with its headers (make bench counts our calls in that log).
ensure cognito COGNITO_PORT "$COGNITO_HOME" http_ok "http://127.0.0.1:$COGNITO_PORT/health" -- \
    env HOST=127.0.0.1 PORT="$COGNITO_PORT" ${COGNITO_DEBUG:+DEBUG=1} \
    node "$LOCAL_DIR/node_modules/cognito-local/lib/bin/start.js" || true

# --- bootstrap: table, user pool and app client, Stripe catalogue, local/.run/env --------------
log "bootstrap"
"$VENV/bin/python" "$LOCAL_DIR/bootstrap.py" || die "bootstrap failed"

# --- cargo lambda watch -----------------------------------------------------------------------
lambda_url=http://127.0.0.1:$LAMBDA_PORT
# A change of the environment or of the build (FUNCTIONS_PROFILE, local/build-functions.sh)
# restarts cargo lambda watch.
env_hash=$({
    cat "$FUNCTIONS_ENV_FILE"
    echo "FUNCTIONS_PROFILE=${FUNCTIONS_PROFILE:-debug}"
} | sha256sum | cut -d' ' -f1)
if $with_lambda; then
    if running_pid lambda >/dev/null && [ "$(cat "$PID_DIR/lambda.env" 2>/dev/null)" != "$env_hash" ]; then
        log "local/.run/functions.env or FUNCTIONS_PROFILE changed since cargo lambda watch started: restarting it"
        stop_component lambda
    fi
    watch_args=(--invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --env-file "$FUNCTIONS_ENV_FILE"
        # build and start a function on its first invocation only (not a default one at start-up)
        --wait)
    [ "$LAMBDA_RELOAD" = 1 ] || watch_args+=(--ignore-changes)
    [ "${FUNCTIONS_PROFILE:-debug}" != release ] || watch_args+=(--release)
    # Readiness is the port accepting connections: any HTTP request would start a function.
    if ensure lambda LAMBDA_PORT "$ROOT_DIR" port_busy "$LAMBDA_PORT" -- \
        env -u STRIPE_SECRET_KEY -u STRIPE_WEBHOOK_SECRETS "PATH=$VENV/bin:$PATH" \
            cargo lambda watch "${watch_args[@]}"; then
        printf '%s\n' "$env_hash" >"$PID_DIR/lambda.env"
    fi

    # Warm-up: one harmless invoke (PostConfirmation_ConfirmForgotPassword: the function does
    # nothing for it) makes cargo lambda watch build and start post-confirmation now, so the first
    # Cognito trigger does not wait on a compile. Fails fast on a compile error or a crash.
    if $warm; then
        event=$ROOT_DIR/events/post-confirmation/forgot-password.json
        [ -f "$event" ] || die "missing $event (the warm-up event)"
        out=$RUN_DIR/warm-response.json
        log_offset=$(stat -c %s "$LOG_DIR/lambda.log")
        log "warming post-confirmation (a first build can take minutes; log: local/.run/logs/lambda.log)"
        rm -f "$out"
        curl -s -m "$LAMBDA_WARM_TIMEOUT" -o "$out" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary "@$event" \
            "$lambda_url/2015-03-31/functions/post-confirmation/invocations" >"$out.status" 2>/dev/null &
        curl_pid=$!
        deadline=$((SECONDS + LAMBDA_WARM_TIMEOUT + 5))
        failed=""
        while kill -0 "$curl_pid" 2>/dev/null; do
            new_log=$(tail -c +"$((log_offset + 1))" "$LOG_DIR/lambda.log")
            if grep -Eq 'error(\[E[0-9]+\])?: could not compile|ERROR command exited|error: (failed|could not)' <<<"$new_log"; then
                failed="the build or start of post-confirmation failed"
                break
            fi
            if grep -q 'ProcessCompletion(' <<<"$new_log"; then
                failed="post-confirmation exited without answering (does its main run the Lambda runtime?)"
                break
            fi
            if ! running_pid lambda >/dev/null; then
                failed="cargo lambda watch exited"
                break
            fi
            if ((SECONDS >= deadline)); then
                failed="no answer after ${LAMBDA_WARM_TIMEOUT}s"
                break
            fi
            sleep 0.5
        done
        if [ -n "$failed" ]; then
            kill "$curl_pid" 2>/dev/null || true
            wait "$curl_pid" 2>/dev/null || true
            rm -f "$out.status"
            log_tail lambda 60
            die "warm-up of post-confirmation: $failed (local/up.sh --no-warm skips the warm-up)"
        fi
        wait "$curl_pid" || true
        status=$(cat "$out.status" 2>/dev/null || true)
        rm -f "$out.status"
        if [ "$status" != 200 ] || grep -q '"errorType"' "$out" 2>/dev/null; then
            log_tail lambda 60
            [ -n "$status" ] && [ "$status" != 000 ] || status="no answer"
            die "warm-up invoke of post-confirmation: HTTP $status: $(head -c 600 "$out" 2>/dev/null)"
        fi
        log "post-confirmation warm (the warm-up invoke answered 200)"
    fi
    "$VENV/bin/python" "$LOCAL_DIR/bootstrap.py" deliver-catalogue || die "delivering the catalogue failed"
fi

# --- the example site -------------------------------------------------------------------------
# local/site_server.py serves web/ and stands in for the HTTP APIs in front of the functions; it
# reads local/.run/env again whenever the bootstrap rewrites it.
ensure site SITE_PORT "$ROOT_DIR" http_ok "http://127.0.0.1:$SITE_PORT/config.json" -- \
    "$VENV/bin/python" "$LOCAL_DIR/site_server.py" --port "$SITE_PORT" || true

# --- Summary ----------------------------------------------------------------------------------
echo
echo "Local environment is up. Its variables (local/.run/env, secrets hidden):"
while IFS= read -r line; do
    case ${line%%=*} in
    *SECRET*) echo "  ${line%%=*}=<hidden: see local/.run/env>" ;;
    *) echo "  $line" ;;
    esac
done <"$ENV_FILE"
echo
echo "URLs (127.0.0.1 only):"
echo "  moto (DynamoDB, API Gateway, CloudFormation)  http://127.0.0.1:$MOTO_PORT  (dashboard /moto-api/)"
echo "  cognito-local                                 http://127.0.0.1:$COGNITO_PORT"
echo "  Stripe front (STRIPE_API_BASE)                http://127.0.0.1:$STRIPE_PORT"
echo "  localstripe (behind the front)                http://127.0.0.1:$LOCALSTRIPE_PORT"
if $with_lambda || running_pid lambda >/dev/null; then
    echo "  cargo lambda watch (Invoke API, function URLs) $lambda_url  (e.g. $lambda_url/lambda-url/<function>/)"
else
    echo "  cargo lambda watch                            not started (--no-lambda)"
fi
echo "  example site (web/, the local HTTP APIs)      $SITE_ORIGIN"
echo "Logs: local/.run/logs/<name>.log. Use the variables: set -a; . local/.run/env; set +a"
echo "Stop: local/down.sh"
