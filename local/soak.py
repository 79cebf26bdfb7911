#!/usr/bin/env python3
"""Load and fault run of the Stripe webhook on the local emulators (loopback only).

Signs up 2 x CUSTOMERS users (the trigger gives each a Stripe customer), then builds for each the
same subscription lifecycle as signed Stripe events (incomplete -> active ... -> active,
past_due, canceled or unpaid at the end):
  - the "replay" group gets its events once each, one at a time, in order;
  - the "soak" group gets EVENTS deliveries (DUPLICATES of them repeated events), shuffled, at
    CONCURRENCY, while the AWS emulator (moto) is restarted once mid-run; every non-2xx answer is
    retried the way Stripe does (with backoff), each retry signed anew.
Deliveries go to FUNCTIONS webhook processes polling a local Lambda Runtime API (bench-harness),
so concurrent deliveries really run at once, as on Lambda; --functions 0 sends them through
cargo lambda watch instead, which runs one invocation of a function at a time.
At the end it checks that no delivery was lost (every event is recorded done and was answered
2xx), that each soak customer's state (subscription, plan attribute, API keys and their usage
plans, stack) equals its replay twin's, and that no user has two API keys or two Stripe
customers. It prints the figures and exits 1 when a check fails.

    local/soak.py                                  # 200 customers, 2,000 events, 30%, 16
    local/soak.py --customers 20 --events 200      # the short run of the test command

Needs local/up.sh and `set -a; . local/.run/env; set +a` (make soak does both).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Soak-Passw0rd!"
REGION = "us-east-1"
PRO_LOOKUP_KEY = "pro_monthly"
# Stripe retries failed deliveries for days with a growing delay; compressed here.
RETRY_BASE_SECONDS = 0.25
RETRY_MAX_SECONDS = 4.0
# No delivery is retried past this; the whole run ends by --time-limit.
DELIVERY_DEADLINE_SECONDS = 300.0
FINAL_KINDS = ("active", "past_due", "canceled", "unpaid")


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"soak: {name} is not set: run local/up.sh, then `set -a; . local/.run/env; set +a`")
    return value


def lifecycle(kind: str, length: int) -> list[str]:
    """The statuses of one subscription's events, oldest first; "deleted" is the deletion event."""
    middle = length - 1
    if kind == "active":
        return ["incomplete"] + ["active"] * (middle - 2) + ["past_due", "active"]
    if kind == "past_due":
        return ["incomplete"] + ["active"] * (middle - 1) + ["past_due"]
    if kind == "canceled":
        return ["incomplete"] + ["active"] * (middle - 3) + ["past_due", "active", "deleted"]
    if kind == "unpaid":
        return ["incomplete", "active"] + ["past_due"] * (middle - 2) + ["unpaid"]
    raise ValueError(kind)


@dataclass
class User:
    group: str
    index: int
    username: str
    sub: str = ""
    customer_id: str = ""

    @property
    def subscription_id(self) -> str:
        return f"sub_soak{self.username.replace('-', '')}"


@dataclass
class Event:
    id: str
    user: User
    body: bytes


@dataclass
class Figures:
    deliveries: int = 0
    attempts: int = 0
    answers: collections.Counter = field(default_factory=collections.Counter)
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Env:
    def __init__(self) -> None:
        creds = {"region_name": os.environ.get("AWS_REGION", REGION),
                 "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                 "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "local")}
        # Checks read through the restart too: give the SDK room to retry.
        config = boto3.session.Config(retries={"mode": "standard", "max_attempts": 10},
                                      max_pool_connections=32)
        self.cognito = boto3.client("cognito-idp", config=config, **creds,
                                    endpoint_url=env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"))
        self.dynamodb = boto3.client("dynamodb", config=config, **creds,
                                     endpoint_url=env("AWS_ENDPOINT_URL_DYNAMODB"))
        self.apigateway = boto3.client("apigateway", config=config, **creds,
                                       endpoint_url=env("AWS_ENDPOINT_URL_API_GATEWAY"))
        self.cloudformation = boto3.client("cloudformation", config=config, **creds,
                                           endpoint_url=env("AWS_ENDPOINT_URL_CLOUDFORMATION"))
        self.run_deadline = float("inf")
        self.functions: Functions | None = None
        self.pool_id = env("USER_POOL_ID")
        self.client_id = env("USER_POOL_CLIENT_ID")
        self.table = env("TABLE_NAME")
        self.stripe_base = env("STRIPE_API_BASE").rstrip("/")
        self.stripe_key = env("STRIPE_SECRET_KEY")
        self.webhook_secret = env("STRIPE_WEBHOOK_SECRETS").split(",")[0].strip()
        self.webhook_url = f"{env('LAMBDA_ENDPOINT').rstrip('/')}/lambda-url/webhook/stripe/webhook"
        self.plan_of_usage_plan = {
            usage_plan: plan
            for plan, _, usage_plan in (e.partition("=") for e in env("PLANS").split(","))
        }

    def stripe(self, path: str, params: dict[str, str]) -> dict:
        url = f"{self.stripe_base}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.stripe_key}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


# --- users -------------------------------------------------------------------------------------

SIGN_UP_ATTEMPTS = 3


def sign_up(e: Env, user: User) -> int:
    """Signs the user up; returns how many sign-ups were redone because the trigger did not link
    a customer (cognito-local only logs a failed trigger: under load moto can fail a
    TransactWriteItems with a 500, and the trigger gives up within Cognito's 5 seconds)."""
    for attempt in range(SIGN_UP_ATTEMPTS):
        if try_sign_up(e, user, f"{user.username}r{attempt}" if attempt else user.username):
            return attempt
    raise RuntimeError(f"no customer link for {user.username} after {SIGN_UP_ATTEMPTS} sign-ups: "
                       "see local/.run/logs/lambda.log")


def try_sign_up(e: Env, user: User, username: str) -> bool:
    user.username = username
    answer = e.cognito.sign_up(
        ClientId=e.client_id, Username=user.username, Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": f"{user.username}@example.com"}])
    user.sub = answer["UserSub"]
    # cognito-local calls the PostConfirmation trigger before it answers.
    e.cognito.admin_confirm_sign_up(UserPoolId=e.pool_id, Username=user.username)
    item = e.dynamodb.get_item(TableName=e.table, ConsistentRead=True, Key={
        "pk": {"S": f"USER#{user.sub}"}, "sk": {"S": "CUSTOMER"}}).get("Item")
    if not item:
        return False
    user.customer_id = item["customer_id"]["S"]
    return True


# --- events ------------------------------------------------------------------------------------

def subscription_event(user: User, step: int, status: str, created: int, price: dict) -> Event:
    event_id = f"evt_soak{user.username.replace('-', '')}x{step}"
    deleted = status == "deleted"
    subscription = {
        "id": user.subscription_id, "object": "subscription", "customer": user.customer_id,
        "status": "canceled" if deleted else status, "created": created - step,
        "cancel_at_period_end": False, "livemode": False,
        "metadata": {"cognito_sub": user.sub},
        "items": {"object": "list", "data": [{
            "id": f"si_{user.subscription_id[4:]}", "object": "subscription_item", "quantity": 1,
            "current_period_start": created - step, "current_period_end": created - step + 2592000,
            "price": {"id": price["id"], "object": "price", "product": price["product"],
                      "lookup_key": price.get("lookup_key"), "metadata": price.get("metadata") or {},
                      "recurring": {"interval": "month", "interval_count": 1}},
        }]},
    }
    if deleted:
        subscription["ended_at"] = created
        subscription["canceled_at"] = created
    event_type = ("customer.subscription.deleted" if deleted else
                  "customer.subscription.created" if step == 0 else "customer.subscription.updated")
    event = {"id": event_id, "object": "event", "type": event_type, "created": created,
             "livemode": False, "api_version": "2025-10-29.clover", "pending_webhooks": 1,
             "request": {"id": None, "idempotency_key": None},
             "data": {"object": subscription}}
    return Event(event_id, user, json.dumps(event, separators=(",", ":")).encode())


def sign(secret: str, body: bytes) -> str:
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={signature.hexdigest()}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Functions:
    """COUNT webhook processes polling one Runtime API of bench-harness, as Lambda runs
    concurrent invocations in separate sandboxes (cargo lambda watch runs one invocation of a
    function at a time, so races between deliveries never meet there)."""

    def __init__(self, count: int) -> None:
        harness = ROOT / "target" / "harness" / "release" / "bench-harness"
        # The build local/build-functions.sh made: FUNCTIONS_PROFILE, debug unless set.
        binary = ROOT / "target" / os.environ.get("FUNCTIONS_PROFILE", "debug") / "webhook"
        for needed in (harness, binary):
            if not needed.exists():
                sys.exit(f"soak: {needed} is missing (make soak builds it)")
        runtime, null, self.control = free_port(), free_port(), free_port()
        self.processes = [subprocess.Popen(
            [str(harness), str(runtime), "1", str(null), str(self.control)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        environment = {
            **os.environ, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": "webhook", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/webhook",
            "AWS_LAMBDA_LOG_STREAM_NAME": "soak", "RUST_LOG": "warn"}
        log = open(ROOT / "local" / ".run" / "logs" / "soak-functions.log", "ab")
        self.processes += [subprocess.Popen([str(binary)], env=environment, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log) for _ in range(count)]
        deadline = time.monotonic() + 30
        while True:
            try:
                self.call("GET", "/first-next?timeout_ms=1000")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.stop()
                    sys.exit("soak: the webhook processes did not start polling in 30 s")
                time.sleep(0.1)

    def call(self, method: str, path: str, body: bytes | None = None) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", data=body,
                                         method=method)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def post(self, body: bytes, signature: str) -> tuple[int, bytes]:
        """The function's answer to an HTTP API event carrying the delivery."""
        answer = self.call("POST", "/invoke", json.dumps({
            "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
            "rawQueryString": "",
            "headers": {"content-type": "application/json; charset=utf-8",
                        "stripe-signature": signature},
            "requestContext": {"http": {"method": "POST", "path": "/stripe/webhook",
                                        "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                        "userAgent": "Stripe/1.0"},
                               "requestId": "soak", "routeKey": "POST /stripe/webhook",
                               "stage": "$default", "timeEpoch": 0},
            "body": body.decode(), "isBase64Encoded": False}).encode())
        if not answer.get("ok"):
            return 502, answer.get("response", "").encode()
        response = json.loads(answer["response"])
        return int(response.get("statusCode", 502)), response.get("body", "").encode()

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait()


def deliver(e: Env, event: Event, figures: Figures) -> None:
    """Posts until a 2xx, retrying every other answer as Stripe does; a 4xx other than 409
    (in progress) is a failure: Stripe would retry it too, but it cannot come from the run."""
    deadline = min(time.monotonic() + DELIVERY_DEADLINE_SECONDS, e.run_deadline)
    attempt = 0
    while True:
        attempt += 1
        signature = sign(e.webhook_secret, event.body)
        try:
            if e.functions is not None:
                status, answer = e.functions.post(event.body, signature)
            else:
                request = urllib.request.Request(e.webhook_url, data=event.body, method="POST",
                                                 headers={"Content-Type": "application/json; charset=utf-8",
                                                          "Stripe-Signature": signature})
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, answer = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, answer = error.code, error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            status, answer = 0, str(error).encode()
        with figures.lock:
            figures.attempts += 1
            figures.answers[status] += 1
        if 200 <= status < 300:
            outcome = json.loads(answer).get("outcome", "?")
            with figures.lock:
                figures.deliveries += 1
                figures.outcomes[outcome] += 1
            return
        if 400 <= status < 500 and status != 409 or time.monotonic() > deadline:
            with figures.lock:
                figures.failed.append(f"{event.id}: {status} {answer[:200]!r} after {attempt} attempts")
            return
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** min(attempt - 1, 8))
        time.sleep(delay * random.uniform(0.5, 1.0))


def restart_aws(downtime: float) -> float:
    started = time.monotonic()
    subprocess.run([str(ROOT / "local" / "restart-moto.sh")], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "DOWNTIME": str(downtime)})
    return time.monotonic() - started


# --- state -------------------------------------------------------------------------------------

def state_of(e: Env, user: User, base: int) -> dict:
    """What the webhook keeps for a user, with ids and times made relative to the run."""
    item = e.dynamodb.get_item(TableName=e.table, ConsistentRead=True, Key={
        "pk": {"S": f"CUSTOMER#{user.customer_id}"},
        "sk": {"S": f"SUB#{user.subscription_id}"}}).get("Item") or {}
    doc = json.loads(item["doc"]["S"]) if "doc" in item else {}
    since = doc.get("past_due_since")
    attributes = {a["Name"]: a["Value"] for a in e.cognito.admin_get_user(
        UserPoolId=e.pool_id, Username=user.username)["UserAttributes"]}
    keys = e.apigateway.get_api_keys(nameQuery=f"billing-user-{user.sub}", limit=500)["items"]
    key_plans = []
    for key in keys:
        plans = e.apigateway.get_usage_plans(keyId=key["id"])["items"]
        key_plans.append(sorted(e.plan_of_usage_plan.get(p["id"], p["id"]) for p in plans))
    stack_name = "billing-" + "".join(c if c.isalnum() else "-" for c in user.subscription_id)
    try:
        stacks = e.cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except e.cloudformation.exceptions.ClientError:
        stacks = []
    stack_status = stacks[0]["StackStatus"] if stacks else "none"
    if stack_status == "DELETE_COMPLETE":
        stack_status = "none"
    record = e.dynamodb.get_item(TableName=e.table, ConsistentRead=True, Key={
        "pk": {"S": f"SUBSCRIPTION#{user.subscription_id}"},
        "sk": {"S": f"STACK#{stack_name}"}}).get("Item") or {}
    return {
        "subscription": item.get("status", {}).get("S"),
        "plan": doc.get("plan"),
        "last_event": item.get("event_id", {}).get("S", "").rsplit("x", 1)[-1],
        "past_due_since": None if since is None else since - base,
        "plan_attribute": attributes.get("custom:plan_type"),
        "keys": len(keys),
        "key_usage_plans": key_plans,
        "stack": stack_status,
        "stack_record": record.get("state", {}).get("S"),
    }


def stripe_customers_of(e: Env, user: User) -> int:
    query = f"metadata['cognito_sub']:'{user.sub}'"
    return len(e.stripe("/v1/customers/search", {"query": query})["data"])


def event_done(e: Env, event_id: str) -> bool:
    item = e.dynamodb.get_item(TableName=e.table, ConsistentRead=True, Key={
        "pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}}).get("Item") or {}
    return item.get("status", {}).get("S") == "done"


# --- the run -----------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--duplicates", type=float, default=0.30)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--functions", type=int, default=16,
                        help="webhook processes polling a local Runtime API (Lambda's concurrency); "
                             "0 sends through cargo lambda watch, one invocation at a time")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--time-limit", type=float, default=1200.0,
                        help="seconds after which no delivery is retried any more")
    parser.add_argument("--no-restart", action="store_true", help="skip the AWS emulator restart")
    parser.add_argument("--downtime", type=float, default=15.0,
                        help="seconds the AWS emulator stays down, longer than the SDK's retries")
    args = parser.parse_args()

    duplicates = round(args.events * args.duplicates)
    unique = args.events - duplicates
    if args.customers < 1 or unique % args.customers or unique // args.customers < 4:
        sys.exit(f"soak: {unique} unique events do not split into {args.customers} lifecycles "
                 "of 4 or more events each")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    e = Env()
    e.run_deadline = time.monotonic() + args.time_limit
    if args.functions:
        e.functions = Functions(args.functions)
    try:
        return soak(args, e, seed, duplicates, unique)
    finally:
        if e.functions is not None:
            e.functions.stop()


def soak(args: argparse.Namespace, e: Env, seed: int, duplicates: int, unique: int) -> int:
    length = unique // args.customers
    rng = random.Random(seed)
    run = f"{int(time.time()) % 10**6:06d}{rng.randrange(1000):03d}"
    via = (f"{args.functions} webhook processes" if args.functions
           else "cargo lambda watch (one invocation at a time)")
    print(f"soak {run}: {args.customers} customers, {args.events} deliveries ({unique} events, "
          f"{duplicates} duplicates), concurrency {args.concurrency} into {via}, seed {seed}",
          flush=True)

    prices = e.stripe("/v1/prices", {"lookup_keys[]": PRO_LOOKUP_KEY})["data"]
    if not prices:
        sys.exit(f"soak: no price {PRO_LOOKUP_KEY} in the Stripe emulator: run local/up.sh")
    price = prices[0]

    started = time.monotonic()
    users = {group: [User(group, i, f"soak-{run}-{group[0]}{i}") for i in range(args.customers)]
             for group in ("replay", "soak")}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        redone = sum(pool.map(lambda u: sign_up(e, u), users["replay"] + users["soak"]))
    print(f"  users: {2 * args.customers} signed up and linked to Stripe customers "
          f"in {time.monotonic() - started:.1f}s ({redone} sign-ups redone: trigger failed)",
          flush=True)

    base = int(time.time()) - 600
    events: dict[str, list[Event]] = {}
    for group, members in users.items():
        events[group] = []
        for user in members:
            kind = FINAL_KINDS[user.index % len(FINAL_KINDS)]
            for step, status in enumerate(lifecycle(kind, length)):
                events[group].append(subscription_event(user, step, status, base + step * 10, price))

    replay_figures = Figures()
    started = time.monotonic()
    for event in events["replay"]:
        deliver(e, event, replay_figures)
    replay_seconds = time.monotonic() - started
    print(f"  ordered replay: {len(events['replay'])} events one at a time in "
          f"{replay_seconds:.1f}s, answers {dict(replay_figures.answers)}", flush=True)

    deliveries = events["soak"] + [rng.choice(events["soak"]) for _ in range(duplicates)]
    rng.shuffle(deliveries)
    figures = Figures()
    restart = {"at": None, "seconds": None, "error": None}
    restart_after = None if args.no_restart else len(deliveries) // 2

    def restarter() -> None:
        try:
            restart["seconds"] = restart_aws(args.downtime)
        except (subprocess.CalledProcessError, OSError) as error:
            restart["error"] = str(error)

    restart_thread = threading.Thread(target=restarter)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        futures = []
        for n, event in enumerate(deliveries):
            if n == restart_after:
                # Restart once half the deliveries are under way, while the rest keep coming.
                restart["at"] = n
                restart_thread.start()
            futures.append(pool.submit(deliver, e, event, figures))
            while sum(not f.done() for f in futures[-4 * args.concurrency:]) >= 2 * args.concurrency:
                time.sleep(0.005)
        concurrent.futures.wait(futures)
    soak_seconds = time.monotonic() - started
    if restart["at"] is not None:
        restart_thread.join()

    failures: list[str] = []
    if restart["error"]:
        failures.append(f"the AWS emulator restart failed: {restart['error']}")
    failures += [f"delivery failed: {f}" for f in figures.failed + replay_figures.failed]
    not_done = [ev.id for ev in events["soak"] if not event_done(e, ev.id)]
    if not_done:
        failures.append(f"{len(not_done)} events not recorded done, e.g. {not_done[:3]}")
    mismatched = two_keys = two_customers = 0
    by_final = collections.Counter()
    for twin, user in zip(users["replay"], users["soak"]):
        expected, actual = state_of(e, twin, base), state_of(e, user, base)
        by_final[(actual["subscription"], actual["plan_attribute"])] += 1
        if expected != actual:
            mismatched += 1
            if mismatched <= 5:
                failures.append(f"{user.username} differs from its ordered replay:\n"
                                f"      replay {expected}\n      soak   {actual}")
        for state, who in ((expected, twin), (actual, user)):
            if state["keys"] > 1:
                two_keys += 1
                failures.append(f"{who.username} has {state['keys']} API keys")
        for who in (twin, user):
            if (count := stripe_customers_of(e, who)) != 1:
                two_customers += 1
                failures.append(f"{who.username} has {count} Stripe customers")
    if mismatched > 5:
        failures.append(f"... {mismatched} customers differ from their ordered replay in all")

    retried = figures.attempts - figures.deliveries
    print(f"  soak: {figures.deliveries}/{len(deliveries)} deliveries acknowledged in "
          f"{soak_seconds:.1f}s ({figures.deliveries / soak_seconds:.0f}/s), {figures.attempts} "
          f"attempts ({retried} retried), answers {dict(sorted(figures.answers.items()))}", flush=True)
    print(f"  outcomes: {dict(figures.outcomes)}", flush=True)
    if restart_after is not None:
        print(f"  AWS emulator restarted once, after delivery {restart['at']} was sent: "
              f"down and back in {restart['seconds'] or 0:.1f}s", flush=True)
    print(f"  final states (subscription, plan): "
          f"{ {f'{s}/{p}': n for (s, p), n in sorted(by_final.items(), key=str)} }", flush=True)
    print(f"  lost events: {len(not_done) + len(figures.failed)}; customers unlike their ordered "
          f"replay: {mismatched}; users with two API keys: {two_keys}; users with two Stripe "
          f"customers: {two_customers}", flush=True)
    if failures:
        for failure in failures:
            print(f"[FAIL] {failure}", flush=True)
        return 1
    print("[ OK ] soak: nothing lost, nothing doubled, the same state as the ordered replay", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
