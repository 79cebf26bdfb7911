#!/usr/bin/env bash
# Checks template.yaml offline: cfn-lint, then `sam validate --lint`. Exits non-zero when either
# reports anything (warnings included).
#
# The tools live in local/.venv-sam (python3 -m venv + pip install -r local/requirements-sam.txt),
# installed on first use and again only when that file or the Python version changes.
#
# Offline: `sam validate --lint` runs cfn-lint as a library on the template; it needs no
# credentials and no region (plain `sam validate`, without --lint, does need a region: it builds
# an IAM client). Still, the AWS settings below are dummies so that nothing here can reach an
# account, telemetry is off, and SAM CLI's own settings live in the venv with a fresh "last
# version check" time, so it does not ask PyPI for a newer release either.
set -euo pipefail
# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SAM_VENV=$LOCAL_DIR/.venv-sam

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH: Python 3.10+ is needed for local/.venv-sam"

ensure_venv "$SAM_VENV" "$LOCAL_DIR/requirements-sam.txt"

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export SAM_CLI_TELEMETRY=0
export __SAM_CLI_APP_DIR=$SAM_VENV/sam-cli-app
mkdir -p "$__SAM_CLI_APP_DIR"
printf '{"telemetryEnabled": false, "lastVersionCheck": %s.0}\n' "$(date +%s)" \
    >"$__SAM_CLI_APP_DIR/metadata.json"

cd "$ROOT_DIR"
status=0
log "cfn-lint $("$SAM_VENV/bin/cfn-lint" --version | awk '{print $2}') template.yaml"
"$SAM_VENV/bin/cfn-lint" -- template.yaml || status=1
log "sam validate --lint ($("$SAM_VENV/bin/sam" --version))"
"$SAM_VENV/bin/sam" validate --lint --template template.yaml || status=1
log "IAM policies: no write action on every resource (local/check-policies.py)"
"$SAM_VENV/bin/python" local/check-policies.py template.yaml || status=1

if [ "$status" -ne 0 ]; then
    die "template.yaml has findings (above)"
fi
log "template.yaml: cfn-lint and sam validate --lint are clean"
