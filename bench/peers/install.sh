#!/usr/bin/env bash
# Installs and packages the Node.js and Python peers of the webhook Lambda for the benchmark:
#   bench/peers/node/node_modules   npm ci (aws-lambda-ric builds a native addon at install)
#   bench/peers/node/dist           esbuild bundle of src/webhook.mjs, AWS SDK included
#   bench/peers/python/.venv        python3 -m venv + pip install -r requirements.txt
#   bench/peers/.out/*.zip          the deployment zips
# Idempotent and quick when done already: each step runs only when its inputs changed.
# How to run the peers: bench/peers/peers.json.
set -euo pipefail

PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# ensure_venv; the definitions below override its VENV, log and die.
# shellcheck source=local/lib.sh
. "$PEERS/../../local/lib.sh"
NODE_DIR=$PEERS/node
PY_DIR=$PEERS/python
VENV=$PY_DIR/.venv
OUT=$PEERS/.out

log() { printf '[peers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

command -v node >/dev/null || die "node (20+) is needed"
command -v npm >/dev/null || die "npm is needed"
command -v python3 >/dev/null || die "python3 (3.11) is needed"

# Writes a deflated zip of everything under $2 (relative names) to $1.
zip_dir() {
    local zip_file=$1 dir=$2
    rm -f "$zip_file"
    if command -v zip >/dev/null; then
        (cd "$dir" && zip -q -r -X "$zip_file" .)
    else
        python3 - "$zip_file" "$dir" <<'EOF'
import os, sys, zipfile
zip_file, root = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(zip_file, "w", zipfile.ZIP_DEFLATED) as archive:
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            archive.write(path, os.path.relpath(path, root))
EOF
    fi
}

# aws-lambda-ric compiles curl, aws-lambda-cpp and a node-gyp addon in its install scripts.
ensure_build_tools() {
    local missing=() tool package
    for tool in cmake:cmake autoreconf:autoconf automake:automake libtoolize:libtool \
        g++:g++ make:make xz:xz-utils python3:python3; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing build tools for aws-lambda-ric: ${missing[*]}"
    log "apt-get install -y ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- Node: node_modules -----------------------------------------------------------------------
node_stamp=$NODE_DIR/node_modules/.install.sha256
node_want=$({
    cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json"
    node --version
} | sha256sum | cut -d' ' -f1)
if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ] ||
    [ ! -f "$NODE_DIR/node_modules/aws-lambda-ric/rapid-client.node" ]; then
    ensure_build_tools
    # node-gyp must not download headers (no network but the registries): use the local ones.
    node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
    if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
        export npm_config_nodedir=$node_prefix
    fi
    log "npm ci in bench/peers/node (builds aws-lambda-ric's native addon: a few minutes)"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$node_want" >"$node_stamp"
else
    log "bench/peers/node/node_modules up to date"
fi

# --- Node: the bundle -------------------------------------------------------------------------
bundle=$NODE_DIR/dist/webhook.js
bundle_stamp=$NODE_DIR/dist/.build.sha256
bundle_want=$(hash_of "$NODE_DIR/src/webhook.mjs" "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")
if [ "$(cat "$bundle_stamp" 2>/dev/null)" != "$bundle_want" ] || [ ! -f "$bundle" ]; then
    log "esbuild src/webhook.mjs -> dist/webhook.js"
    rm -rf "$NODE_DIR/dist"
    (cd "$NODE_DIR" && npm run --silent build)
    printf '%s\n' "$bundle_want" >"$bundle_stamp"
else
    log "bench/peers/node/dist up to date"
fi

# --- Python: .venv ----------------------------------------------------------------------------
# awslambdaric as a wheel only: its sdist would build aws-lambda-cpp and curl from source.
ensure_venv "$VENV" "$PY_DIR/requirements.txt" --only-binary=awslambdaric

# --- Zips -------------------------------------------------------------------------------------
mkdir -p "$OUT"
zip_stamp=$OUT/.zips.sha256
zip_want=$(hash_of "$bundle" "$PY_DIR/webhook.py" "$PY_DIR/requirements.txt")
if [ "$(cat "$zip_stamp" 2>/dev/null)" != "$zip_want" ] ||
    [ ! -f "$OUT/node-webhook.zip" ] || [ ! -f "$OUT/python-webhook.zip" ] ||
    [ ! -f "$OUT/python-webhook-with-boto3.zip" ]; then
    log "packaging bench/peers/.out/*.zip"
    stage=$OUT/stage
    rm -rf "$stage"

    # Node: the bundle only.
    mkdir -p "$stage/node"
    cp "$bundle" "$stage/node/"
    zip_dir "$OUT/node-webhook.zip" "$stage/node"

    # Python: webhook.py + stripe and its dependencies (the Lambda runtime has boto3 and
    # awslambdaric); a second zip with boto3 too, as deployed when pinning boto3.
    pin() { grep -E "^$1==" "$PY_DIR/requirements.txt"; }
    pip_target() {
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
            -c "$PY_DIR/requirements.txt" --target "$1" "${@:2}"
    }
    mkdir -p "$stage/python" "$stage/python-with-boto3"
    pip_target "$stage/python" "$(pin stripe)"
    cp "$PY_DIR/webhook.py" "$stage/python/"
    zip_dir "$OUT/python-webhook.zip" "$stage/python"
    pip_target "$stage/python-with-boto3" "$(pin stripe)" "$(pin boto3)"
    cp "$PY_DIR/webhook.py" "$stage/python-with-boto3/"
    zip_dir "$OUT/python-webhook-with-boto3.zip" "$stage/python-with-boto3"

    rm -rf "$stage"
    printf '%s\n' "$zip_want" >"$zip_stamp"
else
    log "bench/peers/.out zips up to date"
fi

for zip_file in "$OUT"/*.zip; do
    log "$(basename "$zip_file"): $(stat -c %s "$zip_file") bytes"
done
log "run commands: bench/peers/peers.json"
