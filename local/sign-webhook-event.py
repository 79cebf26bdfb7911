#!/usr/bin/env python3
"""Wraps a Stripe event (events/webhook/stripe/*.json) in the HTTP API event API Gateway would
send to the webhook function, signed now with a webhook secret, for `cargo lambda invoke
--data-file` or `sam local invoke -e`. Signatures expire after 300 s, which is why the signed
events are made on demand rather than kept in events/.

    local/sign-webhook-event.py events/webhook/stripe/subscription-created.json > /tmp/signed.json
    cargo lambda invoke webhook --data-file /tmp/signed.json

The secret comes from STRIPE_WEBHOOK_SECRETS (first of the list), else whsec_local.
"""
import hashlib
import hmac
import json
import os
import sys
import time


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        body = json.dumps(json.load(f), separators=(",", ":"))
    secret = os.environ.get("STRIPE_WEBHOOK_SECRETS", "whsec_local").split(",")[0].strip()
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    event = {
        "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
        "rawQueryString": "",
        "headers": {"content-type": "application/json; charset=utf-8",
                    "stripe-signature": f"t={timestamp},v1={signature}",
                    "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1",
                     "sourceIp": "3.18.12.63", "userAgent": "Stripe/1.0"},
            "requestId": f"webhook-{timestamp}", "routeKey": "POST /stripe/webhook",
            "stage": "$default", "timeEpoch": timestamp * 1000},
        "body": body, "isBase64Encoded": False,
    }
    json.dump(event, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
