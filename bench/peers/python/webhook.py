"""Python peer of the Rust Stripe webhook Lambda (POST /stripe/webhook), for the benchmark.

It does the same work as the Rust function for a product.* event: verify the signature,
claim the event in DynamoDB, store the product document, mark the event done.
"""

import base64
import json
import os
import time

import boto3
import stripe
from botocore.config import Config

MAX_EVENT_BYTES = 512 * 1024
LEASE_SECS = 30
EVENT_TTL_SECS = 35 * 24 * 60 * 60

TABLE_NAME = os.environ.get("TABLE_NAME", "")
LIVEMODE = os.environ.get("LIVEMODE", "false") == "true"
WEBHOOK_SECRETS = [
    secret.strip()
    for secret in os.environ.get("STRIPE_WEBHOOK_SECRETS", "").split(",")
    if secret.strip()
]

# Clients are created once per execution environment and reused across invocations.
# The Rust function creates all of them at start; only DynamoDB is used for product events.
stripe_client = stripe.StripeClient(
    os.environ["STRIPE_SECRET_KEY"],
    base_addresses=(
        {"api": os.environ["STRIPE_API_BASE"]} if os.environ.get("STRIPE_API_BASE") else None
    ),
)

aws_config = Config(retries={"mode": "standard", "max_attempts": 3})
dynamodb = boto3.client("dynamodb", config=aws_config)
cognito = boto3.client("cognito-idp", config=aws_config)
apigateway = boto3.client("apigateway", config=aws_config)
cloudformation = boto3.client("cloudformation", config=aws_config)


def respond(status_code, body):
    return {
        "statusCode": status_code,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def log(stripe_event, outcome):
    print(json.dumps({"event_id": stripe_event.id, "event_type": stripe_event.type, "outcome": outcome}))


def log_failure(stripe_event, err):
    print(
        json.dumps(
            {
                "level": "ERROR",
                "event_id": stripe_event.id,
                "event_type": stripe_event.type,
                "error": type(err).__name__,
                "message": "event failed; Stripe will retry",
            }
        )
    )


def verify(payload, signature):
    for secret in WEBHOOK_SECRETS:
        try:
            return stripe.Webhook.construct_event(payload, signature, secret)
        except stripe.SignatureVerificationError:
            continue
    return None


def handler(event, context):
    if event.get("requestContext", {}).get("http", {}).get("method") != "POST":
        return respond(405, {"error": "method_not_allowed", "message": "POST only"})
    body = event.get("body") or ""
    payload = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    if len(payload) > MAX_EVENT_BYTES:
        return respond(413, {"error": "body_too_large", "message": "event too large"})

    signature = (event.get("headers") or {}).get("stripe-signature")
    try:
        stripe_event = verify(payload, signature)
    except ValueError:
        print(json.dumps({"level": "WARN", "message": "webhook refused: unparseable event"}))
        return respond(400, {"error": "invalid_event", "message": "the body is not a Stripe event we can read"})
    if stripe_event is None:
        print(json.dumps({"level": "WARN", "message": "webhook refused: signature"}))
        return respond(
            400,
            {"error": "invalid_signature", "message": "the Stripe-Signature header does not verify"},
        )
    if stripe_event.livemode != LIVEMODE:
        print(json.dumps({"level": "WARN", "event_id": stripe_event.id, "message": "webhook refused: livemode differs"}))
        return respond(
            400,
            {"error": "livemode_mismatch", "message": "event livemode does not match this deployment"},
        )
    if not stripe_event.type.startswith("product."):
        log(stripe_event, "ignored")
        return respond(200, {"received": True, "outcome": "ignored"})

    now = int(time.time())
    event_key = {"pk": {"S": f"EVENT#{stripe_event.id}"}, "sk": {"S": "EVENT"}}

    try:
        claimed = claim(event_key, now)
        if not claimed:
            previous = dynamodb.get_item(TableName=TABLE_NAME, Key=event_key, ConsistentRead=False).get("Item", {})
    except Exception as err:
        log_failure(stripe_event, err)
        return respond(500, {"error": "retry_later"})
    if not claimed:
        if previous.get("status", {}).get("S") == "done":
            log(stripe_event, "duplicate")
            return respond(200, {"received": True, "outcome": "duplicate"})
        log(stripe_event, "in_progress")
        return respond(409, {"error": "in_progress", "message": "this event is being applied; retry later"})

    try:
        outcome = store_product(stripe_event)
        dynamodb.put_item(
            TableName=TABLE_NAME,
            Item={
                **event_key,
                "status": {"S": "done"},
                "expires_at": {"N": str(now + EVENT_TTL_SECS)},
            },
        )
    except Exception as err:
        log_failure(stripe_event, err)
        release(event_key)
        return respond(500, {"error": "retry_later"})
    log(stripe_event, outcome)
    return respond(200, {"received": True, "outcome": outcome})


def claim(event_key, now):
    """Takes the event: True if this delivery may apply it, False if another one has or is doing so."""
    try:
        dynamodb.put_item(
            TableName=TABLE_NAME,
            Item={
                **event_key,
                "status": {"S": "processing"},
                "lease_until": {"N": str(now + LEASE_SECS)},
                "expires_at": {"N": str(now + EVENT_TTL_SECS)},
            },
            ConditionExpression="attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
            ExpressionAttributeNames={"#pk": "pk", "#status": "status", "#lease": "lease_until"},
            ExpressionAttributeValues={":processing": {"S": "processing"}, ":now": {"N": str(now)}},
        )
        return True
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False


def store_product(stripe_event):
    """Writes the product document unless a newer event already did: "applied" or "stale"."""
    product = stripe_event.data.object.to_dict()
    key = {"pk": {"S": f"PRODUCT#{product['id']}"}, "sk": {"S": "PRODUCT"}}
    metadata = product.get("metadata") or {}
    doc = {
        "name": product.get("name"),
        "active": bool(product.get("active")) and not product.get("deleted", False),
        "metadata": metadata,
        "plan": metadata.get("plan"),
    }
    try:
        dynamodb.put_item(
            TableName=TABLE_NAME,
            Item={
                **key,
                "doc": {"S": json.dumps(doc, separators=(",", ":"))},
                "event_created": {"N": str(stripe_event.created)},
                "event_id": {"S": stripe_event.id},
            },
            ConditionExpression="attribute_not_exists(#pk) OR #created < :created",
            ExpressionAttributeNames={"#pk": "pk", "#created": "event_created"},
            ExpressionAttributeValues={":created": {"N": str(stripe_event.created)}},
        )
        return "applied"
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass
    dynamodb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=False)
    return "stale"


def release(event_key):
    """Gives the event back so that Stripe's retry can claim it again."""
    try:
        dynamodb.delete_item(
            TableName=TABLE_NAME,
            Key=event_key,
            ConditionExpression="#status = :processing",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":processing": {"S": "processing"}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass
    except Exception as err:
        print(json.dumps({"level": "ERROR", "error": type(err).__name__, "message": "could not release the event"}))
