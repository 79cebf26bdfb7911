#!/usr/bin/env python3
"""Upstream calls per lifecycle: runs the demo (sign-up -> customer -> checkout -> payment ->
pro + API key -> /me -> portal -> stack -> cancel -> free, key moved, stack deleted) and counts,
at the emulators, the calls our functions made: at moto (DynamoDB, API Gateway, CloudFormation),
in cognito-local's debug log and at the Stripe front, callers told apart by User-Agent
(`aws-sdk-rust` and async-stripe's are ours, `Boto3` and urllib the demo's own checks). Writes
bench/.out/lifecycle-calls.json for bench/report.py. Needs the environment of local/up.sh.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def call(url: str, method: str = "GET") -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as answer:
        return json.load(answer)


def cognito_calls(log: str) -> dict[str, int] | None:
    """Requests by caller in cognito-local's debug log ("request completed" lines, with the
    request's headers); None when it logged no request at all (not in debug)."""
    completed = [line for line in log.splitlines() if "request completed" in line]
    if not completed:
        return None
    counts: dict[str, int] = {}
    for line in completed:
        agent = re.search(r'"user-agent":"([^"/]*)', line)
        caller = agent.group(1) if agent else "unknown"
        counts[caller] = counts.get(caller, 0) + 1
    return counts


def main() -> int:
    moto = f"http://127.0.0.1:{os.environ['MOTO_PORT']}/_local/calls"
    stripe = f"{os.environ['STRIPE_API_BASE'].rstrip('/')}/_test/calls"
    call(moto, "DELETE")
    call(stripe, "DELETE")
    cognito_log = ROOT / "local" / ".run" / "logs" / "cognito.log"
    log_start = cognito_log.stat().st_size
    demo = subprocess.run([sys.executable, str(ROOT / "local" / "demo.py")],
                          capture_output=True, text=True)
    if demo.returncode != 0:
        print(demo.stdout[-3000:], demo.stderr[-3000:], sep="\n")
        print("lifecycle_calls: the demo failed", file=sys.stderr)
        return 1
    aws, stripe_calls = call(moto), call(stripe)
    with cognito_log.open("rb") as log:
        log.seek(log_start)
        cognito = cognito_calls(log.read().decode(errors="replace"))
    if cognito is not None:
        aws.update({f"{caller} cognito-idp": n for caller, n in cognito.items()})
    ours_aws = {key.split(" ", 1)[1]: n for key, n in aws.items() if key.startswith("aws-sdk-rust ")}
    ours_stripe = sum(n for key, n in stripe_calls.items() if not key.startswith("Python-urllib"))
    counts = {f"AWS {service} ({'cognito-local' if service == 'cognito-idp' else 'moto'})": n
              for service, n in sorted(ours_aws.items())}
    counts["Stripe (the Stripe front)"] = ours_stripe
    counts["total"] = sum(ours_aws.values()) + ours_stripe
    result = {
        "what": "Calls made by our functions over the demo's lifecycle (local/demo.py: sign-up "
                "to cancellation, 16 steps), counted at the emulators by User-Agent.",
        "counts": counts,
        "note": ("Cognito calls are counted in cognito-local's debug log (COGNITO_DEBUG=1). "
                 if cognito is not None else
                 "Cognito calls are not counted: cognito-local ran without COGNITO_DEBUG=1. ")
                + "The peers implement the webhook only, so this figure has no peer column. Raw "
                f"counts (caller and service): AWS {aws}; Stripe front {stripe_calls}.",
    }
    out = ROOT / "bench" / ".out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lifecycle-calls.json").write_text(json.dumps(result, indent=1))
    print(f"lifecycle calls: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
