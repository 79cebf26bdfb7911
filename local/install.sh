#!/usr/bin/env bash
# Installs the local emulators and tools into ignored folders of the repo, and checks they run:
#   local/.venv         python3 -m venv + pip install -r local/requirements.txt
#                       (moto[server], localstripe, cargo-lambda, boto3, pytest, selenium)
#   local/node_modules  npm ci: cognito-local, pinned exactly in package.json / package-lock.json
#   chromium, chromium-driver  Debian's packages, for the browser test, when missing (apt-get:
#                       as root or with password-less sudo). Never fatal: without them the
#                       browser test says it skips.
# Idempotent and quick when done already: pip and npm only run when their inputs changed
# (hash stamps in local/.venv and local/node_modules).
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"; }
need python3 "Python 3.9+ is needed for local/.venv"
need node "Node.js 18+ is needed for cognito-local"
need npm "npm is needed for cognito-local"
need curl "curl is needed by local/up.sh"
need setsid "setsid (util-linux) is needed by local/up.sh"

# --- Python: local/.venv ----------------------------------------------------------------------
ensure_venv "$VENV" "$LOCAL_DIR/requirements.txt"

# --- Node: local/node_modules -----------------------------------------------------------------
node_stamp=$LOCAL_DIR/node_modules/.install.sha256
node_want=$({
    cat "$LOCAL_DIR/package.json" "$LOCAL_DIR/package-lock.json"
    node --version
} | sha256sum | cut -d' ' -f1)
if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ] ||
    [ ! -x "$LOCAL_DIR/node_modules/.bin/cognito-local" ]; then
    log "npm ci --prefix local"
    npm ci --prefix "$LOCAL_DIR" --no-audit --no-fund --loglevel=error
    printf '%s\n' "$node_want" >"$node_stamp"
else
    log "local/node_modules up to date"
fi

# --- Chromium for the browser test (local/browser_test.py) ------------------------------------
# Debian's packages only: nothing downloads a browser or a driver of its own.
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER=/usr/bin/chromedriver
install_chromium() {
    local as_root=() apt_log=$RUN_DIR/logs/apt-chromium.log
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || {
            log "warning: chromium and chromium-driver missing, and apt-get needs root: the browser test will skip (as root: apt-get install chromium chromium-driver)"
            return 0
        }
        as_root=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || {
        log "warning: no apt-get to install chromium and chromium-driver: the browser test will skip"
        return 0
    }
    mkdir -p "$(dirname "$apt_log")"
    log "apt-get install chromium chromium-driver (for the browser test; log: ${apt_log#"$ROOT_DIR"/})"
    local apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
        -o DPkg::Lock::Timeout=300)
    # A stale package list is the usual failure: update it once and try again.
    if ! "${apt[@]}" install --no-install-recommends chromium chromium-driver >"$apt_log" 2>&1; then
        "${apt[@]}" update >>"$apt_log" 2>&1 || true
        "${apt[@]}" install --no-install-recommends chromium chromium-driver >>"$apt_log" 2>&1 || {
            log "warning: apt-get could not install chromium and chromium-driver (${apt_log#"$ROOT_DIR"/}): the browser test will skip"
            return 0
        }
    fi
}
if [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    install_chromium
fi
if [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ]; then
    log "ok: $("$CHROMIUM" --version 2>/dev/null | head -n 1), $("$CHROMEDRIVER" --version 2>/dev/null | cut -d' ' -f1-2)"
fi

# --- Checks: the tools run --------------------------------------------------------------------
# cargo-lambda is a cargo subcommand: run directly, its first argument must be "lambda".
version=$("$VENV/bin/cargo-lambda" lambda --version) || die "cargo-lambda does not run"
log "ok: $version"
"$VENV/bin/moto_server" --help >/dev/null || die "moto_server does not run"
log "ok: moto_server $("$VENV/bin/python" -c 'import moto; print(moto.__version__)')"
"$VENV/bin/python" -c 'import localstripe.resources, boto3, selenium' || die "localstripe, boto3 or selenium do not import"
log "ok: localstripe $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("localstripe"))'), boto3"
# Loading the server module resolves all of cognito-local's dependencies without starting it.
node -e 'require(process.argv[1])' "$LOCAL_DIR/node_modules/cognito-local/lib/server/index.js" ||
    die "cognito-local does not load"
log "ok: cognito-local $(node -p 'require(process.argv[1]).version' "$LOCAL_DIR/node_modules/cognito-local/package.json") (node $(node --version))"
command -v cargo >/dev/null 2>&1 || log "warning: cargo not on PATH: cargo lambda watch will need it"
log "install done"
