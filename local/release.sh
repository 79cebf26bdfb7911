#!/usr/bin/env bash
# Release build of every function for Lambda arm64 (cargo-lambda with zig from PyPI), zipped as
# Lambda takes them, then their sizes. About 9 minutes on 2 cores from a clean target.
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT_DIR"
local/install.sh
ensure_venv "$VENV" "$LOCAL_DIR/requirements-build.txt"
rustup target add aarch64-unknown-linux-gnu >/dev/null
PATH=$PWD/local/.venv/bin:$PATH cargo lambda build --release --arm64 --output-format zip --workspace \
    --exclude admin --exclude integration-tests
printf '%-22s %12s %12s\n' function zip bootstrap
for zip in target/lambda/*/bootstrap.zip; do
    name=$(basename "$(dirname "$zip")")
    unzipped=$(unzip -l "$zip" | tail -1 | awk '{print $1}')
    printf '%-22s %12s %12s\n' "$name" "$(stat -c %s "$zip")" "$unzipped"
done
