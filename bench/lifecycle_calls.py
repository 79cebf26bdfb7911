#!/usr/bin/env python3
"""Upstream calls per lifecycle: runs the demo (sign-up -> customer -> checkout -> payment ->
pro + API key -> /me -> portal -> stack -> cancel -> free, key moved, stack deleted) and counts,
at the emulators, the calls our functions made: at moto (DynamoDB, API Gateway, CloudFormation;
callers told apart by User-Agent: `aws-sdk-rust` is ours, `Boto3` the demo's own checks) and at
the Stripe front (async-stripe's User-Agent against the demo's urllib). Writes
bench/.out/lifecycle-calls.json for bench/report.py. Needs the environment of local/up.sh.
"""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def call(url: str, method: str = "GET") -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as answer:
        return json.load(answer)


def main() -> int:
    moto = f"http://127.0.0.1:{os.environ['MOTO_PORT']}/_local/calls"
    stripe = f"{os.environ['STRIPE_API_BASE'].rstrip('/')}/_test/calls"
    call(moto, "DELETE")
    call(stripe, "DELETE")
    demo = subprocess.run([sys.executable, str(ROOT / "local" / "demo.py")],
                          capture_output=True, text=True)
    if demo.returncode != 0:
        print(demo.stdout[-3000:], demo.stderr[-3000:], sep="\n")
        print("lifecycle_calls: the demo failed", file=sys.stderr)
        return 1
    aws, stripe_calls = call(moto), call(stripe)
    ours_aws = {key.split(" ", 1)[1]: n for key, n in aws.items() if key.startswith("aws-sdk-rust ")}
    ours_stripe = sum(n for key, n in stripe_calls.items() if not key.startswith("Python-urllib"))
    counts = {f"AWS {service} (moto)": n for service, n in sorted(ours_aws.items())}
    counts["Stripe (the Stripe front)"] = ours_stripe
    counts["total"] = sum(ours_aws.values()) + ours_stripe
    result = {
        "what": "Calls made by our functions over the demo's lifecycle (local/demo.py: sign-up "
                "to cancellation, 16 steps), counted at the emulators by User-Agent.",
        "counts": counts,
        "note": "Cognito calls (the trigger's and the webhook's attribute updates) are not "
                "counted: cognito-local logs no per-request line. The peers implement the "
                "webhook only, so this figure has no peer column. Raw counts: "
                f"moto {aws}; Stripe front {stripe_calls}.",
    }
    out = ROOT / "bench" / ".out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lifecycle-calls.json").write_text(json.dumps(result, indent=1))
    print(f"lifecycle calls: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
