"""Python peer of the Rust Stripe webhook Lambda (POST /stripe/webhook), for the benchmark.

It verifies the signature. An event whose whole effect is one stored record (product.*: the
product document; invoice.* with a customer: the invoice) is written with the event's completion
in one TransactWriteItems, without a claim, where the event is neither done nor claimed (or its
claim ran out) and the record is newer than the stored one. Otherwise nothing is written there,
and the event goes step by step as any other: it claims the event in DynamoDB (the event ledger),
then:
- product.*: stores the product document (newer-only), marks the event done;
- customer.subscription.*: reads the customer's partition in one Query (the link: user, plan,
  API key; every stored subscription), the product's plan from the stored catalogue (Stripe only
  on a miss), and when the plan of all the customer's subscriptions changes, sets the user's
  Cognito attribute and moves the API key between usage plans; then stores the subscription
  (newer-only), the link's new plan and the event's completion in one TransactWriteItems;
- invoice.*: stores the invoice (newer-only) and the event's completion in one
  TransactWriteItems.
A renewal (same plan) is 4 DynamoDB calls: claim, Query, catalogue GetItem, transaction; an
invoice or a product is 1 when nothing stands in the way: the transaction.
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
USER_POOL_ID = os.environ.get("USER_POOL_ID", "")
PLAN_ATTRIBUTE = "custom:plan_type"
# PLANS: "free=up_free,pro=up_pro", lowest first; a plan without "=" has no usage plan.
PLANS = [entry.strip().partition("=") for entry in os.environ.get("PLANS", "free").split(",") if entry.strip()]
PLAN_RANK = {name: rank for rank, (name, _, _) in enumerate(PLANS)}
USAGE_PLANS = {name: usage_plan or None for name, _, usage_plan in PLANS}
FREE_PLAN = PLANS[0][0]
ENTITLED = ("active", "trialing", "past_due")
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated",
                       "customer.subscription.deleted")
INVOICE_EVENTS = ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
                  "invoice.payment_failed")
LIVEMODE = os.environ.get("LIVEMODE", "false") == "true"
WEBHOOK_SECRETS = [
    secret.strip()
    for secret in os.environ.get("STRIPE_WEBHOOK_SECRETS", "").split(",")
    if secret.strip()
]

# Clients are created once per execution environment and reused across invocations.
# The Rust function creates all of them at start; CloudFormation is not used here.
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
    apply = apply_for(stripe_event.type)
    if apply is None:
        log(stripe_event, "ignored")
        return respond(200, {"received": True, "outcome": "ignored"})

    now = int(time.time())
    event_key = {"pk": {"S": f"EVENT#{stripe_event.id}"}, "sk": {"S": "EVENT"}}

    record = record_alone(stripe_event)
    if record is not None:
        try:
            written = record_at_once(event_key, record, stripe_event.created, now)
        except Exception as err:
            log_failure(stripe_event, err)
            return respond(500, {"error": "retry_later"})
        if written:
            log(stripe_event, "applied")
            return respond(200, {"received": True, "outcome": "applied"})
        # Declined: the step-by-step path below tells a duplicate, an event in progress and a stale
        # record apart.

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
        outcome = apply(stripe_event, event_key, now)
    except Exception as err:
        log_failure(stripe_event, err)
        release(event_key)
        return respond(500, {"error": "retry_later"})
    log(stripe_event, outcome)
    return respond(200, {"received": True, "outcome": outcome})


def unclaimed(now):
    """The claim's condition: the event has no item, or another delivery's claim ran out."""
    return {
        "ConditionExpression": "attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
        "ExpressionAttributeNames": {"#pk": "pk", "#status": "status", "#lease": "lease_until"},
        "ExpressionAttributeValues": {":processing": {"S": "processing"}, ":now": {"N": str(now)}},
    }


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
            **unclaimed(now),
        )
        return True
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False


def apply_for(event_type):
    """The function that applies an event of this type and completes it, or None to ignore it."""
    if event_type.startswith("product."):
        return apply_product
    if event_type in SUBSCRIPTION_EVENTS:
        return apply_subscription
    if event_type in INVOICE_EVENTS:
        return apply_invoice
    return None


def done_item(event_key, now):
    return {**event_key, "status": {"S": "done"}, "expires_at": {"N": str(now + EVENT_TTL_SECS)}}


def complete(event_key, now):
    dynamodb.put_item(TableName=TABLE_NAME, Item=done_item(event_key, now))


def newer_only_put(item, created):
    """A transaction's Put that applies only over an older stored version."""
    return {
        "Put": {
            "TableName": TABLE_NAME,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(#pk) OR #created < :created",
            "ExpressionAttributeNames": {"#pk": "pk", "#created": "event_created"},
            "ExpressionAttributeValues": {":created": {"N": str(created)}},
        }
    }


def record_alone(stripe_event):
    """The one item that is the whole of the event's effect (product.*: the product; invoice.*
    with a customer: the invoice), or None when the event has more to do, or nothing."""
    if stripe_event.type.startswith("product."):
        return product_item(stripe_event)
    if stripe_event.type in INVOICE_EVENTS:
        return invoice_item(stripe_event)
    return None


def record_at_once(event_key, item, created, now):
    """Writes the event done (unless another delivery did or holds its claim) and the record
    (newer-only) in one transaction, without claiming the event first: True if written, False if
    a condition declined it (then nothing was written)."""
    try:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE_NAME, "Item": done_item(event_key, now), **unclaimed(now)}},
            newer_only_put(item, created),
        ])
        return True
    except dynamodb.exceptions.TransactionCanceledException:
        return False


def apply_product(stripe_event, event_key, now):
    outcome = store_product(stripe_event)
    complete(event_key, now)
    return outcome


def apply_subscription(stripe_event, event_key, now):
    """Stores the subscription and applies the plan of all the customer's subscriptions to its
    user: the Cognito attribute and the API key's usage plan, only when the plan changes."""
    subscription = stripe_event.data.object.to_dict()
    customer_pk = {"S": f"CUSTOMER#{subscription['customer']}"}
    items = dynamodb.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": "pk"},
        ExpressionAttributeValues={":pk": customer_pk},
        ConsistentRead=True,
    )["Items"]
    link = next((item for item in items if item["sk"]["S"] == "LINK"), None)
    stored = {item["sk"]["S"][4:]: item for item in items if item["sk"]["S"].startswith("SUB#")}
    previous = stored.get(subscription["id"])
    if previous is not None and int(previous["event_created"]["N"]) >= stripe_event.created:
        complete(event_key, now)
        return "stale"

    first_item = subscription["items"]["data"][0]
    price = first_item["price"]
    product = price["product"] if isinstance(price["product"], str) else price["product"]["id"]
    state = {
        "status": subscription["status"],
        "price": price["id"],
        "product": product,
        "plan": product_plan(product),
        "current_period_end": first_item.get("current_period_end"),
    }
    states = [json.loads(item["doc"]["S"]) for sid, item in stored.items() if sid != subscription["id"]]
    plan = effective_plan(states + [state])

    writes = [newer_only_put({
        "pk": customer_pk,
        "sk": {"S": f"SUB#{subscription['id']}"},
        "doc": {"S": json.dumps(state, separators=(",", ":"))},
        "event_created": {"N": str(stripe_event.created)},
        "event_id": {"S": stripe_event.id},
    }, stripe_event.created)]
    outcome = "unmapped" if link is None else "applied"
    if link is not None and link.get("plan", {}).get("S") != plan:
        key_id = provision(link, plan)
        writes.append({"Update": {
            "TableName": TABLE_NAME,
            "Key": {"pk": customer_pk, "sk": {"S": "LINK"}},
            "UpdateExpression": "SET #plan = :plan, #key = :key",
            "ExpressionAttributeNames": {"#plan": "plan", "#key": "key_id"},
            "ExpressionAttributeValues": {":plan": {"S": plan}, ":key": {"S": key_id or ""}},
        }})
    writes.append({"Put": {"TableName": TABLE_NAME, "Item": done_item(event_key, now)}})
    try:
        dynamodb.transact_write_items(TransactItems=writes)
    except dynamodb.exceptions.TransactionCanceledException:
        # A newer state of the subscription was stored meanwhile.
        complete(event_key, now)
        return "stale"
    return outcome


def product_plan(product):
    """The product's plan from the stored catalogue; Stripe only when it is not stored."""
    item = dynamodb.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": f"PRODUCT#{product}"}, "sk": {"S": "PRODUCT"}}
    ).get("Item")
    if item is not None:
        return json.loads(item["doc"]["S"]).get("plan")
    return (stripe_client.products.retrieve(product).metadata or {}).get("plan")


def effective_plan(states):
    """The highest plan of the subscriptions that entitle to one; the lowest plan otherwise."""
    plan = FREE_PLAN
    for state in states:
        if state["status"] in ENTITLED and PLAN_RANK.get(state["plan"], -1) > PLAN_RANK[plan]:
            plan = state["plan"]
    return plan


def provision(link, plan):
    """Sets the user's plan attribute and moves its API key to the plan's usage plan (a key is
    created when there is none); returns the key's id."""
    cognito.admin_update_user_attributes(
        UserPoolId=USER_POOL_ID,
        Username=link["username"]["S"],
        UserAttributes=[{"Name": PLAN_ATTRIBUTE, "Value": plan}],
    )
    key_id = link.get("key_id", {}).get("S") or None
    old_usage_plan = USAGE_PLANS.get(link.get("plan", {}).get("S"))
    new_usage_plan = USAGE_PLANS.get(plan)
    if old_usage_plan == new_usage_plan:
        return key_id
    if key_id is None and new_usage_plan is not None:
        key_id = apigateway.create_api_key(name=link["sub"]["S"], enabled=True)["id"]
    if key_id is not None and new_usage_plan is not None:
        apigateway.create_usage_plan_key(usagePlanId=new_usage_plan, keyId=key_id, keyType="API_KEY")
    if key_id is not None and old_usage_plan is not None:
        apigateway.delete_usage_plan_key(usagePlanId=old_usage_plan, keyId=key_id)
    return key_id


def apply_invoice(stripe_event, event_key, now):
    """Stores the invoice's item and completes the event, in one transaction."""
    item = invoice_item(stripe_event)
    if item is None:
        complete(event_key, now)
        return "ignored"
    try:
        dynamodb.transact_write_items(TransactItems=[
            newer_only_put(item, stripe_event.created),
            {"Put": {"TableName": TABLE_NAME, "Item": done_item(event_key, now)}},
        ])
    except dynamodb.exceptions.TransactionCanceledException:
        complete(event_key, now)
        return "stale"
    return "applied"


def invoice_item(stripe_event):
    """The invoice's item: what a billing page shows of the invoice, with whether it left the
    customer delinquent, as of the event; None for an invoice without a customer."""
    invoice = stripe_event.data.object.to_dict()
    customer = invoice.get("customer")
    if not customer:
        return None
    doc = {
        "status": invoice.get("status"),
        "number": invoice.get("number"),
        "currency": invoice.get("currency"),
        "amount_due": invoice.get("amount_due"),
        "amount_paid": invoice.get("amount_paid"),
        "period_end": invoice.get("period_end"),
        "delinquent": stripe_event.type == "invoice.payment_failed",
        "event_type": stripe_event.type,
    }
    return {
        "pk": {"S": f"CUSTOMER#{customer}"},
        "sk": {"S": f"INVOICE#{invoice['id']}"},
        "doc": {"S": json.dumps(doc, separators=(",", ":"))},
        "event_created": {"N": str(stripe_event.created)},
        "event_id": {"S": stripe_event.id},
    }


def product_item(stripe_event):
    """The product's item: its document as of the event."""
    product = stripe_event.data.object.to_dict()
    metadata = product.get("metadata") or {}
    doc = {
        "name": product.get("name"),
        "active": bool(product.get("active")) and not product.get("deleted", False),
        "metadata": metadata,
        "plan": metadata.get("plan"),
    }
    return {
        "pk": {"S": f"PRODUCT#{product['id']}"},
        "sk": {"S": "PRODUCT"},
        "doc": {"S": json.dumps(doc, separators=(",", ":"))},
        "event_created": {"N": str(stripe_event.created)},
        "event_id": {"S": stripe_event.id},
    }


def store_product(stripe_event):
    """Writes the product document unless a newer event already did: "applied" or "stale"."""
    item = product_item(stripe_event)
    try:
        dynamodb.put_item(
            TableName=TABLE_NAME,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk) OR #created < :created",
            ExpressionAttributeNames={"#pk": "pk", "#created": "event_created"},
            ExpressionAttributeValues={":created": {"N": str(stripe_event.created)}},
        )
        return "applied"
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass
    dynamodb.get_item(TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]}, ConsistentRead=False)
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
