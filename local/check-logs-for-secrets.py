#!/usr/bin/env python3
"""Fails when a secret of local/.run/env appears in any log under local/.run/logs.

Secrets are the values of the variables whose name contains SECRET (the Stripe key, the
webhook signing secrets, one per comma), except the emulators' dummy AWS credentials. The
report names the file and line, never the secret.

    local/.venv/bin/python local/check-logs-for-secrets.py [--env local/.run/env] [--logs DIR]
"""
import argparse
import sys
from pathlib import Path

DUMMY_VALUES = {"local", "test", ""}


def secrets_of(env_file: Path) -> dict:
    secrets = {}
    for line in env_file.read_text().splitlines():
        name, _, value = line.partition("=")
        if "SECRET" not in name:
            continue
        for part in value.strip('"').split(","):
            part = part.strip()
            if part not in DUMMY_VALUES:
                secrets[part] = name
    return secrets


def leaks(logs: Path, secrets: dict) -> list:
    found = []
    for log in sorted(logs.glob("*.log")):
        with log.open(errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                for secret, name in secrets.items():
                    if secret in line:
                        found.append(f"{log}:{number}: the value of {name}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="local/.run/env", type=Path)
    parser.add_argument("--logs", default="local/.run/logs", type=Path)
    args = parser.parse_args()
    secrets = secrets_of(args.env)
    if not secrets:
        print(f"check-logs-for-secrets: no secret in {args.env}", file=sys.stderr)
        return 1
    found = leaks(args.logs, secrets)
    for leak in found:
        print(f"check-logs-for-secrets: {leak}", file=sys.stderr)
    if found:
        return 1
    print(f"check-logs-for-secrets: {len(secrets)} secrets, none in {args.logs}/*.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
