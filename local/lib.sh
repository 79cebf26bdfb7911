# shellcheck shell=bash disable=SC2034 # its variables are for the scripts that source it
# Shared helpers of the scripts in local/. Source it, do not run it.
#
# Process bookkeeping: every component runs in a session of its own (setsid) with a random tag in
# its environment, LOCAL_ENV_TAG, which every process it starts inherits: the functions that cargo
# lambda watch starts in sessions of their own too, even once orphaned. Its pid file
# local/.run/pids/<name>.pid holds "<pid> <start time> <tag>" (start time: field 22 of
# /proc/<pid>/stat). The component runs while that pid is alive with that start time (a reused pid
# has another); its processes are exactly the ones whose environment holds its tag, which down.sh
# signals, and nothing else.

# Python may keep the modules it compiles (in our venvs and git-ignored __pycache__ folders),
# as the Makefile lets it: every process after the first starts from them.
unset PYTHONDONTWRITEBYTECODE

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$LOCAL_DIR")
VENV=$LOCAL_DIR/.venv
RUN_DIR=$LOCAL_DIR/.run
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
ENV_FILE=$RUN_DIR/env
# What cargo lambda watch gives the functions: local/.run/env without the Stripe secrets, which
# the functions read from (moto's) SSM as deployed ones do. cargo lambda watch logs it.
FUNCTIONS_ENV_FILE=$RUN_DIR/functions.env
MOTO_STATE=$RUN_DIR/moto-state.pickle
# cognito-local keeps its config and data in .cognito/ under its working directory.
COGNITO_HOME=$RUN_DIR/cognito
COGNITO_LOCAL_DATA_DIR=$COGNITO_HOME/.cognito/db
export COGNITO_LOCAL_DATA_DIR

# Components in start order (down.sh stops them in reverse).
COMPONENTS=(moto localstripe stripe-front cognito lambda site)

log() { printf 'local: %s\n' "$*" >&2; }
die() {
    printf 'local: error: %s\n' "$*" >&2
    exit 1
}

# Exports every KEY=VALUE of local/env.defaults that the environment does not set already.
load_defaults() {
    local line key value
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '' | '#'*) continue ;; esac
        key=${line%%=*}
        value=${line#*=}
        [[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "bad line in local/env.defaults: $line"
        if [ -z "${!key+x}" ]; then
            export "$key=$value"
        else
            export "${key?}"
        fi
    done <"$LOCAL_DIR/env.defaults"
    for key in MOTO_PORT COGNITO_PORT LOCALSTRIPE_PORT STRIPE_PORT LAMBDA_PORT SITE_PORT \
        READY_TIMEOUT LAMBDA_WARM_TIMEOUT STOP_TIMEOUT COGNITO_LAMBDA_TIMEOUT_MS; do
        [[ ${!key} =~ ^[0-9]+$ ]] || die "$key must be a number, got '${!key}'"
    done
    for key in MOTO_PORT COGNITO_PORT LOCALSTRIPE_PORT STRIPE_PORT LAMBDA_PORT SITE_PORT; do
        ((${!key} >= 1 && ${!key} <= 65535)) || die "$key must be a port (1-65535), got ${!key}"
    done
}

# uv (pinned in local/requirements-uv.txt) makes the venvs below and installs into them: it is
# pip-installed once into local/.venv-uv (made again when that file or the Python version
# changes). Measured from a fresh clone here, with pip's and uv's caches warm: local/install.sh
# took 43 s of CPU with pip and 27 s with uv, local/check-template.sh 44 s and 20 s.
UV_VENV=$LOCAL_DIR/.venv-uv
UV=$UV_VENV/bin/uv
ensure_uv() {
    local requirements=$LOCAL_DIR/requirements-uv.txt want staging
    want=$({
        cat "$requirements"
        python3 -VV
    } | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$UV_VENV/.stamp" 2>/dev/null)" = "$want" ] && "$UV" --version >/dev/null 2>&1; then
        return 0
    fi
    log "pip install -r ${requirements#"$ROOT_DIR"/} into ${UV_VENV#"$ROOT_DIR"/}"
    # Made aside and moved in whole, so that a script running beside this one never sees half.
    staging=$(mktemp -d "$LOCAL_DIR/.venv-uv.XXXXXX")
    python3 -m venv "$staging"
    "$staging/bin/python" -m pip install -q -r "$requirements"
    printf '%s\n' "$want" >"$staging/.stamp"
    printf '*\n' >"$staging/.gitignore"
    rm -rf "$UV_VENV"
    mv -T "$staging" "$UV_VENV"
}

# ensure_venv DIR REQUIREMENTS [INSTALL_ARGS...]: a venv in DIR (made again when broken, with
# pip in it for the scripts that call it) where `uv pip install -r REQUIREMENTS INSTALL_ARGS...`
# has run, run again only when that file or the Python version changed (a hash stamp per
# requirements file in DIR). Like pip with --no-compile, uv leaves compiling the modules to
# their first import.
ensure_venv() {
    local venv=$1 requirements=$2 stamp want
    shift 2
    ensure_uv
    # The system's python3, never one uv would download.
    export UV_PYTHON_DOWNLOADS=never
    if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        [ ! -e "$venv" ] || log "${venv#"$ROOT_DIR"/} is broken: recreating it"
        rm -rf "$venv"
        log "creating ${venv#"$ROOT_DIR"/}"
        "$UV" venv --quiet --seed --python "$(command -v python3)" "$venv"
        printf '*\n' >"$venv/.gitignore"
    fi
    stamp=$venv/.$(basename "$requirements" .txt).sha256
    want=$({
        cat "$requirements"
        "$venv/bin/python" -VV
    } | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "uv pip install -r ${requirements#"$ROOT_DIR"/}"
        "$UV" pip install --quiet --python "$venv/bin/python" -r "$requirements" "$@"
        printf '%s\n' "$want" >"$stamp"
    else
        log "${venv#"$ROOT_DIR"/} up to date with ${requirements#"$ROOT_DIR"/}"
    fi
}

pid_file() { printf '%s/%s.pid\n' "$PID_DIR" "$1"; }

# Pids of the processes whose environment holds LOCAL_ENV_TAG=$1 (zombies show none).
tagged_pids() {
    [ -n "$1" ] || return 0
    grep -lxzF "LOCAL_ENV_TAG=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}

# "<state> <start time>" of a process, from /proc/<pid>/stat (the command name may hold spaces).
# The start time is fixed at fork: unlike the environment, it reads the same during an exec.
proc_state_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    printf '%s %s\n' "$1" "${20}"
}

# Prints the pid of component $1 when its pid file names a live process that is the one started.
running_pid() {
    local pid start state now
    read -r pid start _ 2>/dev/null <"$(pid_file "$1")" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    read -r state now < <(proc_state_start "$pid") || return 1
    [ "$now" = "$start" ] && [ "$state" != Z ] || return 1
    printf '%s\n' "$pid"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when $1 answers HTTP at all (any status).
http_answers() {
    local code
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null) || true
    [ -n "$code" ] && [ "$code" != 000 ]
}

# True when $1 answers 2xx.
http_ok() {
    curl -sf -o /dev/null -m 2 "$1" 2>/dev/null
}

log_tail() {
    local file=$LOG_DIR/$1.log
    if [ -s "$file" ]; then
        printf -- '--- last lines of %s ---\n' "${file#"$ROOT_DIR"/}" >&2
        tail -n "${2:-40}" "$file" >&2
        printf -- '--- end of %s ---\n' "${file#"$ROOT_DIR"/}" >&2
    else
        printf -- '(%s is empty)\n' "${file#"$ROOT_DIR"/}" >&2
    fi
}

# start_bg NAME DIR CMD...: runs CMD in DIR, in a new session, output to local/.run/logs/NAME.log.
start_bg() {
    local name=$1 dir=$2
    shift 2
    local logf=$LOG_DIR/$name.log pid state start tag
    tag=$name-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
    mkdir -p "$LOG_DIR" "$PID_DIR"
    printf '=== %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >"$logf"
    # No job control in a script: the background child is not a process group leader, so setsid
    # does not fork and $! is the pid of CMD itself, leader of its own session.
    (cd "$dir" && LOCAL_ENV_TAG=$tag exec setsid "$@") </dev/null >>"$logf" 2>&1 &
    pid=$!
    read -r state start < <(proc_state_start "$pid") || {
        log_tail "$name"
        die "$name exited at once"
    }
    printf '%s %s %s\n' "$pid" "$start" "$tag" >"$(pid_file "$name")"
}

# wait_ready NAME TIMEOUT CHECK...: polls CHECK until it succeeds; fails at once when NAME dies,
# or after TIMEOUT seconds, with the tail of its log.
wait_ready() {
    local name=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ! running_pid "$name" >/dev/null; then
            log_tail "$name"
            die "$name exited before it was ready (log: local/.run/logs/$name.log)"
        fi
        if ((SECONDS > deadline)); then
            log_tail "$name"
            die "$name not ready after ${timeout}s (check: $*; log: local/.run/logs/$name.log)"
        fi
        sleep 0.2
    done
}

# Pids of component $1 (tag $2): its leader while running_pid knows it (its environment reads
# empty while it execs) and every process carrying the tag.
component_pids() {
    {
        running_pid "$1" || true
        tagged_pids "$2"
    } | sort -u
}

# stop_component NAME: SIGTERM to every process of NAME, SIGKILL after STOP_TIMEOUT.
stop_component() {
    local name=$1 file tag pids deadline
    file=$(pid_file "$name")
    [ -f "$file" ] || return 0
    read -r _ _ tag _ <"$file" || true
    pids=$(component_pids "$name" "$tag")
    if [ -n "$pids" ]; then
        log "stopping $name (${pids//$'\n'/ })"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        deadline=$((SECONDS + STOP_TIMEOUT))
        while pids=$(component_pids "$name" "$tag") && [ -n "$pids" ]; do
            if ((SECONDS > deadline)); then
                log "$name still running after ${STOP_TIMEOUT}s: SIGKILL ${pids//$'\n'/ }"
                # shellcheck disable=SC2086
                kill -KILL $pids 2>/dev/null || true
                sleep 0.2
                pids=$(component_pids "$name" "$tag")
                [ -z "$pids" ] || log "$name: could not kill ${pids//$'\n'/ }"
                break
            fi
            sleep 0.1
        done
    fi
    rm -f "$PID_DIR/$name".*
}
