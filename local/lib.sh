# shellcheck shell=bash
# Shared helpers of local/install.sh, local/up.sh and local/down.sh. Source it, do not run it.
#
# Process bookkeeping: every component runs in a session of its own (setsid) with a random tag in
# its environment (LOCAL_ENV_TAG, inherited by its children), and its pid file
# local/.run/pids/<name>.pid holds "<pid> <start time> <tag>" (start time: field 22 of
# /proc/<pid>/stat). down.sh signals exactly the processes of that session, their descendants and
# any process carrying the tag (a function that cargo lambda watch started in a session of its
# own, even once orphaned), and a pid only while its start time still matches: nothing else.

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$LOCAL_DIR")
VENV=$LOCAL_DIR/.venv
RUN_DIR=$LOCAL_DIR/.run
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
ENV_FILE=$RUN_DIR/env
MOTO_STATE=$RUN_DIR/moto-state.pickle
# cognito-local keeps its config and data in .cognito/ under its working directory.
COGNITO_HOME=$RUN_DIR/cognito
COGNITO_LOCAL_DATA_DIR=$COGNITO_HOME/.cognito/db
export COGNITO_LOCAL_DATA_DIR

# Components in start order (down.sh stops them in reverse).
COMPONENTS=(moto localstripe stripe-front cognito lambda)

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
    for key in MOTO_PORT COGNITO_PORT LOCALSTRIPE_PORT STRIPE_PORT LAMBDA_PORT \
        READY_TIMEOUT LAMBDA_WARM_TIMEOUT STOP_TIMEOUT COGNITO_LAMBDA_TIMEOUT_MS; do
        [[ ${!key} =~ ^[0-9]+$ ]] || die "$key must be a number, got '${!key}'"
    done
    for key in MOTO_PORT COGNITO_PORT LOCALSTRIPE_PORT STRIPE_PORT LAMBDA_PORT; do
        ((${!key} >= 1 && ${!key} <= 65535)) || die "$key must be a port (1-65535), got ${!key}"
    done
}

# "<state> <start time>" of a process, from /proc/<pid>/stat (the command name may hold spaces).
proc_state_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    printf '%s %s\n' "$1" "${20}"
}

pid_file() { printf '%s/%s.pid\n' "$PID_DIR" "$1"; }

# Prints the pid of component $1 when its pid file names a live process that is the one started.
running_pid() {
    local file pid start state now
    file=$(pid_file "$1")
    [ -f "$file" ] || return 1
    read -r pid start _ <"$file" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    read -r state now < <(proc_state_start "$pid") || return 1
    [ "$now" = "$start" ] && [ "$state" != Z ] || return 1
    printf '%s\n' "$pid"
}

# Pids of the live (not zombie) processes of session $1 (a component's session id is its pid) and
# of all their descendants: watchexec, under cargo lambda watch, starts each function in a session
# of its own.
session_pids() {
    [ "${1:-0}" -gt 0 ] 2>/dev/null || return 0
    ps -e -o pid= -o ppid= -o sid= -o stat= | awk -v sid="$1" '
        $4 !~ /^Z/ { parent[$1] = $2; if ($3 == sid) keep[$1] = 1 }
        END {
            do {
                grew = 0
                for (p in parent)
                    if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 }
            } while (grew)
            for (p in keep) print p
        }'
}

# "<pid>:<start time>" for each pid given, skipping the ones already gone.
with_start_times() {
    local pid state start
    for pid in "$@"; do
        read -r state start < <(proc_state_start "$pid") || continue
        [ "$state" = Z ] || printf '%s:%s\n' "$pid" "$start"
    done
}

# Pids of the processes whose environment holds LOCAL_ENV_TAG=$1.
tagged_pids() {
    [ -n "$1" ] || return 0
    grep -lxzF "LOCAL_ENV_TAG=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}

# The pids among "<pid>:<start time>" entries that still run as the same process.
still_alive() {
    local entry state start
    for entry in "$@"; do
        read -r state start < <(proc_state_start "${entry%%:*}") || continue
        [ "$state" != Z ] && [ "$start" = "${entry#*:}" ] && printf '%s\n' "${entry%%:*}"
    done
    return 0
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
    # does not fork and $! is the pid of CMD itself, leader of its own session and process group.
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

# stop_component NAME: SIGTERM to every process of NAME's session, SIGKILL after STOP_TIMEOUT.
stop_component() {
    local name=$1 file pid start tag state now pids deadline procs=()
    file=$(pid_file "$name")
    [ -f "$file" ] || return 0
    read -r pid start tag <"$file" || true
    if ! [[ $pid =~ ^[0-9]+$ ]]; then
        rm -f "$file" "${file%.pid}.port" "${file%.pid}.env"
        return 0
    fi
    if read -r state now < <(proc_state_start "$pid") && [ "$now" != "$start" ]; then
        # The pid now belongs to another process, and Linux does not reuse a pid while a session
        # of that id lives: only tagged orphans of ours may be left.
        pid=0
    fi
    # Either the leader is alive and ours, or it is gone and only its children may be left in its
    # session (whose id no other process can hold while they live).
    # shellcheck disable=SC2046
    mapfile -t procs < <(with_start_times $(session_pids "$pid") $(tagged_pids "$tag") | sort -u)
    if [ ${#procs[@]} -eq 0 ]; then
        rm -f "$file" "${file%.pid}.port" "${file%.pid}.env"
        return 0
    fi
    log "stopping $name (session $pid: ${procs[*]%%:*})"
    # shellcheck disable=SC2046
    kill -TERM $(still_alive "${procs[@]}") 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while :; do
        # the ones seen first (orphans leave the tree when their parent exits) and any new child
        # shellcheck disable=SC2046
        mapfile -t procs < <({
            printf '%s\n' "${procs[@]}"
            with_start_times $(session_pids "$pid") $(tagged_pids "$tag")
        } | sort -u)
        pids=$(still_alive "${procs[@]}")
        [ -n "$pids" ] || break
        if ((SECONDS > deadline)); then
            log "$name still running after ${STOP_TIMEOUT}s: SIGKILL $(echo $pids)"
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
            sleep 0.2
            pids=$(still_alive "${procs[@]}")
            [ -z "$pids" ] || log "$name: could not kill $(echo $pids)"
            break
        fi
        sleep 0.1
    done
    rm -f "$file" "${file%.pid}.port" "${file%.pid}.env"
}
