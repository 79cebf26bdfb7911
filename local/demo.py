"""The scripted demo on the local emulators (after local/up.sh, with local/.run/env in the
environment: `make demo` does both).

It walks the product's lifecycle as a list of steps, printing `[ok] ...` or `[FAIL] ...` with what
each step checked, and exits non-zero at the first failure. Each step is a function of the shared
`Demo` state; later flows (checkout, webhook, portal, cancel) add their steps to STEPS.

Sign up first: SignUp on the app client, ConfirmSignUp with the code cognito-local stored, which
makes cognito-local invoke post-confirmation under cargo lambda watch; then the Stripe customer,
the Cognito attribute and the two DynamoDB links are checked.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3

TIMEOUT = float(os.environ.get("DEMO_TIMEOUT", "60"))  # seconds, for each polled check
PASSWORD = "Demo-Passw0rd!"
REGION = "us-east-1"


class Failed(Exception):
    """A check that did not hold; the message says what was expected and what was found."""


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"[FAIL] environment: {name} is not set: run local/up.sh, then "
              "`set -a; . local/.run/env; set +a` (make demo does both)", flush=True)
        sys.exit(2)
    return value


@dataclass
class Demo:
    pool_id: str = field(default_factory=lambda: env("USER_POOL_ID"))
    client_id: str = field(default_factory=lambda: env("USER_POOL_CLIENT_ID"))
    table: str = field(default_factory=lambda: env("TABLE_NAME"))
    stripe_base: str = field(default_factory=lambda: env("STRIPE_API_BASE").rstrip("/"))
    stripe_key: str = field(default_factory=lambda: env("STRIPE_SECRET_KEY"))
    cognito_data_dir: Path = field(default_factory=lambda: Path(env("COGNITO_LOCAL_DATA_DIR")))
    lambda_base: str = field(default_factory=lambda: env("LAMBDA_ENDPOINT").rstrip("/"))
    started_at: int = field(default_factory=lambda: int(time.time()))  # unix seconds
    # Filled in by the steps.
    username: str = ""
    email: str = ""
    sub: str = ""
    customer_id: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        creds = {"region_name": os.environ.get("AWS_REGION", REGION),
                 "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                 "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "local")}
        self.cognito = boto3.client(
            "cognito-idp", endpoint_url=env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"), **creds)
        self.dynamodb = boto3.client(
            "dynamodb", endpoint_url=env("AWS_ENDPOINT_URL_DYNAMODB"), **creds)

    def stripe(self, method: str, path: str, params: dict[str, str] | None = None) -> dict:
        query = urllib.parse.urlencode(params or {})
        url = f"{self.stripe_base}{path}"
        body = None
        if method == "GET" and query:
            url += f"?{query}"
        elif query:
            body = query.encode()
        request = urllib.request.Request(url, data=body, method=method, headers={
            "Authorization": f"Bearer {self.stripe_key}",
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            raise Failed(f"Stripe {method} {path} answered {e.code}: "
                         f"{e.read().decode(errors='replace')[:300]}") from e


def eventually(check: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.5) -> Any:
    """Runs check until it returns without raising Failed, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except Failed as e:
            if time.monotonic() >= deadline:
                raise Failed(f"{e} (still so after {timeout:.0f}s)") from None
        time.sleep(interval)


# --- Sign up first ----------------------------------------------------------------------------

def sign_up(d: Demo) -> str:
    d.username = f"demo-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    d.email = f"{d.username}@example.com"
    answer = d.cognito.sign_up(
        ClientId=d.client_id, Username=d.username, Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": d.email}, {"Name": "name", "Value": "Demo User"}])
    d.sub = answer["UserSub"]
    if answer.get("UserConfirmed"):
        raise Failed("SignUp answered UserConfirmed=true: the user should wait for a confirmation")
    return f"SignUp {d.username} <{d.email}> on client {d.client_id}: sub {d.sub}, unconfirmed"


def confirmation_code(d: Demo) -> str:
    path = d.cognito_data_dir / f"{d.pool_id}.json"
    try:
        users = json.loads(path.read_text()).get("Users", {})
    except (OSError, ValueError) as e:
        raise Failed(f"cannot read cognito-local's database {path}: {e}") from None
    code = users.get(d.username, {}).get("ConfirmationCode")
    if not code:
        raise Failed(f"no ConfirmationCode for {d.username} in {path}")
    return code


def confirm(d: Demo) -> str:
    code = eventually(lambda: confirmation_code(d), timeout=10, interval=0.1)
    started = time.monotonic()
    # cognito-local calls the PostConfirmation trigger before it answers (and only logs its errors).
    d.cognito.confirm_sign_up(ClientId=d.client_id, Username=d.username, ConfirmationCode=code)
    took = time.monotonic() - started
    status = d.cognito.admin_get_user(UserPoolId=d.pool_id, Username=d.username)["UserStatus"]
    if status != "CONFIRMED":
        raise Failed(f"user status is {status} after ConfirmSignUp, expected CONFIRMED")
    return (f"ConfirmSignUp with code {code} from cognito-local's database: CONFIRMED "
            f"(answered in {took:.1f}s, after its PostConfirmation trigger call)")


def stripe_customer(d: Demo) -> str:
    query = f"metadata['cognito_sub']:'{d.sub}'"

    def found() -> list[dict]:
        result = d.stripe("GET", "/v1/customers/search", {"query": query})["data"]
        if not result:
            raise Failed(f"no Stripe customer matches {query}")
        return result

    customers = eventually(found)
    if len(customers) != 1:
        raise Failed(f"{len(customers)} Stripe customers match {query}, expected exactly one: "
                     f"{[c['id'] for c in customers]}")
    customer = customers[0]
    metadata = customer.get("metadata") or {}
    expected = {"cognito_sub": d.sub, "cognito_username": d.username, "user_pool_id": d.pool_id}
    wrong = {k: metadata.get(k) for k, v in expected.items() if metadata.get(k) != v}
    if wrong:
        raise Failed(f"customer {customer['id']} metadata {wrong}, expected {expected}")
    d.customer_id = customer["id"]
    return (f"exactly one customer for {query}: {d.customer_id} (email {customer.get('email')}), "
            f"metadata cognito_username={d.username} user_pool_id={d.pool_id}")


def cognito_attribute(d: Demo) -> str:
    def check() -> str:
        user = d.cognito.admin_get_user(UserPoolId=d.pool_id, Username=d.username)
        attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        value = attributes.get("custom:stripe_customer_id")
        if value != d.customer_id:
            raise Failed(f"custom:stripe_customer_id is {value!r}, expected {d.customer_id}")
        return value

    eventually(check)
    return f"user {d.username} has custom:stripe_customer_id={d.customer_id}"


def dynamo_item(d: Demo, pk: str, sk: str, attribute: str, expected: str) -> str:
    def check() -> str:
        item = d.dynamodb.get_item(TableName=d.table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                   ConsistentRead=True).get("Item")
        if item is None:
            raise Failed(f"no item pk={pk} sk={sk} in {d.table}")
        value = item.get(attribute, {}).get("S")
        if value != expected:
            raise Failed(f"item pk={pk} sk={sk}: {attribute}={value!r}, expected {expected}")
        return value

    eventually(check)
    return f"item pk={pk} sk={sk} has {attribute}={expected}"


def user_to_customer(d: Demo) -> str:
    return dynamo_item(d, f"USER#{d.sub}", "CUSTOMER", "customer_id", d.customer_id)


def customer_to_user(d: Demo) -> str:
    return dynamo_item(d, f"CUSTOMER#{d.customer_id}", "USER", "sub", d.sub)


# --- the HTTP functions, invoked with the events API Gateway would send -------------------------

def id_token_claims(d: Demo) -> dict[str, str]:
    """Signs in and decodes the ID token, as the HTTP API's JWT authorizer would pass it."""
    auth = d.cognito.initiate_auth(ClientId=d.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                   AuthParameters={"USERNAME": d.username, "PASSWORD": PASSWORD})
    payload = auth["AuthenticationResult"]["IdToken"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}


def api(d: Demo, function: str, method: str, path: str, body: dict | None = None,
        query: dict[str, str] | None = None, signed_in: bool = True) -> tuple[int, Any, dict]:
    """Invokes a function under cargo lambda watch with an HTTP API (2.0) event."""
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query or {}),
        "headers": {"content-type": "application/json", "host": "api.local.test"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": "api.local.test",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "demo"},
            "requestId": secrets.token_hex(8), "routeKey": f"{method} {path}",
            "stage": "$default", "timeEpoch": int(time.time() * 1000)},
        "isBase64Encoded": False}
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = json.dumps(body)
    if signed_in:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": d.facts["claims"]}}
    url = f"{d.lambda_base}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=180) as response:
        answer = json.load(response)
    text = answer.get("body") or ""
    return answer["statusCode"], json.loads(text) if text else None, answer.get("headers", {})


def free_key(d: Demo) -> str:
    """A free key from the first minute: GET /me makes it on the free plan's usage plan."""
    d.facts["claims"] = id_token_claims(d)
    status, body, _ = api(d, "portal", "GET", "/me")
    key = (body or {}).get("api_key") or {}
    free = dict(e.split("=", 1) for e in env("PLANS").split(","))["free"]
    if status != 200 or body["plan"] != "free" or key.get("usage_plan") != free or not key.get("value"):
        raise Failed(f"GET /me answered {status}: {body}")
    d.facts["free_key_id"] = key["id"]
    return f"GET /me -> plan free and a key {key['id']} on the free usage plan {free}, made on first need"


def checkout(d: Demo) -> str:
    d.facts["claims"] = id_token_claims(d)
    status, body, _ = api(d, "checkout", "POST", "/checkout", {"lookup_key": "pro_monthly"})
    if status != 200:
        raise Failed(f"POST /checkout answered {status}: {body}")
    d.facts["session_id"] = body["id"]
    return f"POST /checkout {{lookup_key: pro_monthly}} -> 200, session {body['id']} at {body['url']}"


def pay(d: Demo) -> str:
    session_id = d.facts["session_id"]
    d.stripe("POST", f"/_test/checkout/sessions/{session_id}/complete")
    session = d.stripe("GET", f"/v1/checkout/sessions/{session_id}")
    if session.get("payment_status") != "paid":
        raise Failed(f"session {session_id} payment_status {session.get('payment_status')}")
    d.facts["success_url"] = session["success_url"]
    return (f"session {session_id} completed in the Stripe emulator: status {session['status']}, "
            f"payment_status paid, subscription {session.get('subscription')}")


def success_return(d: Demo) -> str:
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(d.facts["success_url"]).query))
    status, _, headers = api(d, "checkout", "GET", "/checkout/complete", query=query,
                             signed_in=False)
    location = headers.get("location", "")
    if status != 303 or not location.endswith("/billing/success"):
        raise Failed(f"GET /checkout/complete answered {status} to {location!r}")
    return f"GET /checkout/complete with the one-time key -> 303 {location}"


def plan_and_key(d: Demo) -> str:
    user = d.cognito.admin_get_user(UserPoolId=d.pool_id, Username=d.username)
    plan = {a["Name"]: a["Value"] for a in user["UserAttributes"]}.get("custom:plan_type")
    if plan != "pro":
        raise Failed(f"custom:plan_type is {plan!r}, expected pro")
    apigw = boto3.client("apigateway", endpoint_url=env("AWS_ENDPOINT_URL_API_GATEWAY"),
                         region_name=REGION, aws_access_key_id="local",
                         aws_secret_access_key="local")
    name = f"billing-user-{d.sub}"
    keys = [k for k in apigw.get_api_keys(nameQuery=name)["items"] if k["name"] == name]
    if len(keys) != 1:
        raise Failed(f"{len(keys)} API keys named {name}, expected one")
    plans = [p["id"] for p in apigw.get_usage_plans(keyId=keys[0]["id"])["items"]]
    pro = dict(e.split("=", 1) for e in env("PLANS").split(","))["pro"]
    if plans != [pro]:
        raise Failed(f"key {keys[0]['id']} is on usage plans {plans}, expected [{pro}] (pro)")
    if keys[0]["id"] != d.facts["free_key_id"]:
        raise Failed(f"key {keys[0]['id']} is not the free key {d.facts['free_key_id']} moved")
    d.facts["key_id"] = keys[0]["id"]
    return f"custom:plan_type=pro; the free key {keys[0]['id']} moved to the pro usage plan {pro}"


def me(d: Demo) -> str:
    status, body, _ = api(d, "portal", "GET", "/me")
    if status != 200 or body["plan"] != "pro" or (body["api_key"] or {}).get("id") != d.facts["key_id"]:
        raise Failed(f"GET /me answered {status}: {body}")
    subscription = body["subscriptions"][0]
    return (f"GET /me -> plan pro, subscription {subscription['id']} {subscription['status']}, "
            f"api_key {body['api_key']['id']} on {body['api_key']['usage_plan']}")


def portal(d: Demo) -> str:
    status, body, _ = api(d, "portal", "POST", "/portal", {"return_path": "/account", "flow": "cancel"})
    if status != 200:
        raise Failed(f"POST /portal answered {status}: {body}")
    d.facts["portal_session"] = body["url"].rstrip("/").rsplit("/", 1)[-1]
    return f"POST /portal -> {body['url']}"


def aws(d: Demo, service: str):
    return boto3.client(service, endpoint_url=env("AWS_ENDPOINT_URL_DYNAMODB"), region_name=REGION,
                        aws_access_key_id="local", aws_secret_access_key="local")


def stack_created(d: Demo) -> str:
    """The pro product's metadata names a template: the webhook gave the subscription a stack."""
    session = d.stripe("GET", f"/v1/checkout/sessions/{d.facts['session_id']}")
    subscription = session["subscription"]
    name = f"billing-{subscription}".replace("_", "-")
    d.facts["subscription"], d.facts["stack"] = subscription, name

    def check() -> str:
        stacks = aws(d, "cloudformation").describe_stacks()["Stacks"]
        status = next((s["StackStatus"] for s in stacks if s["StackName"] == name), None)
        if status != "CREATE_COMPLETE":
            raise Failed(f"stack {name} is {status or 'missing'}")
        return status

    eventually(check)
    return f"webhook created stack {name} (CREATE_COMPLETE) for {subscription}"


def cancel(d: Demo) -> str:
    d.stripe("POST", f"/_test/portal/sessions/{d.facts['portal_session']}/cancel_subscription",
             {"subscription": d.facts["subscription"]})
    return f"subscription {d.facts['subscription']} cancelled in the Billing Portal (Stripe emulator)"


def downgraded(d: Demo) -> str:
    def check() -> str:
        user = d.cognito.admin_get_user(UserPoolId=d.pool_id, Username=d.username)
        plan = {a["Name"]: a["Value"] for a in user["UserAttributes"]}.get("custom:plan_type")
        if plan != "free":
            raise Failed(f"custom:plan_type is {plan!r}, expected free after the webhook")
        apigw = aws(d, "apigateway")
        plans = [p["id"] for p in apigw.get_usage_plans(keyId=d.facts["key_id"])["items"]]
        free = dict(e.split("=", 1) for e in env("PLANS").split(","))["free"]
        if plans != [free]:
            raise Failed(f"key {d.facts['key_id']} on usage plans {plans}, expected [{free}] (free)")
        return free

    free = eventually(check)
    return (f"webhook customer.subscription.deleted -> custom:plan_type=free, key "
            f"{d.facts['key_id']} moved to the free usage plan {free}")


def stack_deleted(d: Demo) -> str:
    def check() -> str:
        stacks = aws(d, "cloudformation").describe_stacks()["Stacks"]
        status = next((s["StackStatus"] for s in stacks if s["StackName"] == d.facts["stack"]), "gone")
        if status not in ("DELETE_COMPLETE", "gone"):
            raise Failed(f"stack {d.facts['stack']} is {status}")
        return status

    status = eventually(check)
    return f"stack {d.facts['stack']} {status}"


# --- the reconciler: an event the webhook never got ---------------------------------------------

def item(d: Demo, pk: str, sk: str) -> dict | None:
    return d.dynamodb.get_item(TableName=d.table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                               ConsistentRead=True).get("Item")


def stored_subscription(d: Demo) -> dict:
    """The subscription as the webhook stored it (CUSTOMER#<cus> SUB#<id>): its status, the
    event that carried it and its state (doc)."""
    found = item(d, f"CUSTOMER#{d.customer_id}", f"SUB#{d.facts['subscription']}") or {}
    return {"status": found.get("status", {}).get("S"),
            "event_id": found.get("event_id", {}).get("S"),
            "doc": json.loads(found["doc"]["S"]) if "doc" in found else {}}


def event_logged(d: Demo, event_id: str) -> str | None:
    """The event log's status of an event (EVENT#<evt>): done once applied, None if never seen."""
    return (item(d, f"EVENT#{event_id}", "EVENT") or {}).get("status", {}).get("S")


def not_logged(d: Demo) -> dict[str, str]:
    """Stripe's events of the last 5 minutes (what a first reconciler run lists) that the event
    log has never seen: id -> type."""
    since = str(int(time.time()) - 300)
    events = d.stripe("GET", "/v1/events", {"created[gte]": since, "limit": "100"})["data"]
    return {e["id"]: e["type"] for e in events if event_logged(d, e["id"]) is None}


def set_delivery(d: Demo, enabled: bool) -> None:
    """The Stripe emulator's webhook delivery switch: off, events are made and listed, never sent."""
    answer = d.stripe("POST", "/_test/webhooks/delivery", {"enabled": str(enabled).lower()})
    if answer.get("enabled") is not enabled:
        raise Failed(f"POST /_test/webhooks/delivery enabled={enabled} answered {answer}")


def listed_event(d: Demo, event_type: str, object_id: str, status: str) -> dict:
    """The event Stripe lists (GET /v1/events) about this object in this status."""
    for event in d.stripe("GET", "/v1/events", {"type": event_type, "limit": "100"})["data"]:
        obj = event["data"]["object"]
        if obj.get("id") == object_id and obj.get("status") == status:
            return event
    raise Failed(f"Stripe lists no {event_type} about {object_id} with status {status}")


def deliveries_settled(d: Demo) -> int:
    """Waits until every event since the demo started was delivered and none came for 2 s
    (localstripe's reach the Stripe emulator a moment after the call, and the webhook may still
    be answering one): a delivery after the switch would make the webhook read the subscription
    from Stripe again, and repair it before the reconciler. Returns how many events there are."""
    query = {"created[gte]": str(d.started_at - 5), "limit": "100"}

    def all_delivered() -> list[str]:
        waiting = d.stripe("GET", "/v1/events", {**query, "delivery_success": "false"})["data"]
        if waiting:
            raise Failed(f"{len(waiting)} events not delivered yet: "
                         + ", ".join(f"{e['type']} {e['id']}" for e in waiting[:5]))
        return [e["id"] for e in d.stripe("GET", "/v1/events", query)["data"]]

    deadline = time.monotonic() + TIMEOUT
    seen = eventually(all_delivered)
    while time.monotonic() < deadline:
        time.sleep(2)
        now = eventually(all_delivered)
        if now == seen:
            return len(now)
        seen = now
    raise Failed(f"Stripe's events still coming after {TIMEOUT:.0f}s")


def billing_admin(*args: str) -> dict:
    """Runs target/<FUNCTIONS_PROFILE, debug unless set>/billing-admin --json ARGS
    (local/build-functions.sh builds it) with the demo's environment (local/.run/env); its log
    goes to local/.run/logs/billing-admin.log."""
    root = Path(__file__).resolve().parent.parent
    binary = (Path(os.environ.get("CARGO_TARGET_DIR") or root / "target")
              / os.environ.get("FUNCTIONS_PROFILE", "debug") / "billing-admin")
    if not binary.is_file():
        raise Failed(f"{binary} is missing: local/build-functions.sh builds it (make demo runs it)")
    command = [str(binary), "--json", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    log = root / "local" / ".run" / "logs" / "billing-admin.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: "
                f"billing-admin --json {' '.join(args)} (exit {done.returncode})\n{done.stderr}")
    if done.returncode != 0:
        raise Failed(f"billing-admin --json {' '.join(args)} exited {done.returncode}: "
                     f"{done.stderr.strip()[-600:]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise Failed(f"billing-admin --json {' '.join(args)} printed {done.stdout[:300]!r}, "
                     "expected one JSON report") from None


def missed_event_repaired(d: Demo) -> str:
    """A renewal fails while the webhook hears nothing; `billing-admin reconcile` applies it.

    Unrepaired, the table keeps the subscription active and the past-due grace never starts: a
    user who never pays keeps pro until the next event. The reconciler lists Stripe's events
    since its cursor (no cursor yet: the last 5 minutes) and applies them through the webhook's
    own code; the event log makes the ones the webhook got no-ops (duplicate). On a fresh start
    it also finds the catalogue's price.created, which local/bootstrap.py makes before it points
    the Stripe emulator at the webhook. The user keeps pro during the grace (PAST_DUE_POLICY,
    default grace:7); the cancel below then works as usual."""
    subscription = d.facts["subscription"]

    def active() -> dict:
        stored = stored_subscription(d)
        if stored["status"] != "active":
            raise Failed(f"stored subscription {subscription} is {stored['status'] or 'missing'}, "
                         "expected active")
        return stored

    settled = deliveries_settled(d)
    before = eventually(active)
    try:
        set_delivery(d, False)
        answer = d.stripe("POST", f"/_test/subscriptions/{subscription}/renewal_failed")
        if answer["subscription"]["status"] != "past_due":
            raise Failed(f"renewal_failed left {subscription} {answer['subscription']['status']}")
        # Switched back on before Stripe lists it, the event would still be delivered.
        missed = eventually(lambda: listed_event(
            d, "customer.subscription.updated", subscription, "past_due"), timeout=30)
    finally:
        set_delivery(d, True)
    renewal_events = answer["events"]  # invoice.payment_failed, customer.subscription.updated
    time.sleep(2)  # deliveries are back on: the events are lost, not late
    lost = active()
    if lost["event_id"] != before["event_id"] or any(event_logged(d, e) for e in renewal_events):
        raise Failed(f"the webhook saw the renewal's events {renewal_events}: stored subscription "
                     f"carries {lost['event_id']}, was {before['event_id']}")

    unseen = not_logged(d)
    report = billing_admin("reconcile")
    applied = report.get("outcomes", {}).get("applied", 0)
    if not report.get("complete") or applied < len(renewal_events):
        raise Failed(f"billing-admin reconcile: {json.dumps(report)}, expected complete and at "
                     f"least {len(renewal_events)} applied")
    not_done = [e for e in renewal_events if event_logged(d, e) != "done"]
    if not_done:
        raise Failed(f"after billing-admin reconcile the event log has not applied {not_done}")
    others = sorted(t for e, t in unseen.items()
                    if e not in renewal_events and event_logged(d, e) == "done")
    stored = stored_subscription(d)
    if (stored["status"], stored["event_id"]) != ("past_due", missed["id"]) \
            or not stored["doc"].get("past_due_since"):
        raise Failed(f"stored subscription {stored['status']} from {stored['event_id']} "
                     f"(past_due_since {stored['doc'].get('past_due_since')}), expected past_due "
                     f"from {missed['id']}")
    user = d.cognito.admin_get_user(UserPoolId=d.pool_id, Username=d.username)
    plan = {a["Name"]: a["Value"] for a in user["UserAttributes"]}.get("custom:plan_type")
    plans = [p["id"] for p in aws(d, "apigateway").get_usage_plans(keyId=d.facts["key_id"])["items"]]
    pro = dict(e.split("=", 1) for e in env("PLANS").split(","))["pro"]
    if plan != "pro" or plans != [pro]:
        raise Failed(f"in the grace: custom:plan_type {plan!r}, key on {plans}, expected pro, [{pro}]")
    lost_types = [d.stripe("GET", f"/v1/events/{e}")["type"] for e in renewal_events]
    repaired = ", ".join([f"the renewal's {len(renewal_events)}"]
                         + [f"{n} {t}" for t, n in sorted(Counter(others).items())])
    return "\n       ".join([
        f"a renewal of {subscription} failed while webhook deliveries were off; billing-admin "
        f"reconcile applied it: stored past_due (grace from {stored['doc']['past_due_since']}), "
        f"still pro, key on the pro usage plan {pro}",
        f"before: Stripe's {settled} events since the demo started all delivered, stored active "
        f"(from {before['event_id']})",
        "lost: " + ", ".join(f"{t} {e}" for t, e in zip(lost_types, renewal_events))
        + f" listed by GET /v1/events (pending_webhooks {missed.get('pending_webhooks')}); "
        "deliveries back on, 2 s later still active, neither event in the event log",
        f"billing-admin --json reconcile: {json.dumps(report)}",
        f"repaired: {applied} applied ({repaired}); the renewal's events done, stored past_due "
        f"from {missed['id']}"])


def metered_usage_reported(d: Demo) -> str:
    """Flat fee plus usage: a metered price (on the pro product, with a Billing Meter) is added to
    the user's subscription; calls counted on the user's key reach the meter once.

    API Gateway's counts come from the moto wrapper's GetUsage (POST /_test/usage records them);
    `billing-admin usage report` runs what the scheduled UsageReporterFunction runs, with
    METERED_PLANS=pro; a second run sends nothing."""
    subscription, key_id = d.facts["subscription"], d.facts["key_id"]
    meter = d.stripe("POST", "/v1/billing/meters", {
        "display_name": "API calls", "event_name": f"demo_calls_{secrets.token_hex(4)}",
        "default_aggregation[formula]": "sum"})
    product = d.stripe("GET", f"/v1/subscriptions/{subscription}")["items"]["data"][0]["price"]["product"]
    price = d.stripe("POST", "/v1/prices", {
        "product": product, "currency": "usd", "unit_amount": "1",
        "recurring[interval]": "month", "recurring[usage_type]": "metered",
        "recurring[meter]": meter["id"]})
    d.stripe("POST", "/v1/subscription_items", {"subscription": subscription, "price": price["id"]})

    def metered_item_stored() -> dict:
        stored = stored_subscription(d)
        if price["id"] not in json.dumps(stored["doc"]):
            raise Failed(f"stored subscription {subscription} has no item of {price['id']} yet")
        return stored

    eventually(metered_item_stored)
    calls = 42
    day = time.strftime("%Y-%m-%d", time.gmtime())
    moto = env("AWS_ENDPOINT_URL_API_GATEWAY")
    request = urllib.request.Request(
        f"{moto}/_test/usage", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"keyId": key_id, "day": day, "calls": calls}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        json.load(response)
    os.environ["METERED_PLANS"] = "pro"
    first = billing_admin("usage", "report")
    second = billing_admin("usage", "report")
    if first.get("calls_reported") != calls or second.get("deltas_sent") != 0:
        raise Failed(f"usage report: first {json.dumps(first)}, second {json.dumps(second)}; "
                     f"expected {calls} calls once")
    start = int(time.time()) // 86400 * 86400
    summaries = d.stripe("GET", f"/v1/billing/meters/{meter['id']}/event_summaries", {
        "customer": d.customer_id, "start_time": str(start), "end_time": str(start + 86400)})
    total = sum(s["aggregated_value"] for s in summaries["data"])
    if total != calls:
        raise Failed(f"meter {meter['id']} sums {total} for the customer, expected {calls}")
    return (f"metered price {price['id']} (meter {meter['id']}) added to {subscription}; {calls} "
            f"calls on key {key_id} today; billing-admin usage report sent {first['calls_reported']} "
            f"in {first['deltas_sent']} meter event, the second run {second['deltas_sent']}; the "
            f"meter's summary for today: {total:g}")


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Demo], str]
    hint: str = ""


TRIGGER_HINT = ("cognito-local only logs a failing trigger: see local/.run/logs/cognito.log and "
                "local/.run/logs/lambda.log")

LAMBDA_HINT = "see local/.run/logs/lambda.log (the functions) and local/.run/logs/stripe-front.log"

RECONCILE_HINT = ("see local/.run/logs/billing-admin.log, local/.run/logs/stripe-front.log (events, "
                  "the delivery switch) and local/.run/logs/lambda.log; by hand after make dev: "
                  "make admin ARGS=\"reconcile\"")

STEPS: list[Step] = [
    Step("sign up", sign_up),
    Step("confirm sign-up", confirm, TRIGGER_HINT),
    Step("one Stripe customer", stripe_customer, TRIGGER_HINT),
    Step("Cognito custom:stripe_customer_id", cognito_attribute, TRIGGER_HINT),
    Step("DynamoDB user -> customer", user_to_customer, TRIGGER_HINT),
    Step("DynamoDB customer -> user", customer_to_user, TRIGGER_HINT),
    Step("a free API key before paying (GET /me)", free_key, LAMBDA_HINT),
    Step("checkout", checkout, LAMBDA_HINT),
    Step("payment in the Stripe emulator", pay),
    Step("success return", success_return, LAMBDA_HINT),
    Step("plan pro and one API key", plan_and_key, LAMBDA_HINT),
    Step("GET /me", me, LAMBDA_HINT),
    Step("billing portal", portal, LAMBDA_HINT),
    Step("stack for the subscription (webhook)", stack_created, LAMBDA_HINT),
    Step("a missed event repaired by the reconciler", missed_event_repaired, RECONCILE_HINT),
    Step("metered usage reported to Stripe's meter", metered_usage_reported, RECONCILE_HINT),
    Step("cancel in the portal", cancel),
    Step("plan free, key moved (webhook)", downgraded, LAMBDA_HINT),
    Step("stack deleted (webhook)", stack_deleted, LAMBDA_HINT),
]


def main() -> int:
    demo = Demo()
    print(f"demo: user pool {demo.pool_id}, app client {demo.client_id}, table {demo.table}, "
          f"Stripe {demo.stripe_base}", flush=True)
    for number, step in enumerate(STEPS, 1):
        try:
            detail = step.run(demo)
        except Failed as e:
            print(f"[FAIL] {number}. {step.title}: {e}", flush=True)
            if step.hint:
                print(f"       {step.hint}", flush=True)
            return 1
        except Exception as e:  # an emulator error: report it as the step's failure
            print(f"[FAIL] {number}. {step.title}: {type(e).__name__}: {e}", flush=True)
            if step.hint:
                print(f"       {step.hint}", flush=True)
            return 1
        print(f"[ok] {number}. {step.title}: {detail}", flush=True)
    print(f"demo: all {len(STEPS)} steps passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
