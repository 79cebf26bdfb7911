#!/usr/bin/env python3
"""Side-by-side benchmark of the Stripe webhook: ours (Rust, lambda_runtime) against the Node.js
and Python peers in bench/peers/, each under its real runtime client, all polling the local
Runtime API of bench-harness. Every figure is measured over interleaved rounds (the runtimes in a
new random order each round) and reported as median, min and max. Writes bench/.out/results.json;
bench/report.py turns it into bench/results.md and bench/results.png.

Two kinds of work: a `product.updated` delivery (cold start, CPU against the null store,
throughput), and the events production sends most, against the local emulators (moto, cognito-
local, the Stripe front): a linked user's renewal on pro (`customer.subscription.updated` with a
new period, `invoice.finalized`, `invoice.paid`, `invoice.payment_succeeded`) and a plan change
(free -> pro). For each of those events: the calls it made to each AWS service and to Stripe,
counted at the emulators around each invocation, the CPU it took, its latency and the outcome.

Run by bench/run.sh (make bench), which builds everything and starts moto first.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / ".out"
SECRET = "whsec_bench"
TABLE = "bench-webhook"
RUNTIMES = ("rust", "node", "python")
FIRST_RUNTIME_PORT = 9301
NULL_PORT = 9390
CONTROL_PORT = 9391
CONCURRENCIES = (1, 2, 4, 8)
# The renewal, in the order Stripe sends it, and the plan change: what the workloads measure.
RENEWAL = ("customer.subscription.updated", "invoice.finalized", "invoice.paid",
           "invoice.payment_succeeded")
PLAN_CHANGE = "plan_change"
WORKLOAD_EVENTS = RENEWAL + (PLAN_CHANGE,)
# The catalogue the workloads use, at the Stripe front: the bootstrapped Free price, and a Pro
# product of the bench's own without a stack template (stacks are not part of this mix), whose
# price names no plan, as real events' prices do: the plan is the product's.
FREE_LOOKUP_KEY = "free_monthly"
BENCH_PRO_LOOKUP_KEY = "bench_pro_monthly"
PEER_TABLE = TABLE


# --- processes ---------------------------------------------------------------------------------

def commands() -> dict[str, dict]:
    peers = json.loads((ROOT / "bench" / "peers" / "peers.json").read_text())
    return {
        # run.sh builds it (FUNCTIONS_PROFILE=release); debug only to try the bench out.
        "rust": {"cmd": [str(ROOT / "target" / os.environ.get("FUNCTIONS_PROFILE", "release")
                             / "webhook")], "cwd": "."},
        "node": peers["node"],
        "python": peers["python"],
    }


def function_env(lane: int, store: str, runtime: str = "rust") -> dict[str, str]:
    """store: "null" (the harness's null DynamoDB), "moto" (DynamoDB only), or "emulators"
    (every service at the local emulators, as local/up.sh runs them; ours on the local
    environment's table, the peers on theirs)."""
    if store == "emulators":
        return {**function_env(lane, "moto"), **{
            name: os.environ[name] for name in (
                "AWS_ENDPOINT_URL_API_GATEWAY", "AWS_ENDPOINT_URL_CLOUDFORMATION",
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", "STRIPE_API_BASE",
                "STRIPE_SECRET_KEY", "USER_POOL_ID", "PLANS", "DEPLOYMENT_NAME")},
            "TABLE_NAME": os.environ["TABLE_NAME"] if runtime == "rust" else PEER_TABLE}
    endpoint = f"http://127.0.0.1:{NULL_PORT}" if store == "null" else os.environ["BENCH_DYNAMODB"]
    return {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{FIRST_RUNTIME_PORT + lane}",
        "AWS_LAMBDA_FUNCTION_NAME": "webhook", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/webhook",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local", "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "TABLE_NAME": TABLE, "STRIPE_WEBHOOK_SECRETS": SECRET, "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_API_BASE": "http://127.0.0.1:9", "LIVEMODE": "false",
        "PLANS": "free=up_free,pro=up_pro", "USER_POOL_ID": "us-east-1_Bench",
        "DEPLOYMENT_NAME": "bench",
    }


def spawn(runtime: str, lane: int, store: str) -> subprocess.Popen:
    spec = commands()[runtime]
    # peers.json names files relative to the repository's root.
    argv = [str(ROOT / arg) if "/" in arg and not arg.startswith("/") else arg
            for arg in spec["cmd"]]
    return subprocess.Popen(argv, cwd=ROOT / spec.get("cwd", "."),
                            env={**function_env(lane, store, runtime), **spec.get("env", {})},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of the process, from the kernel's per-thread accounting."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


# --- the harness's control API -----------------------------------------------------------------

def control(method: str, path: str, body: bytes | None = None, timeout: float = 300) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{CONTROL_PORT}{path}", data=body,
                                     method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_first_next(lane: int, process: subprocess.Popen | None = None) -> int:
    """When the process polled first; a process that exited first (a configuration it
    refuses, say) is named with its exit code instead of waiting for the timeout."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return int(control("GET", f"/first-next?lane={lane}&timeout_ms=1000")["unix_ns"])
        except urllib.error.HTTPError as error:
            if error.code != 504 or time.monotonic() > deadline:
                raise
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"lane {lane}: the process exited with {process.returncode} "
                               "before polling")


# --- events ------------------------------------------------------------------------------------

class Events:
    """Signed product.updated deliveries with ids unique to the run, newer one after another."""

    def __init__(self) -> None:
        self.n = 0
        self.run = f"{int(time.time())}{random.randrange(10**4):04d}"
        self.base = int(time.time()) - 3600

    def next(self) -> dict:
        self.n += 1
        now = int(time.time())
        return gateway_event(json.dumps({
            "id": f"evt_bench_{self.run}_{self.n}", "object": "event", "type": "product.updated",
            "created": self.base + self.n, "livemode": False, "api_version": "2025-10-29.clover",
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "data": {"object": {"id": f"prod_bench_{self.run}_{self.n % 50}", "object": "product",
                                "name": "Pro", "active": True, "metadata": {"plan": "pro"},
                                "created": 1763700000, "updated": now}},
        }, separators=(",", ":")), f"bench-{self.n}")

    def batch(self, count: int) -> bytes:
        return json.dumps([self.next() for _ in range(count)]).encode()


def gateway_event(body: str, request_id: str) -> dict:
    """An API Gateway HTTP API event carrying a delivery signed like Stripe's."""
    now = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
        "rawQueryString": "",
        "headers": {"content-type": "application/json; charset=utf-8",
                    "stripe-signature": f"t={now},v1={mac}", "user-agent": "Stripe/1.0"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "http": {"method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0"},
            "requestId": request_id, "routeKey": "POST /stripe/webhook",
            "stage": "$default", "timeEpoch": now * 1000},
        "body": body, "isBase64Encoded": False,
    }


def invoke(lane: int, event: dict) -> dict:
    answer = control("POST", f"/invoke?lane={lane}", json.dumps(event).encode())
    if answer.get("status") != 200:
        raise RuntimeError(f"lane {lane}: invocation answered {answer}")
    return answer


def load(lane: int, events: Events, count: int) -> float:
    """Queues count deliveries at once; returns the events per second until the last answer."""
    answer = control("POST", f"/load?lane={lane}", events.batch(count))
    if answer["statuses"] != {"200": count}:
        raise RuntimeError(f"lane {lane}: load answered {answer['statuses']}")
    return count / (int(answer["elapsed_ns"]) / 1e9)


# --- the measurements --------------------------------------------------------------------------

def cold_start(runtime: str, lane: int, events: Events) -> dict:
    """Spawn -> first /next (init), spawn -> first answer with its DynamoDB writes to moto."""
    control("POST", f"/reset?lane={lane}")
    spawned = time.time_ns()
    process = spawn(runtime, lane, "moto")
    try:
        first_next = wait_first_next(lane, process)
        answered = int(invoke(lane, events.next())["done_unix_ns"])
        return {"init_ms": (first_next - spawned) / 1e6,
                "first_response_ms": (answered - spawned) / 1e6,
                "rss_1_mb": peak_rss_mb(process.pid)}
    finally:
        stop([process])


def steady(runtime: str, lane: int, events: Events, count: int) -> dict:
    """Against the null store: CPU per event over count events, peak RSS after them."""
    control("POST", f"/reset?lane={lane}")
    process = spawn(runtime, lane, "null")
    try:
        wait_first_next(lane, process)
        invoke(lane, events.next())
        before = cpu_ns(process.pid)
        load(lane, events, count - 1)
        return {"cpu_us_per_event": (cpu_ns(process.pid) - before) / (count - 1) / 1e3,
                "rss_1000_mb": peak_rss_mb(process.pid)}
    finally:
        stop([process])


def throughput(rounds: int, events: Events, loads: dict[str, int]) -> dict:
    results: dict = {}
    for store, count in loads.items():
        for concurrency in CONCURRENCIES:
            pools = {}
            try:
                for lane, runtime in enumerate(RUNTIMES):
                    control("POST", f"/reset?lane={lane}")
                    pools[runtime] = [spawn(runtime, lane, store) for _ in range(concurrency)]
                for lane, runtime in enumerate(RUNTIMES):
                    wait_first_next(lane)
                    load(lane, events, 4 * concurrency)  # every process warm
                samples = {runtime: [] for runtime in RUNTIMES}
                for _ in range(rounds):
                    for runtime in random.sample(RUNTIMES, len(RUNTIMES)):
                        samples[runtime].append(load(RUNTIMES.index(runtime), events, count))
                for runtime, values in samples.items():
                    results.setdefault(runtime, {})[f"{store}_c{concurrency}"] = values
                print(f"  throughput {store} c={concurrency}: " + ", ".join(
                    f"{r} {statistics.median(v):.0f}/s" for r, v in samples.items()), flush=True)
            finally:
                stop([p for pool in pools.values() for p in pool])
    return results


# --- the real mix: renewals and plan changes against the emulators -----------------------------

def stripe_call(method: str, path: str, params: list[tuple[str, str]] | None = None) -> dict:
    """The Stripe front, form-encoded as Stripe's API is."""
    body = urllib.parse.urlencode(params or []).encode()
    url = f"{os.environ['STRIPE_API_BASE'].rstrip('/')}{path}"
    if method == "GET" and body:
        url, body = f"{url}?{body.decode()}", None
    request = urllib.request.Request(url, data=None if method == "GET" else body, method=method,
                                     headers={"Authorization": f"Bearer {os.environ['STRIPE_SECRET_KEY']}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def price_by_lookup_key(key: str) -> dict | None:
    found = stripe_call("GET", "/v1/prices", [("lookup_keys[]", key), ("limit", "1")])["data"]
    return found[0] if found else None


def catalogue() -> dict[str, dict]:
    """The Free and the bench's Pro price ({"id", "product"}), the Pro one created if missing."""
    free = price_by_lookup_key(FREE_LOOKUP_KEY)
    if free is None:
        raise RuntimeError(f"no {FREE_LOOKUP_KEY} price at the Stripe front: did bootstrap run?")
    pro = price_by_lookup_key(BENCH_PRO_LOOKUP_KEY)
    if pro is None:
        product = stripe_call("POST", "/v1/products", [("name", "Bench Pro"),
                                                       ("metadata[plan]", "pro")])
        pro = stripe_call("POST", "/v1/prices", [
            ("product", product["id"]), ("currency", "usd"), ("unit_amount", "1000"),
            ("recurring[interval]", "month"), ("lookup_key", BENCH_PRO_LOOKUP_KEY)])
    return {plan: {"id": price["id"], "product": price["product"]}
            for plan, price in (("free", free), ("pro", pro))}


class Emulators:
    """Calls received by the emulators: moto's and the Stripe front's counters, and the
    "request completed" lines of cognito-local's debug log."""

    def __init__(self) -> None:
        self.moto = f"http://127.0.0.1:{os.environ['MOTO_PORT']}/_local/calls"
        self.stripe = f"{os.environ['STRIPE_API_BASE'].rstrip('/')}/_test/calls"
        self.cognito_log = ROOT / "local" / ".run" / "logs" / "cognito.log"

    @staticmethod
    def get(url: str) -> dict[str, int]:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.load(answer)

    def start(self) -> dict:
        """Clears moto's counters (its list of operations with them), then snapshots."""
        urllib.request.urlopen(urllib.request.Request(self.moto, method="DELETE"), timeout=30).close()
        return self.snapshot()

    def operations(self) -> list[str]:
        """moto's calls since `start`, in order, each "caller service operation"."""
        with urllib.request.urlopen(f"{self.moto}?operations", timeout=30) as answer:
            return json.load(answer)

    def snapshot(self) -> dict:
        # cognito-local writes its log as it answers: wait for it to settle.
        size, deadline = self.cognito_log.stat().st_size, time.monotonic() + 0.2
        while time.monotonic() < deadline:
            time.sleep(0.01)
            now = self.cognito_log.stat().st_size
            if now == size:
                break
            size = now
        return {"moto": self.get(self.moto), "stripe": self.get(self.stripe), "cognito": size}

    def calls_between(self, before: dict, after: dict) -> dict[str, int]:
        """Calls per service between two snapshots (every caller: only the measured process
        calls the emulators meanwhile)."""
        calls = {"dynamodb": 0, "cognito-idp": 0, "apigateway": 0, "cloudformation": 0, "stripe": 0}
        for key, count in after["moto"].items():
            service = key.split(" ", 1)[1]
            calls[service] = calls.get(service, 0) + count - before["moto"].get(key, 0)
        calls["stripe"] = sum(after["stripe"].values()) - sum(before["stripe"].values())
        with self.cognito_log.open("rb") as log:
            log.seek(before["cognito"])
            text = log.read(after["cognito"] - before["cognito"]).decode(errors="replace")
        calls["cognito-idp"] += text.count("request completed")
        return calls

    def writes_since_start(self) -> dict[str, int]:
        """Writes among moto's calls since `start`, per service (DynamoDB's by operation, API
        Gateway's by HTTP method)."""
        writes: dict[str, int] = {}
        for call in self.operations():
            _, service, operation = call.split(" ", 2)
            if is_write(service, operation):
                writes[service] = writes.get(service, 0) + 1
        return writes


DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def is_write(service: str, operation: str) -> bool:
    if service == "dynamodb":
        return operation in DYNAMODB_WRITES
    if service == "apigateway":
        return operation.split(" ", 1)[0] in {"POST", "PUT", "PATCH", "DELETE"}
    return True  # CloudFormation's query protocol names no operation here: counted as writes


class Mix:
    """Users, subscriptions and events of the real mix, with ids unique to the run."""

    def __init__(self, prices: dict[str, dict]) -> None:
        self.prices = prices
        self.run = f"{int(time.time())}{random.randrange(10**4):04d}"
        self.clock = int(time.time()) - 10 * 86_400
        self.n = 0
        creds = {"region_name": "us-east-1", "aws_access_key_id": "local",
                 "aws_secret_access_key": "local"}
        self.cognito = boto3.client("cognito-idp", **creds,
                                    endpoint_url=os.environ["AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"])
        self.apigateway = boto3.client("apigateway", **creds,
                                       endpoint_url=os.environ["AWS_ENDPOINT_URL_API_GATEWAY"])
        self.dynamodb = boto3.client("dynamodb", **creds,
                                     endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
        self.usage_plans = dict(entry.split("=", 1) for entry in os.environ["PLANS"].split(","))

    def tick(self) -> int:
        """A newer event time for each event: no two of one object in the same second."""
        self.clock += 2
        return self.clock

    def user(self, runtime: str) -> dict:
        """A Cognito user with a customer id of its own; for a peer also its link, on free with
        an API key on the free usage plan, in the peer's table (ours links from the first
        subscription's `cognito_sub`, as a checkout's subscription carries it)."""
        self.n += 1
        name = f"bench-{self.run}-{self.n}"
        created = self.cognito.admin_create_user(
            UserPoolId=os.environ["USER_POOL_ID"], Username=name, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": f"{name}@example.com"}])["User"]
        sub = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
        user = {"username": name, "sub": sub, "customer": f"cus_bench{self.run}x{self.n}",
                "subscription": f"sub_bench{self.run}x{self.n}"}
        if runtime != "rust":
            key = self.apigateway.create_api_key(name=sub, enabled=True)["id"]
            self.apigateway.create_usage_plan_key(usagePlanId=self.usage_plans["free"], keyId=key,
                                                  keyType="API_KEY")
            self.dynamodb.put_item(TableName=PEER_TABLE, Item={
                "pk": {"S": f"CUSTOMER#{user['customer']}"}, "sk": {"S": "LINK"},
                "sub": {"S": sub}, "username": {"S": name}, "plan": {"S": "free"},
                "key_id": {"S": key}})
        return user

    def envelope(self, event_type: str, obj: dict) -> dict:
        self.n += 1
        body = json.dumps({
            "id": f"evt_bench{self.run}x{self.n}", "object": "event", "type": event_type,
            "created": self.tick(), "livemode": False, "api_version": "2025-10-29.clover",
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj}}, separators=(",", ":"))
        return gateway_event(body, f"bench-mix-{self.n}")

    def product(self, plan: str) -> dict:
        """product.updated of a catalogue product: stores it in the runtime's catalogue."""
        return self.envelope("product.updated", {
            "id": self.prices[plan]["product"], "object": "product", "active": True,
            "name": f"Bench {plan}", "metadata": {"plan": plan}, "created": 1763700000,
            "updated": self.clock})

    def subscription(self, user: dict, plan: str, event_type: str = "customer.subscription.updated",
                     period_start: int | None = None) -> dict:
        start = self.clock if period_start is None else period_start
        price = self.prices[plan]
        return self.envelope(event_type, {
            "id": user["subscription"], "object": "subscription", "customer": user["customer"],
            "status": "active", "created": start, "cancel_at_period_end": False,
            "livemode": False, "metadata": {"cognito_sub": user["sub"]},
            "items": {"object": "list", "data": [{
                "id": f"si_{user['subscription'][4:]}", "object": "subscription_item",
                "quantity": 1, "current_period_start": start,
                "current_period_end": start + 30 * 86_400,
                "price": {"id": price["id"], "object": "price", "product": price["product"],
                          "lookup_key": None, "metadata": {},
                          "recurring": {"interval": "month", "interval_count": 1}}}]}})

    def invoice(self, user: dict, event_type: str, number: int) -> dict:
        paid = event_type != "invoice.finalized"
        return self.envelope(event_type, {
            "id": f"in_{user['subscription'][4:]}x{number}", "object": "invoice",
            "customer": user["customer"], "status": "paid" if paid else "open",
            "number": f"BENCH-{number:04d}", "currency": "usd", "amount_due": 1000,
            "amount_paid": 1000 if paid else 0, "amount_remaining": 0 if paid else 1000,
            "attempt_count": 1, "billing_reason": "subscription_cycle",
            "parent": {"subscription_details": {"subscription": user["subscription"]}},
            "created": self.clock, "period_start": self.clock, "period_end": self.clock + 30 * 86_400})

    def renewal(self, user: dict, number: int) -> list[tuple[str, dict]]:
        """One renewal of a user on pro: the new period, then its invoice's events."""
        events = [("customer.subscription.updated", self.subscription(user, "pro", period_start=self.clock + 2))]
        events += [(kind, self.invoice(user, kind, number)) for kind in RENEWAL[1:]]
        return events


def outcome_of(answer: dict) -> str:
    try:
        return str(json.loads(json.loads(answer["response"])["body"]).get("outcome", "?"))
    except (KeyError, TypeError, ValueError):
        return f"status {answer.get('status')}"


def seed(lane: int, event: dict, want: tuple[str, ...] = ("applied",)) -> None:
    answer = invoke(lane, event)
    if outcome_of(answer) not in want:
        raise RuntimeError(f"lane {lane}: a seeding event answered {outcome_of(answer)}, not {want}")


def mix_round(runtime: str, lane: int, mix: Mix, emulators: Emulators, renewals: int,
              plan_changes: int) -> dict:
    """One process against the emulators: seeds its users through it (ours links and provisions
    them from their first subscription; a peer's links are stored beforehand), warms it with one
    renewal, then measures `renewals` renewals of a user on pro and `plan_changes` users going
    from free to pro, each event on its own: calls, CPU, latency, outcome."""
    control("POST", f"/reset?lane={lane}")
    process = spawn(runtime, lane, "emulators")
    figures: dict = {kind: {"cpu_us": [], "latency_ms": [], "calls": [], "writes": [],
                            "outcomes": {}}
                     for kind in WORKLOAD_EVENTS}
    try:
        wait_first_next(lane, process)
        for plan in ("free", "pro"):
            # Stale when the catalogue holds a newer state already (the Stripe front's own
            # product.created, which local/up.sh's functions stored).
            seed(lane, mix.product(plan), ("applied", "stale"))
        renewing = mix.user(runtime)
        seed(lane, mix.subscription(renewing, "pro", "customer.subscription.created"))
        changing = [mix.user(runtime) for _ in range(plan_changes)]
        for user in changing:
            seed(lane, mix.subscription(user, "free", "customer.subscription.created"))
        for _, event in mix.renewal(renewing, 0):
            seed(lane, event)
        measured = [event for n in range(renewals) for event in mix.renewal(renewing, n + 1)]
        measured += [(PLAN_CHANGE, mix.subscription(user, "pro")) for user in changing]
        for kind, event in measured:
            before = emulators.start()
            cpu_before = cpu_ns(process.pid)
            answer = invoke(lane, event)
            cpu_after = cpu_ns(process.pid)
            after = emulators.snapshot()
            kind_figures = figures[kind]
            kind_figures["cpu_us"].append((cpu_after - cpu_before) / 1e3)
            kind_figures["latency_ms"].append(int(answer["latency_ns"]) / 1e6)
            kind_figures["calls"].append(emulators.calls_between(before, after))
            kind_figures["writes"].append(emulators.writes_since_start())
            outcome = outcome_of(answer)
            kind_figures["outcomes"][outcome] = kind_figures["outcomes"].get(outcome, 0) + 1
        figures["rss_mb"] = peak_rss_mb(process.pid)
        return figures
    finally:
        stop([process])


def instructions_per_event() -> dict:
    binary = ROOT / "target" / "release" / "examples" / "core_instructions"

    def collected(count: int) -> int:
        run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              str(binary), str(count)], capture_output=True, text=True, check=True)
        for line in run.stderr.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1].strip())
        raise RuntimeError(f"no instruction count from callgrind:\n{run.stderr[-2000:]}")

    small, large = 100, 1100
    low, high = collected(small), collected(large)
    return {"events": large - small, "instructions_per_event": (high - low) / (large - small),
            "instructions_at": {str(small): low, str(large): high}}


def zip_sizes() -> dict:
    sizes = {"rust": (OUT / "zips" / "rust-webhook.zip").stat().st_size}
    peers = ROOT / "bench" / "peers" / ".out"
    sizes["node"] = (peers / "node-webhook.zip").stat().st_size
    sizes["python"] = (peers / "python-webhook.zip").stat().st_size
    with_boto3 = peers / "python-webhook-with-boto3.zip"
    if with_boto3.exists():
        sizes["python_with_boto3"] = with_boto3.stat().st_size
    return sizes


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def versions() -> dict:
    def output(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    lock = json.loads((ROOT / "bench/peers/node/package-lock.json").read_text())["packages"]
    node_versions = {name.rsplit("node_modules/", 1)[-1]: meta.get("version")
                     for name, meta in lock.items()
                     if name.rsplit("node_modules/", 1)[-1] in (
                         "stripe", "@aws-sdk/client-dynamodb", "aws-lambda-ric", "esbuild")}
    python_peer = ROOT / "bench/peers/python/.venv/bin/python"
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}",
        "kernel": platform.release(),
        "rustc": output("rustc", "--version"),
        "node": output("node", "--version"),
        "node_packages": node_versions,
        "python": output(str(python_peer), "--version"),
        "python_packages": output(str(python_peer), "-m", "pip", "freeze").split(),
        "valgrind": output("valgrind", "--version"),
    }


def create_table() -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["BENCH_DYNAMODB"],
                            region_name="us-east-1", aws_access_key_id="local",
                            aws_secret_access_key="local")
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steady-events", type=int, default=1000)
    parser.add_argument("--null-load", type=int, default=300)
    parser.add_argument("--moto-load", type=int, default=40)
    parser.add_argument("--renewals", type=int, default=3, help="renewals per round and runtime")
    parser.add_argument("--plan-changes", type=int, default=3, help="free -> pro per round and runtime")
    parser.add_argument("--only-mix", action="store_true", help="measure the real mix only")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    create_table()
    events = Events()
    started = time.monotonic()
    mix, emulators = Mix(catalogue()), Emulators()
    mix_samples: dict = {r: {} for r in RUNTIMES}
    for n in range(args.rounds):
        for lane, runtime in sorted(enumerate(RUNTIMES), key=lambda _: random.random()):
            figures = mix_round(runtime, lane, mix, emulators, args.renewals, args.plan_changes)
            for kind, values in figures.items():
                if kind == "rss_mb":
                    mix_samples[runtime].setdefault("rss_mb", []).append(values)
                    continue
                into = mix_samples[runtime].setdefault(kind, {"cpu_us": [], "latency_ms": [],
                                                               "calls": [], "writes": [],
                                                               "outcomes": {}})
                for name in ("cpu_us", "latency_ms", "calls", "writes"):
                    into[name] += values[name]
                for outcome, count in values["outcomes"].items():
                    into["outcomes"][outcome] = into["outcomes"].get(outcome, 0) + count
        print(f"  mix round {n + 1}/{args.rounds}: " + "; ".join(
            f"{r} renewal cpu {statistics.median(mix_samples[r]['customer.subscription.updated']['cpu_us']):.0f} us"
            for r in RUNTIMES), flush=True)
    if args.only_mix:
        (OUT / "mix.json").write_text(json.dumps(mix_samples, indent=1))
        print(f"bench: {OUT / 'mix.json'} in {round(time.monotonic() - started)} s", flush=True)
        return 0
    samples: dict[str, dict[str, list[float]]] = {r: {} for r in RUNTIMES}
    for n in range(args.rounds):
        for lane, runtime in sorted(enumerate(RUNTIMES), key=lambda _: random.random()):
            figures = {**cold_start(runtime, lane, events),
                       **steady(runtime, lane, events, args.steady_events)}
            for name, value in figures.items():
                samples[runtime].setdefault(name, []).append(value)
        print(f"  round {n + 1}/{args.rounds}: " + "; ".join(
            f"{r} init {samples[r]['init_ms'][-1]:.0f} ms, cpu "
            f"{samples[r]['cpu_us_per_event'][-1]:.0f} us/event" for r in RUNTIMES), flush=True)
    rates = throughput(args.rounds, events, {"null": args.null_load, "moto": args.moto_load})
    for runtime, values in rates.items():
        samples[runtime].update(values)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # BENCH_NOTE: what the figures should be read with (a shared machine, say), printed
        # at the top of bench/results.md.
        "note": os.environ.get("BENCH_NOTE", ""),
        "rounds": args.rounds, "steady_events": args.steady_events,
        "loads": {"null": args.null_load, "moto": args.moto_load},
        "seconds": round(time.monotonic() - started),
        "versions": versions(),
        "samples": samples,
        "mix": {"renewals": args.renewals, "plan_changes": args.plan_changes,
                "samples": mix_samples},
        "zip_bytes": zip_sizes(),
        "callgrind": instructions_per_event(),
    }
    calls = OUT / "lifecycle-calls.json"
    if calls.exists():
        result["lifecycle_calls"] = json.loads(calls.read_text())
    (OUT / "results.json").write_text(json.dumps(result, indent=1))
    print(f"bench: {OUT / 'results.json'} in {result['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
