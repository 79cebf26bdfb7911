#!/usr/bin/env python3
"""Smoke test of the Node.js and Python webhook peers, each under its real runtime client.

Starts moto (local/moto_durable.py: DynamoDB, Cognito, API Gateway, and the calls it received)
and, per peer, a minimal Lambda Runtime API on 127.0.0.1, spawns the peer as
bench/peers/peers.json says, sends it API Gateway v2 events signed like Stripe and checks the
answers, the table, the user's attribute, the API key's usage plan and the AWS calls each event
made (the same as ours should: a renewal 4 DynamoDB calls and nothing else; a new product or
invoice 1, the transaction that writes it with the event done). Everything runs on 127.0.0.1 and
is stopped at the end.

Run after bench/peers/install.sh and local/install.sh, with local/.venv's python (moto, boto3):
    local/.venv/bin/python bench/peers/smoke.py [node] [python]
Exits non-zero if any check fails.
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

PEERS_DIR = Path(__file__).resolve().parent
ROOT = PEERS_DIR.parent.parent
SECRET = "whsec_bench"
TABLE = "bench-peers"
RUNTIME_PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:webhook-peer"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class QuietServer(ThreadingHTTPServer):
    """Threaded, and quiet about the keep-alive connection a stopped peer resets."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """The Lambda Runtime API, as much of it as a runtime client uses for buffered invokes."""

    def __init__(self):
        self.pending = queue.Queue()
        self.results = {}
        self.done = {}
        self.init_error = None
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return body
                        body += chunk
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def send(self, status, body=b"", headers=None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                    return self.send(404, b'{"errorType":"NotFound"}')
                request_id, payload = api.pending.get()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
                }
                self.send(200, payload, headers)

            def do_POST(self):
                body = self.read_body()
                parts = self.path[len(RUNTIME_PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body.decode("utf-8", "replace")
                    return self.send(202, b'{"status":"OK"}')
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    with api.lock:
                        done = api.done.get(parts[1])
                        if done is None:
                            return self.send(400, b'{"errorType":"InvalidRequestID"}')
                        api.results[parts[1]] = (parts[2], body)
                    done.set()
                    return self.send(202, b'{"status":"OK"}')
                self.send(404, b'{"errorType":"NotFound"}')

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, process, timeout=30):
        """Queues one invocation and waits for the peer's answer: ("response"|"error", bytes)."""
        request_id = str(uuid.uuid4())
        done = threading.Event()
        with self.lock:
            self.done[request_id] = done
        self.pending.put((request_id, json.dumps(event).encode()))
        deadline = time.monotonic() + timeout
        while not done.wait(0.1):
            if self.init_error is not None:
                raise RuntimeError(f"init error: {self.init_error}")
            if process.poll() is not None:
                raise RuntimeError(f"the peer exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer after {timeout}s")
        return self.results.pop(request_id)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def stripe_event(event_id, product_id, created, name="Pro", plan="pro", event_type="product.updated", livemode=False):
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": livemode,
        "api_version": "2025-10-29.clover",
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {
            "object": {
                "id": product_id,
                "object": "product",
                "name": name,
                "active": True,
                "metadata": {"plan": plan},
                "created": created - 2_592_000,
                "updated": created,
            }
        },
    }


def subscription_event(event_id, created, customer, price, product, status="active",
                       event_type="customer.subscription.updated", period_start=None):
    """A subscription event as Stripe sends it: the price names its product by id."""
    period_start = created if period_start is None else period_start
    return {
        "id": event_id, "object": "event", "type": event_type, "created": created,
        "livemode": False, "api_version": "2025-10-29.clover", "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {
            "id": f"sub_{customer}", "object": "subscription", "customer": customer,
            "status": status, "created": created - 86_400, "cancel_at_period_end": False,
            "livemode": False, "metadata": {},
            "items": {"object": "list", "data": [{
                "id": f"si_{customer}", "object": "subscription_item", "quantity": 1,
                "current_period_start": period_start,
                "current_period_end": period_start + 2_592_000,
                "price": {"id": price, "object": "price", "product": product, "lookup_key": None,
                          "metadata": {}, "recurring": {"interval": "month", "interval_count": 1}},
            }]},
        }},
    }


def invoice_event(event_id, created, customer, invoice_id, event_type="invoice.paid"):
    paid = event_type in ("invoice.paid", "invoice.payment_succeeded")
    return {
        "id": event_id, "object": "event", "type": event_type, "created": created,
        "livemode": False, "api_version": "2025-10-29.clover", "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {
            "id": invoice_id, "object": "invoice", "customer": customer,
            "status": "paid" if paid else "open", "number": "BENCH-0001", "currency": "usd",
            "amount_due": 1000, "amount_paid": 1000 if paid else 0,
            "amount_remaining": 0 if paid else 1000, "attempt_count": 1,
            "billing_reason": "subscription_cycle",
            "parent": {"subscription_details": {"subscription": f"sub_{customer}"}},
            "created": created, "period_start": created - 2_592_000, "period_end": created,
        }},
    }


def sign(body, secret=SECRET):
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def gateway_event(body, signature, method="POST", base64_encoded=False):
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "POST /stripe/webhook",
        "rawPath": "/stripe/webhook",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": signature,
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "host": "api.example.test",
        },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": "api.example.test",
            "http": {
                "method": method,
                "path": "/stripe/webhook",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "Stripe/1.0",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /stripe/webhook",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body.encode()).decode() if base64_encoded else body,
        "isBase64Encoded": base64_encoded,
    }


class Checks:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, label, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"  ok   {label}")
        else:
            self.failed += 1
            print(f"  FAIL {label} {detail}")


def aws(service, url):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def calls_at(moto_url, clear=False):
    """The calls moto received since it was last cleared, by service."""
    request = urllib.request.Request(f"{moto_url}/_local/calls", method="DELETE" if clear else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        counts = json.load(answer)
    by_service = {}
    for key, n in counts.items():
        service = key.split(" ", 1)[1]
        by_service[service] = by_service.get(service, 0) + n
    return by_service


def run_peer(name, spec, dynamodb_url, checks, logs_dir, world):
    dynamodb = aws("dynamodb", dynamodb_url)
    api = RuntimeApi()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
        "TABLE_NAME": TABLE,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": dynamodb_url,
        "AWS_ENDPOINT_URL_API_GATEWAY": dynamodb_url,
        "USER_POOL_ID": world["pool_id"],
        "PLANS": f"free={world['usage_plans']['free']},pro={world['usage_plans']['pro']}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "STRIPE_WEBHOOK_SECRETS": f"whsec_other,{SECRET}",
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "LIVEMODE": "false",
        **spec.get("env", {}),
    }
    argv = [str(ROOT / arg) if "/" in arg else arg for arg in spec["cmd"]]
    log_path = logs_dir / f"{name}.log"
    print(f"{name}: {' '.join(argv)} (cwd {spec['cwd']})")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=ROOT / spec["cwd"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    failed_before = checks.failed
    try:
        product_id = f"prod_{name}_1"
        created = int(time.time()) - 60

        def send(body, signature=None, **kwargs):
            signature = sign(body) if signature is None else signature
            started = time.monotonic()
            kind, raw = api.invoke(gateway_event(body, signature, **kwargs), process)
            elapsed = (time.monotonic() - started) * 1000
            if kind != "response":
                return None, {"invoke_error": raw.decode("utf-8", "replace")}, elapsed
            answer = json.loads(raw)
            return answer.get("statusCode"), json.loads(answer.get("body") or "null"), elapsed

        def send_counted(body, **kwargs):
            """As send, with the AWS calls the event made, by service."""
            calls_at(dynamodb_url, clear=True)
            status, answer, elapsed = send(body, **kwargs)
            made = {service: n for service, n in calls_at(dynamodb_url).items() if n}
            return status, answer, elapsed, made

        def item(pk, sk):
            return dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True).get("Item")

        # A new product: the product and the event done in one transaction.
        first = json.dumps(stripe_event(f"evt_{name}_1", product_id, created))
        status, body, ms, made = send_counted(first)
        checks.check(f"{name}: signed product.updated -> 200 applied, AWS calls {{'dynamodb': 1}} "
                     f"({ms:.0f} ms, first invoke)",
                     (status, body) == (200, {"received": True, "outcome": "applied"}) and made == {"dynamodb": 1},
                     f"got {status} {body}, calls {made}")
        product = item(f"PRODUCT#{product_id}", "PRODUCT")
        doc = json.loads(product["doc"]["S"]) if product else None
        checks.check(f"{name}: PRODUCT item written",
                     product is not None
                     and doc == {"name": "Pro", "active": True, "metadata": {"plan": "pro"}, "plan": "pro"}
                     and product["event_created"]["N"] == str(created)
                     and product["event_id"]["S"] == f"evt_{name}_1",
                     f"got {product}")
        event_item = item(f"EVENT#evt_{name}_1", "EVENT")
        checks.check(f"{name}: EVENT item status done",
                     event_item is not None and event_item["status"]["S"] == "done" and "expires_at" in event_item
                     and "lease_until" not in event_item,
                     f"got {event_item}")

        # Declined transaction, then step by step: claim, GetItem of the event.
        status, body, ms, made = send_counted(first)
        checks.check(f"{name}: same event again -> 200 duplicate, AWS calls {{'dynamodb': 3}} ({ms:.0f} ms)",
                     (status, body) == (200, {"received": True, "outcome": "duplicate"}) and made == {"dynamodb": 3},
                     f"got {status} {body}, calls {made}")

        # Declined transaction, then claim, declined PutItem, GetItem of the product, complete.
        older = json.dumps(stripe_event(f"evt_{name}_0", product_id, created - 100, name="Old", plan="free"))
        status, body, ms, made = send_counted(older)
        checks.check(f"{name}: older event, same product -> 200 stale, AWS calls {{'dynamodb': 5}} ({ms:.0f} ms)",
                     (status, body) == (200, {"received": True, "outcome": "stale"}) and made == {"dynamodb": 5},
                     f"got {status} {body}, calls {made}")
        product = item(f"PRODUCT#{product_id}", "PRODUCT")
        checks.check(f"{name}: PRODUCT item kept the newer event",
                     product is not None and product["event_id"]["S"] == f"evt_{name}_1", f"got {product}")

        older_event = item(f"EVENT#evt_{name}_0", "EVENT")
        checks.check(f"{name}: stale event's EVENT item status done",
                     older_event is not None and older_event["status"]["S"] == "done"
                     and "lease_until" not in older_event, f"got {older_event}")

        newer = json.dumps(stripe_event(f"evt_{name}_2", product_id, created + 100, name="Pro 2"))
        status, body, ms, made = send_counted(newer, base64_encoded=True)
        checks.check(f"{name}: newer event, base64 body -> 200 applied, AWS calls {{'dynamodb': 1}} ({ms:.0f} ms)",
                     (status, body) == (200, {"received": True, "outcome": "applied"}) and made == {"dynamodb": 1},
                     f"got {status} {body}, calls {made}")
        product = item(f"PRODUCT#{product_id}", "PRODUCT")
        checks.check(f"{name}: PRODUCT item is the newer event's",
                     product is not None and product["event_id"]["S"] == f"evt_{name}_2"
                     and json.loads(product["doc"]["S"])["name"] == "Pro 2", f"got {product}")

        bad = json.dumps(stripe_event(f"evt_{name}_3", product_id, created + 200))
        status, body, _ = send(bad, signature=sign(bad, secret="whsec_wrong"))
        checks.check(f"{name}: bad signature -> 400 invalid_signature",
                     status == 400 and isinstance(body, dict) and body.get("error") == "invalid_signature",
                     f"got {status} {body}")
        checks.check(f"{name}: bad signature wrote nothing", item(f"EVENT#evt_{name}_3", "EVENT") is None)

        # A product document over DynamoDB's 400 KB item limit: the transaction that writes it
        # with the event done fails (not cancelled: no condition declined it); nothing was
        # claimed, nothing written.
        too_big = json.dumps(stripe_event(f"evt_{name}_6", product_id, created + 400, name="x" * 420_000))
        status, body, _, made = send_counted(too_big)
        checks.check(f"{name}: failing product write -> 500 retry_later, AWS calls {{'dynamodb': 1}}",
                     (status, body) == (500, {"error": "retry_later"}) and made == {"dynamodb": 1},
                     f"got {status} {body}, calls {made}")
        checks.check(f"{name}: failing product write left no EVENT item",
                     item(f"EVENT#evt_{name}_6", "EVENT") is None)
        product = item(f"PRODUCT#{product_id}", "PRODUCT")
        checks.check(f"{name}: failing product write kept the PRODUCT item",
                     product is not None and product["event_id"]["S"] == f"evt_{name}_2", f"got {product}")

        huge = json.dumps(stripe_event(f"evt_{name}_7", product_id, created + 500, name="x" * (512 * 1024)))
        status, body, _ = send(huge)
        checks.check(f"{name}: body over 512 KiB -> 413", status == 413, f"got {status} {body}")

        status, body, _ = send(first, method="GET")
        checks.check(f"{name}: GET -> 405", status == 405, f"got {status} {body}")

        live = json.dumps(stripe_event(f"evt_{name}_4", product_id, created + 300, livemode=True))
        status, body, _ = send(live)
        checks.check(f"{name}: livemode event -> 400", status == 400, f"got {status} {body}")

        other = json.dumps(stripe_event(f"evt_{name}_5", product_id, created, event_type="customer.updated"))
        status, body, _ = send(other)
        checks.check(f"{name}: customer.updated -> 200 ignored",
                     (status, body) == (200, {"received": True, "outcome": "ignored"}), f"got {status} {body}")

        lifecycle_checks(name, send, item, dynamodb_url, checks, world, created)
    except Exception as err:
        checks.check(f"{name}: ran", False, repr(err))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        api.close()
    output = log_path.read_text(errors="replace")
    leaked = [secret for secret in (SECRET, "sk_test_bench", "v1=") if secret in output]
    checks.check(f"{name}: log shows no secret nor signature", not leaked, f"found {leaked}")
    if checks.failed > failed_before:
        print(f"--- {name} output ---\n{output}--- end ---")
    else:
        lines = [line for line in output.splitlines() if '"outcome"' in line]
        print(f"  {name} logged {len(lines)} outcome lines, e.g. {lines[0] if lines else None}")


def lifecycle_checks(name, send, item, moto_url, checks, world, created):
    """The catalogue's products; a linked user on free: a free subscription, free -> pro, a
    renewal, an older event, the renewal's invoices (newer, older, again, claimed by another
    delivery), a duplicate and the cancellation, with the AWS calls of each event."""
    cognito, apigateway = aws("cognito-idp", moto_url), aws("apigateway", moto_url)
    dynamodb = aws("dynamodb", moto_url)
    free, pro = world["usage_plans"]["free"], world["usage_plans"]["pro"]
    customer = f"cus_{name}_life"
    username = f"{name}-life"
    user = cognito.admin_create_user(UserPoolId=world["pool_id"], Username=username,
                                     MessageAction="SUPPRESS")["User"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    key_id = apigateway.create_api_key(name=sub, enabled=True)["id"]
    apigateway.create_usage_plan_key(usagePlanId=free, keyId=key_id, keyType="API_KEY")
    dynamodb.put_item(TableName=TABLE, Item={
        "pk": {"S": f"CUSTOMER#{customer}"}, "sk": {"S": "LINK"}, "sub": {"S": sub},
        "username": {"S": username}, "plan": {"S": "free"}, "key_id": {"S": key_id}})

    def step(label, event, outcome, calls):
        calls_at(moto_url, clear=True)
        status, body, ms = send(json.dumps(event))
        made = {service: n for service, n in calls_at(moto_url).items() if n}
        expected = ((409, {"error": "in_progress", "message": "this event is being applied; retry later"})
                    if outcome == "in_progress" else (200, {"received": True, "outcome": outcome}))
        checks.check(f"{name}: {label} -> {expected[0]} {outcome}, AWS calls {calls} ({ms:.0f} ms)",
                     (status, body) == expected and made == calls,
                     f"got {status} {body}, calls {made}")

    for plan in ("free", "pro"):
        step(f"catalogue: new product {plan}", stripe_event(
            f"evt_{name}_prod_{plan}", f"prod_{name}_{plan}", created - 1000, name=plan, plan=plan),
            "applied", {"dynamodb": 1})

    def plan_is(label, plan, usage_plan):
        link = item(f"CUSTOMER#{customer}", "LINK")
        attributes = cognito.admin_get_user(UserPoolId=world["pool_id"], Username=username)["UserAttributes"]
        attribute = next((a["Value"] for a in attributes if a["Name"] == "custom:plan_type"), None)
        on = [up for up in (free, pro)
              if any(k["id"] == key_id for k in apigateway.get_usage_plan_keys(usagePlanId=up)["items"])]
        checks.check(f"{name}: {label}: link, attribute and key on {plan}",
                     link["plan"]["S"] == plan and link["key_id"]["S"] == key_id
                     and attribute in (plan, None if plan == "free" else plan) and on == [usage_plan],
                     f"got link {link}, attribute {attribute}, key on {on}")

    t = created + 1000
    step("free subscription created", subscription_event(
        f"evt_{name}_s1", t, customer, "price_free", f"prod_{name}_free",
        event_type="customer.subscription.created"), "applied", {"dynamodb": 4})
    plan_is("free subscription", "free", free)
    step("free -> pro", subscription_event(
        f"evt_{name}_s2", t + 10, customer, "price_pro", f"prod_{name}_pro"),
        "applied", {"dynamodb": 4, "cognito-idp": 1, "apigateway": 2})
    plan_is("free -> pro", "pro", pro)
    renewal = subscription_event(f"evt_{name}_s3", t + 20, customer, "price_pro", f"prod_{name}_pro",
                                 period_start=t + 20)
    step("renewal on pro", renewal, "applied", {"dynamodb": 4})
    stored = json.loads(item(f"CUSTOMER#{customer}", f"SUB#sub_{customer}")["doc"]["S"])
    checks.check(f"{name}: renewal stored the new period",
                 stored == {"status": "active", "price": "price_pro", "product": f"prod_{name}_pro",
                            "plan": "pro", "current_period_end": t + 20 + 2_592_000}, f"got {stored}")
    step("older subscription event", subscription_event(
        f"evt_{name}_s0", t + 15, customer, "price_free", f"prod_{name}_free"), "stale", {"dynamodb": 3})
    plan_is("older event", "pro", pro)
    invoice = f"in_{name}_1"
    paid = invoice_event(f"evt_{name}_i2", t + 22, customer, invoice)
    step("invoice.paid", paid, "applied", {"dynamodb": 1})
    step("invoice.payment_succeeded", invoice_event(
        f"evt_{name}_i3", t + 23, customer, invoice, "invoice.payment_succeeded"), "applied", {"dynamodb": 1})
    # The declined transaction, the claim, the cancelled invoice transaction, the completion.
    step("older invoice.finalized", invoice_event(
        f"evt_{name}_i1", t + 21, customer, invoice, "invoice.finalized"), "stale", {"dynamodb": 4})
    stored = json.loads(item(f"CUSTOMER#{customer}", f"INVOICE#{invoice}")["doc"]["S"])
    checks.check(f"{name}: INVOICE item is the newest event's",
                 stored["event_type"] == "invoice.payment_succeeded" and stored["status"] == "paid"
                 and stored["delinquent"] is False, f"got {stored}")
    # The declined transaction, the claim, the event's GetItem.
    step("invoice.paid again", paid, "duplicate", {"dynamodb": 3})

    def claimed_by_another(event_id, lease_until):
        dynamodb.put_item(TableName=TABLE, Item={
            "pk": {"S": f"EVENT#{event_id}"}, "sk": {"S": "EVENT"}, "status": {"S": "processing"},
            "lease_until": {"N": str(lease_until)}, "expires_at": {"N": str(lease_until + 86_400)}})

    second = f"in_{name}_2"
    claimed_by_another(f"evt_{name}_i5", int(time.time()) + 300)
    step("invoice.paid claimed by another delivery", invoice_event(f"evt_{name}_i5", t + 24, customer, second),
         "in_progress", {"dynamodb": 3})
    checks.check(f"{name}: invoice claimed by another delivery: nothing written",
                 item(f"CUSTOMER#{customer}", f"INVOICE#{second}") is None
                 and item(f"EVENT#evt_{name}_i5", "EVENT")["status"]["S"] == "processing")
    claimed_by_another(f"evt_{name}_i6", int(time.time()) - 1)
    step("invoice.paid whose other claim ran out", invoice_event(f"evt_{name}_i6", t + 25, customer, second),
         "applied", {"dynamodb": 1})
    stored, event_item = item(f"CUSTOMER#{customer}", f"INVOICE#{second}"), item(f"EVENT#evt_{name}_i6", "EVENT")
    checks.check(f"{name}: invoice whose other claim ran out: INVOICE item written, EVENT item done",
                 stored is not None and stored["event_id"]["S"] == f"evt_{name}_i6"
                 and event_item["status"]["S"] == "done" and "lease_until" not in event_item,
                 f"got {stored}, {event_item}")
    step("renewal again", renewal, "duplicate", {"dynamodb": 2})
    step("cancellation", subscription_event(
        f"evt_{name}_s4", t + 30, customer, "price_pro", f"prod_{name}_pro", status="canceled",
        event_type="customer.subscription.deleted"),
        "applied", {"dynamodb": 4, "cognito-idp": 1, "apigateway": 2})
    plan_is("cancellation", "free", free)
    step("unlinked customer's subscription", subscription_event(
        f"evt_{name}_u1", t, f"cus_{name}_nobody", "price_pro", f"prod_{name}_pro"),
        "unmapped", {"dynamodb": 4})


def world_of(moto_url):
    """The user pool (with the plan attribute) and the two plans' usage plans the peers use."""
    pool_id = aws("cognito-idp", moto_url).create_user_pool(
        PoolName="bench-peers",
        Schema=[{"Name": "plan_type", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    apigateway = aws("apigateway", moto_url)
    usage_plans = {plan: apigateway.create_usage_plan(name=f"bench-peers-{plan}")["id"]
                   for plan in ("free", "pro")}
    return {"pool_id": pool_id, "usage_plans": usage_plans}


def main():
    wanted = sys.argv[1:] or ["node", "python"]
    peers = json.loads((PEERS_DIR / "peers.json").read_text())
    moto_durable = ROOT / "local" / "moto_durable.py"
    checks = Checks()
    moto = None
    with tempfile.TemporaryDirectory(prefix="peers-smoke-") as tmp:
        logs_dir = Path(tmp)
        try:
            port = free_port()
            with open(logs_dir / "moto.log", "wb") as moto_log:
                moto = subprocess.Popen(
                    [sys.executable, str(moto_durable), "--host", "127.0.0.1", "--port", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=moto_log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            wait_for_port(port, moto)
            dynamodb_url = f"http://127.0.0.1:{port}"
            boto3.client(
                "dynamodb",
                endpoint_url=dynamodb_url,
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            ).create_table(
                TableName=TABLE,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            )
            world = world_of(dynamodb_url)
            for name in wanted:
                run_peer(name, peers[name], dynamodb_url, checks, logs_dir, world)
        except Exception as err:
            checks.check("setup", False, repr(err))
        finally:
            if moto is not None and moto.poll() is None:
                os.killpg(moto.pid, signal.SIGTERM)
                try:
                    moto.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(moto.pid, signal.SIGKILL)
                    moto.wait()
    print(f"smoke: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
