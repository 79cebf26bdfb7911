"""The Stripe front over a real localstripe, both started here on free 127.0.0.1 ports.

    local/.venv/bin/python -m pytest local/stripe_front/tests -q
"""
import calendar
import contextlib
import hashlib
import http.client
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import stripe_shapes

FRONT_DIR = Path(__file__).resolve().parent.parent
SECRET = "whsec_test_front"
KEY = "sk_test_front_tests"


# -- helpers and fixtures ------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=8.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return predicate()


def assert_shape(obj, rust_type):
    """The JSON deserializes with async-stripe 1.0.0-rc.10 (checked when its sources exist)."""
    if stripe_shapes.available():
        assert stripe_shapes.check(obj, rust_type) == []


class Receiver:
    """A webhook endpoint: records every delivery; /flaky answers 500 to an event's first try."""

    def __init__(self):
        self.deliveries = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event = json.loads(body)
                with receiver.lock:
                    first = not any(d["event"]["id"] == event["id"] and d["path"] == self.path
                                    for d in receiver.deliveries)
                    receiver.deliveries.append({"path": self.path, "body": body, "event": event,
                                                "signature": self.headers["Stripe-Signature"]})
                self.send_response(500 if self.path == "/flaky" and first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, type, object_id=None, path="/hook", count=1, timeout=8.0):
        def matching():
            with self.lock:
                found = [d for d in self.deliveries if d["path"] == path
                         and d["event"]["type"] == type
                         and (object_id is None or d["event"]["data"]["object"]["id"] == object_id)]
            return found if len(found) >= count else None
        found = wait_until(matching, timeout)
        assert found, "no %s delivery of %s for %s" % (path, type, object_id)
        return found


class Api:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, data=None, key=KEY, headers=None):
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if key:
            req.add_header("Authorization", "Bearer " + key)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), e.headers

    def ok(self, method, path, data=None, **kw):
        status, body, _ = self.call(method, path, data, **kw)
        assert status == 200, body
        return body

    def get(self, path, **query):
        return self.ok("GET", path + ("?" + urllib.parse.urlencode(query, doseq=True)
                                      if query else ""))


def _start(args, log):
    return subprocess.Popen([sys.executable, *map(str, args)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@contextlib.contextmanager
def running_front(logs, endpoints):
    """localstripe and the front on free ports, logging into `logs`, with these webhook
    endpoints ({id: form}) configured; stopped on exit, whatever happened."""
    ls_port, front_port = free_port(), free_port()
    procs = []
    try:
        with open(logs / "localstripe.log", "w") as ls_log, open(logs / "front.log", "w") as log:
            procs.append(_start([FRONT_DIR / "run_localstripe.py", "--port", ls_port], ls_log))
            procs.append(_start([FRONT_DIR / "server.py", "--port", front_port,
                                 "--localstripe-url", "http://127.0.0.1:%d" % ls_port], log))
        client = Api("http://127.0.0.1:%d" % front_port)

        def healthy():
            if any(p.poll() is not None for p in procs):
                pytest.fail("a process exited; logs in %s" % logs)
            try:
                return client.call("GET", "/_test/health", key=None)[0] == 200
            except OSError:
                return False
        assert wait_until(healthy, timeout=15), "not healthy in 15 s; logs in %s" % logs
        for hook_id, form in endpoints.items():
            status, _, _ = client.call("POST", "/_config/webhooks/" + hook_id, form, key=None)
            assert status == 200
        yield client
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


@pytest.fixture(scope="session")
def api(tmp_path_factory, receiver):
    endpoints = {
        "main": {"url": receiver.url + "/hook", "secret": SECRET},
        "flaky": {"url": receiver.url + "/flaky", "secret": SECRET,
                  "events[]": "checkout.session.expired"},
    }
    with running_front(tmp_path_factory.mktemp("logs"), endpoints) as client:
        yield client


@pytest.fixture(scope="session")
def catalog(api):
    """A product with a monthly price (lookup key pro_monthly) and a one-time price."""
    product = api.ok("POST", "/v1/products", {"name": "Pro", "metadata[plan]": "pro"})
    assert_shape(product, "Product")
    monthly = api.ok("POST", "/v1/prices", {
        "currency": "usd", "unit_amount": 1500, "product": product["id"],
        "recurring[interval]": "month", "lookup_key": "pro_monthly", "metadata[plan]": "pro",
        "nickname": "Pro monthly"})
    one_time = api.ok("POST", "/v1/prices", {
        "currency": "usd", "unit_amount": 500, "lookup_key": "setup_fee",
        "product_data[name]": "Setup fee"})
    for price in (monthly, one_time):
        assert_shape(price, "Price")
    return {"product": product, "monthly": monthly, "one_time": one_time}


def verify_signature(delivery, secret=SECRET, tolerance=300):
    parts = dict(p.split("=", 1) for p in delivery["signature"].split(","))
    signed = parts["t"].encode() + b"." + delivery["body"]
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    return int(parts["t"])


def new_customer(api, email, **extra):
    return api.ok("POST", "/v1/customers", dict(email=email, **extra))


def subscription_session(api, catalog, customer, **extra):
    return api.ok("POST", "/v1/checkout/sessions", dict({
        "mode": "subscription", "customer": customer["id"],
        "line_items[0][price]": catalog["monthly"]["id"], "line_items[0][quantity]": 1,
        "success_url": "http://127.0.0.1:9/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:9/cancel",
        "subscription_data[metadata][cognito_sub]": "sub-123"}, **extra))


# -- idempotency ---------------------------------------------------------------------------

def test_when_a_key_is_reused_with_the_same_body_should_replay_the_first_customer(api):
    data = {"email": "idem@example.com", "metadata[cognitoSub]": "u-idem"}
    s1, first, _ = api.call("POST", "/v1/customers", data, headers={"Idempotency-Key": "k-1"})
    s2, again, headers = api.call("POST", "/v1/customers", data, headers={"Idempotency-Key": "k-1"})
    assert (s1, s2) == (200, 200)
    assert again["id"] == first["id"]
    assert headers["Idempotent-Replayed"] == "true"
    assert len(api.get("/v1/customers", email="idem@example.com")["data"]) == 1
    assert_shape(first, "Customer")


def test_when_concurrent_creates_share_a_key_should_create_one_customer(api):
    data = {"email": "race@example.com"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: api.call("POST", "/v1/customers", data,
                                                   headers={"Idempotency-Key": "k-race"}),
                                range(6)))
    assert {r[0] for r in results} == {200}
    assert len({r[1]["id"] for r in results}) == 1
    assert len(api.get("/v1/customers", email="race@example.com")["data"]) == 1


def test_when_a_key_is_reused_with_another_body_should_answer_idempotency_error(api):
    api.ok("POST", "/v1/customers", {"email": "a@example.com"},
           headers={"Idempotency-Key": "k-other"})
    status, body, _ = api.call("POST", "/v1/customers", {"email": "b@example.com"},
                               headers={"Idempotency-Key": "k-other"})
    assert status == 400
    assert body["error"]["type"] == "idempotency_error"


# -- customer search -----------------------------------------------------------------------

def test_when_the_fronts_own_route_gets_an_idempotency_key_should_still_read_the_body(
        api, catalog):
    customer = new_customer(api, "idem-session@example.com")
    data = {"mode": "subscription", "customer": customer["id"],
            "line_items[0][price]": catalog["monthly"]["id"], "line_items[0][quantity]": 1,
            "success_url": "http://127.0.0.1:9/done", "cancel_url": "http://127.0.0.1:9/cancel"}
    s1, first, _ = api.call("POST", "/v1/checkout/sessions", data,
                            headers={"Idempotency-Key": "k-session"})
    s2, again, headers = api.call("POST", "/v1/checkout/sessions", data,
                                  headers={"Idempotency-Key": "k-session"})
    assert (s1, s2) == (200, 200), first
    assert again["id"] == first["id"]
    assert headers["Idempotent-Replayed"] == "true"


def test_customer_search_should_match_metadata_and_email_and_skip_deleted(api):
    alice = new_customer(api, "alice@example.com", **{"metadata[cognito_sub]": "s-alice"})
    bob = new_customer(api, "o'bob@example.com", **{"metadata[cognito_sub]": "s-bob"})
    found = api.get("/v1/customers/search", query="metadata['cognito_sub']:'s-alice'")
    assert found["object"] == "search_result"
    assert [c["id"] for c in found["data"]] == [alice["id"]]
    assert_shape(found, "SearchList<Customer>")
    by_email = api.get("/v1/customers/search", query=r"email:'o\'bob@example.com'")
    assert [c["id"] for c in by_email["data"]] == [bob["id"]]
    either = api.get("/v1/customers/search",
                     query="email:'alice@example.com' OR metadata['cognito_sub']:'s-bob'")
    assert {c["id"] for c in either["data"]} == {alice["id"], bob["id"]}
    api.ok("DELETE", "/v1/customers/" + alice["id"])
    gone = api.get("/v1/customers/search", query="metadata['cognito_sub']:'s-alice'")
    assert gone["data"] == [] and gone["has_more"] is False and gone["next_page"] is None


# -- prices --------------------------------------------------------------------------------

def test_prices_should_filter_by_lookup_keys_and_expand_the_product(api, catalog):
    listed = api.get("/v1/prices", **{"lookup_keys[]": ["pro_monthly", "setup_fee"],
                                      "expand[]": "data.product"})
    assert {p["id"] for p in listed["data"]} == {catalog["monthly"]["id"],
                                                 catalog["one_time"]["id"]}
    monthly = next(p for p in listed["data"] if p["id"] == catalog["monthly"]["id"])
    assert monthly["product"]["id"] == catalog["product"]["id"]
    assert monthly["type"] == "recurring" and monthly["recurring"]["interval"] == "month"
    assert_shape(listed, "List<Price>")
    one = api.get("/v1/prices/" + catalog["one_time"]["id"], **{"expand[0]": "product"})
    assert one["type"] == "one_time" and one["product"]["name"] == "Setup fee"
    recurring = api.get("/v1/prices", type="recurring", active="true")["data"]
    assert [p["id"] for p in recurring] == [catalog["monthly"]["id"]]


def test_lookup_keys_should_be_unique_unless_transferred(api, catalog):
    data = {"currency": "usd", "unit_amount": 900, "product": catalog["product"]["id"],
            "lookup_key": "dup_key"}
    first = api.ok("POST", "/v1/prices", data)
    status, body, _ = api.call("POST", "/v1/prices", data)
    assert status == 400 and body["error"]["param"] == "lookup_key"
    second = api.ok("POST", "/v1/prices", dict(data, transfer_lookup_key="true"))
    assert api.get("/v1/prices/" + first["id"])["lookup_key"] is None
    assert [p["id"] for p in api.get("/v1/prices", **{"lookup_keys[]": "dup_key"})["data"]] \
        == [second["id"]]


# -- checkout ------------------------------------------------------------------------------

def test_checkout_session_should_be_created_retrieved_listed_and_expired(api, catalog, receiver):
    customer = new_customer(api, "shopper@example.com")
    session = subscription_session(api, catalog, customer, client_reference_id="ref-1",
                                   **{"metadata[order]": "o-1"})
    assert session["id"].startswith("cs_test_") and session["status"] == "open"
    assert session["url"] == api.base + "/checkout/pay/" + session["id"]
    assert session["success_url"].endswith("session=" + session["id"])
    assert (session["amount_total"], session["currency"]) == (1500, "usd")
    assert_shape(session, "CheckoutSession")
    got = api.get("/v1/checkout/sessions/" + session["id"], **{"expand[]": "line_items"})
    assert got["line_items"]["data"][0]["price"]["id"] == catalog["monthly"]["id"]
    items = api.get("/v1/checkout/sessions/%s/line_items" % session["id"])
    assert items["data"][0]["quantity"] == 1 and items["data"][0]["amount_total"] == 1500
    assert_shape(items, "List<CheckoutSessionItem>")
    listed = api.get("/v1/checkout/sessions", customer=customer["id"])
    assert [s["id"] for s in listed["data"]] == [session["id"]]
    expired = api.ok("POST", "/v1/checkout/sessions/%s/expire" % session["id"], {})
    assert expired["status"] == "expired" and expired["url"] is None
    status, body, _ = api.call("POST", "/v1/checkout/sessions/%s/expire" % session["id"], {})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    receiver.find("checkout.session.expired", session["id"])
    flaky = receiver.find("checkout.session.expired", session["id"], path="/flaky", count=2)
    assert flaky[0]["event"]["id"] == flaky[1]["event"]["id"]  # retried after a 500


def test_completing_a_subscription_checkout_should_subscribe_and_send_a_signed_event(
        api, catalog, receiver):
    customer = new_customer(api, "payer@example.com")
    session = subscription_session(api, catalog, customer)
    done = api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    assert (done["status"], done["payment_status"]) == ("complete", "paid")
    sub = api.get("/v1/subscriptions/" + done["subscription"])
    assert sub["customer"] == customer["id"] and sub["status"] == "active"
    assert sub["metadata"] == {"cognito_sub": "sub-123"}
    assert sub["items"]["data"][0]["price"]["id"] == catalog["monthly"]["id"]
    assert_shape(sub, "Subscription")
    assert_shape(api.get("/v1/customers/" + customer["id"]), "Customer")
    got = api.get("/v1/checkout/sessions/" + session["id"], **{"expand[]": "subscription"})
    assert got["subscription"]["id"] == sub["id"]
    assert_shape(got, "CheckoutSession")

    delivery = receiver.find("checkout.session.completed", session["id"])[0]
    assert abs(verify_signature(delivery) - time.time()) < 60
    event = delivery["event"]
    assert event["object"] == "event" and event["livemode"] is False
    assert event["data"]["object"]["subscription"] == sub["id"]
    assert_shape(event, "Event")
    assert_shape(event["data"]["object"], "CheckoutSession")
    assert api.get("/_test/events", type="checkout.session.completed")["data"]

    # localstripe's own event, relayed in the current shape and signed with our secret
    created = receiver.find("customer.subscription.created", sub["id"])[0]
    verify_signature(created)
    assert_shape(created["event"]["data"]["object"], "Subscription")

    # a resend signed with an old timestamp (replay-protection tests)
    old = int(time.time()) - 3600
    resent = api.ok("POST", "/_test/events/%s/resend?timestamp=%d" % (event["id"], old), {})
    assert {"endpoint": "main", "status": 200} in resent["deliveries"]
    again = receiver.find("checkout.session.completed", session["id"], count=2)
    assert verify_signature(again[-1]) == old


def test_trial_checkout_should_complete_without_payment(api, catalog):
    customer = new_customer(api, "trial@example.com")
    session = subscription_session(api, catalog, customer,
                                   **{"subscription_data[trial_period_days]": 14})
    done = api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    assert done["payment_status"] == "no_payment_required"
    sub = api.get("/v1/subscriptions/" + done["subscription"])
    assert sub["status"] == "trialing" and sub["trial_end"] > time.time() + 13 * 86400
    assert_shape(sub, "Subscription")
    trialing = api.get("/v1/subscriptions", customer=customer["id"], status="trialing")
    assert [s["id"] for s in trialing["data"]] == [sub["id"]]
    # the trial ends, paid: the first cycle starts at trial_end (the new billing anchor)
    reply = api.ok("POST", "/_test/subscriptions/%s/renew" % sub["id"], {})
    renewed = reply["subscription"]
    assert renewed["status"] == "active"
    assert period(renewed) == (sub["trial_end"], add_months(sub["trial_end"], 1))
    updated = next(e for e in api.get("/_test/events", type="customer.subscription.updated")
                   ["data"] if e["id"] == reply["events"][-1])
    assert updated["data"]["previous_attributes"]["status"] == "trialing"


def test_async_payment_and_declined_card_flows(api, catalog, receiver):
    session = api.ok("POST", "/v1/checkout/sessions", {
        "mode": "payment", "customer_email": "async@example.com", "customer_creation": "always",
        "line_items[0][price]": catalog["one_time"]["id"], "line_items[0][quantity]": 2,
        "payment_intent_data[metadata][order]": "o-2", "success_url": "http://127.0.0.1:9/ok"})
    status, body, _ = api.call("POST", "/_test/checkout/sessions/%s/fail" % session["id"], {})
    assert status == 402 and body["error"]["type"] == "card_error"
    assert api.get("/v1/checkout/sessions/" + session["id"])["status"] == "open"
    done = api.ok("POST", "/_test/checkout/sessions/%s/complete_async" % session["id"], {})
    assert (done["status"], done["payment_status"]) == ("complete", "unpaid")
    assert done["customer"].startswith("cus_") and done["payment_intent"].startswith("pi_")
    paid = api.ok("POST", "/_test/checkout/sessions/%s/async_payment" % session["id"],
                  {"succeeded": "true"})
    assert paid["payment_status"] == "paid"
    receiver.find("checkout.session.async_payment_succeeded", session["id"])
    pi = api.get("/v1/payment_intents/" + done["payment_intent"])
    assert pi["status"] == "succeeded" and pi["amount"] == 1000
    assert pi["metadata"] == {"order": "o-2"}


# -- billing portal ------------------------------------------------------------------------

def test_portal_session_and_cancellation(api, catalog, receiver):
    customer = new_customer(api, "portal@example.com")
    session = subscription_session(api, catalog, customer)
    sub_id = api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"],
                    {})["subscription"]
    portal = api.ok("POST", "/v1/billing_portal/sessions", {
        "customer": customer["id"], "return_url": "http://127.0.0.1:9/account",
        "flow_data[type]": "subscription_cancel",
        "flow_data[subscription_cancel][subscription]": sub_id})
    assert portal["id"].startswith("bps_") and portal["object"] == "billing_portal.session"
    assert portal["url"] == api.base + "/portal/" + portal["id"]
    assert portal["flow"]["subscription_cancel"]["subscription"] == sub_id
    assert_shape(portal, "BillingPortalSession")
    later = api.ok("POST", "/_test/portal/sessions/%s/cancel_subscription" % portal["id"],
                   {"subscription": sub_id, "at_period_end": "true"})
    assert later["cancel_at_period_end"] is True
    receiver.find("customer.subscription.updated", sub_id)
    now = api.ok("POST", "/_test/portal/sessions/%s/cancel_subscription" % portal["id"],
                 {"subscription": sub_id})
    assert now["status"] == "canceled"
    deleted = receiver.find("customer.subscription.deleted", sub_id)[0]
    assert deleted["event"]["data"]["object"]["status"] == "canceled"


# -- errors --------------------------------------------------------------------------------

def test_errors_should_be_stripe_shaped(api, catalog):
    status, body, _ = api.call("GET", "/v1/customers", key=None)
    assert status == 401 and body["error"]["type"] == "invalid_request_error"
    base = {"mode": "subscription", "line_items[0][quantity]": 1,
            "success_url": "http://127.0.0.1:9/ok"}
    status, body, _ = api.call("POST", "/v1/checkout/sessions",
                               dict(base, **{"line_items[0][price]": "price_missing"}))
    assert status == 400
    assert body["error"]["code"] == "resource_missing"
    assert body["error"]["param"] == "line_items[0][price]"
    status, body, _ = api.call("POST", "/v1/checkout/sessions",
                               dict(base, **{"line_items[0][price]": catalog["one_time"]["id"]}))
    assert status == 400 and body["error"]["param"] == "line_items[0][price]"
    no_url = {k: v for k, v in base.items() if k != "success_url"}
    status, body, _ = api.call("POST", "/v1/checkout/sessions",
                               dict(no_url, **{"line_items[0][price]": catalog["monthly"]["id"]}))
    assert status == 400 and body["error"]["param"] == "success_url"
    status, body, _ = api.call("GET", "/v1/customers/cus_missing")
    assert status == 404 and body["error"]["code"] == "resource_missing"
    status, body, _ = api.call("POST", "/v1/billing_portal/sessions", {"customer": "cus_nope"})
    assert status == 400 and body["error"]["param"] == "customer"
    assert_shape(body["error"], "ApiErrors")


# -- renewals (test-only) ------------------------------------------------------------------

def subscribe(api, catalog, email, quantity=1):
    customer = new_customer(api, email)
    session = subscription_session(api, catalog, customer,
                                   **{"line_items[0][quantity]": quantity})
    done = api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    return customer, api.get("/v1/subscriptions/" + done["subscription"])


def add_months(ts, n):
    d = datetime.fromtimestamp(ts, timezone.utc)
    m = d.month - 1 + n
    year, month = d.year + m // 12, m % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def period(sub):
    """(start, end) from the items (current API), checked against the top-level (old API)."""
    item = sub["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) \
        == (sub["current_period_start"], sub["current_period_end"])
    return item["current_period_start"], item["current_period_end"]


def delivered_in_order(receiver, ids, timeout=8.0):
    """The /hook deliveries of these events, waited for; asserts they arrived in this order."""
    def all_there():
        with receiver.lock:
            got = [d for d in receiver.deliveries
                   if d["path"] == "/hook" and d["event"]["id"] in ids]
        return got if {d["event"]["id"] for d in got} == set(ids) else None
    got = wait_until(all_there, timeout)
    assert got, "not all of %s delivered" % ids
    first = {}
    for d in got:
        first.setdefault(d["event"]["id"], d)
    assert list(first) == ids
    for d in first.values():
        verify_signature(d)
    return [d["event"] for d in first.values()]


def about(event, sub_id):
    obj = event["data"]["object"]
    parent = obj.get("parent") if isinstance(obj.get("parent"), dict) else {}
    return sub_id in (obj["id"] if obj.get("object") == "subscription" else None,
                      obj.get("subscription"),
                      (parent.get("subscription_details") or {}).get("subscription"))


def assert_created_after_the_rest(api, sub_id, ours):
    """Ours strictly increase and come after every other event sent about the subscription
    (localstripe's, relayed a second late, included)."""
    created = [e["created"] for e in ours]
    assert created == sorted(set(created))
    others = [e for e in api.get("/_test/events")["data"]
              if about(e, sub_id) and e["id"] not in {o["id"] for o in ours}]
    assert others and max(e["created"] for e in others) < created[0]


def test_renew_should_move_the_period_and_send_ordered_signed_events(api, catalog, receiver):
    customer, before = subscribe(api, catalog, "renew@example.com", quantity=2)
    sub_id, (start0, end0) = before["id"], period(before)
    anchor = before["billing_cycle_anchor"]
    assert end0 == add_months(anchor, 1)

    reply = api.ok("POST", "/_test/subscriptions/%s/renew" % sub_id, {})
    assert reply["object"] == "test_renewal" and len(reply["events"]) == 4
    paid, succeeded, payment, updated = delivered_in_order(receiver, reply["events"])
    assert [e["type"] for e in (paid, succeeded, payment, updated)] \
        == ["invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid",
            "customer.subscription.updated"]
    invoice = paid["data"]["object"]
    assert succeeded["data"]["object"]["id"] == invoice["id"] and invoice["id"].startswith("in_")
    assert (invoice["customer"], invoice["status"], invoice["currency"]) \
        == (customer["id"], "paid", "usd")
    assert invoice["amount_due"] == invoice["amount_paid"] == 3000
    assert invoice["amount_remaining"] == 0 and invoice["attempt_count"] == 1
    assert invoice["billing_reason"] == "subscription_cycle"
    assert invoice["parent"]["subscription_details"]["subscription"] == sub_id
    assert (invoice["period_start"], invoice["period_end"]) == (start0, end0)  # looks back
    line = invoice["lines"]["data"][0]
    assert line["period"] == {"start": end0, "end": add_months(anchor, 2)}
    assert line["price"]["id"] == line["pricing"]["price_details"]["price"] \
        == catalog["monthly"]["id"]
    assert line["quantity"] == 2 and line["amount"] == 3000
    assert invoice["hosted_invoice_url"].startswith(api.base + "/invoices/")
    # the renewal's payment intent, linked to the invoice by an invoice_payment (basil+)
    inpay = payment["data"]["object"]
    assert (inpay["invoice"], inpay["amount_paid"], inpay["status"]) \
        == (invoice["id"], 3000, "paid")
    renewal_pi = api.get("/v1/payment_intents/" + inpay["payment"]["payment_intent"])
    assert (renewal_pi["status"], renewal_pi["amount"], renewal_pi["customer"]) \
        == ("succeeded", 3000, customer["id"])
    assert "invoice" not in renewal_pi
    assert_shape(inpay, "InvoicePayment")
    for event in (paid, succeeded, payment, updated):
        assert_shape(event, "Event")
    assert_shape(invoice, "Invoice")
    assert api.get("/v1/invoices/" + invoice["id"]) == invoice

    sub = updated["data"]["object"]
    assert sub["id"] == sub_id and sub["status"] == "active"
    assert period(sub) == (end0, add_months(anchor, 2)) and sub["latest_invoice"] == invoice["id"]
    previous = updated["data"]["previous_attributes"]
    assert (previous["current_period_start"], previous["current_period_end"]) == (start0, end0)
    assert previous["items"]["data"][0]["current_period_end"] == end0
    assert_shape(sub, "Subscription")
    got = api.get("/v1/subscriptions/" + sub_id)
    assert period(got) == period(sub) and got["latest_invoice"] == invoice["id"]
    assert got == reply["subscription"]
    listed = api.get("/v1/subscriptions", customer=customer["id"])["data"]
    assert [period(s) for s in listed] == [period(sub)]
    assert reply["events"][0] in {e["id"] for e in api.get("/_test/events")["data"]}

    # in order even when an endpoint fails first: /flaky answers 500 to each event's first try
    status, _, _ = api.call("POST", "/_config/webhooks/flaky_renewals", {
        "url": receiver.url + "/flaky", "secret": SECRET,
        "events[]": ["invoice.paid", "customer.subscription.updated"]}, key=None)
    assert status == 200
    again = api.ok("POST", "/_test/subscriptions/%s/renew" % sub_id, {})
    later = delivered_in_order(receiver, again["events"])
    flaky = receiver.find("customer.subscription.updated", sub_id, path="/flaky", count=2)
    with receiver.lock:
        tries = [d["event"]["id"] for d in receiver.deliveries if d["path"] == "/flaky"
                 and d["event"]["id"] in again["events"]]
    assert tries == [again["events"][0]] * 2 + [again["events"][3]] * 2
    assert flaky[0]["event"]["id"] == again["events"][3]
    assert period(api.get("/v1/subscriptions/" + sub_id)) \
        == (add_months(anchor, 2), add_months(anchor, 3))
    # localstripe's own events about the subscription arrive a second late, created earlier
    receiver.find("customer.subscription.created", sub_id)
    receiver.find("invoice.payment_succeeded", before["latest_invoice"])
    assert_created_after_the_rest(api, sub_id, [paid, succeeded, payment, updated] + later)


def test_renewal_failed_should_go_past_due_then_unpaid_and_a_paid_retry_recovers(
        api, catalog, receiver):
    customer, before = subscribe(api, catalog, "dunning@example.com")
    sub_id, (start0, end0) = before["id"], period(before)
    path = "/_test/subscriptions/%s/" % sub_id

    reply = api.ok("POST", path + "renewal_failed", {})
    failed, updated = delivered_in_order(receiver, reply["events"])
    assert (failed["type"], updated["type"]) \
        == ("invoice.payment_failed", "customer.subscription.updated")
    invoice = failed["data"]["object"]
    assert (invoice["status"], invoice["amount_paid"], invoice["amount_due"]) \
        == ("open", 0, 1500)
    assert invoice["attempt_count"] == 1 and invoice["billing_reason"] == "subscription_cycle"
    assert invoice["next_payment_attempt"] >= invoice["created"] + 2 * 86400
    assert_shape(invoice, "Invoice")
    assert updated["data"]["object"]["status"] == "past_due"
    assert updated["data"]["previous_attributes"]["status"] == "active"
    got = api.get("/v1/subscriptions/" + sub_id)
    assert got["status"] == "past_due" and period(got) == period(updated["data"]["object"])
    assert period(got)[0] == end0  # the cycle happened, unpaid
    assert [s["id"] for s in api.get("/v1/subscriptions", customer=customer["id"],
                                     status="past_due")["data"]] == [sub_id]
    assert api.get("/v1/subscriptions", customer=customer["id"], status="active")["data"] == []

    final = api.ok("POST", path + "renewal_failed?final=true", {})
    last_try, unpaid = delivered_in_order(receiver, final["events"])
    retried = last_try["data"]["object"]
    assert retried["id"] == invoice["id"] and retried["status"] == "open"
    assert (retried["attempt_count"], retried["next_payment_attempt"]) == (4, None)
    assert unpaid["data"]["object"]["status"] == "unpaid"
    assert unpaid["data"]["previous_attributes"] == {"status": "past_due"}
    got = api.get("/v1/subscriptions/" + sub_id)
    assert got["status"] == "unpaid" and period(got)[0] == end0
    assert [s["status"] for s in api.get("/v1/subscriptions", customer=customer["id"],
                                         status="all")["data"]] == ["unpaid"]
    status, body, _ = api.call("POST", path + "renewal_failed", {"final": "true"}, key=None)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"

    recovered = api.ok("POST", path + "renew", {})
    paid, succeeded, payment, active = delivered_in_order(receiver, recovered["events"])
    assert payment["data"]["object"]["invoice"] == invoice["id"]
    assert paid["data"]["object"]["id"] == invoice["id"]
    assert paid["data"]["object"]["status"] == "paid"
    assert active["data"]["previous_attributes"] == {"status": "unpaid"}
    assert api.get("/v1/subscriptions/" + sub_id)["status"] == "active"
    receiver.find("customer.subscription.created", sub_id)
    assert_created_after_the_rest(api, sub_id,
                                  [failed, updated, last_try, unpaid, paid, succeeded, payment,
                                   active])

    api.ok("DELETE", "/v1/subscriptions/" + sub_id)
    status, body, _ = api.call("POST", path + "renew", {}, key=None)
    assert status == 400 and "canceled" in body["error"]["message"]
    for action in ("renew", "renewal_failed"):
        status, body, _ = api.call("POST", "/_test/subscriptions/sub_missing/" + action, {},
                                   key=None)
        assert status == 404 and body["error"]["code"] == "resource_missing"
        assert body["error"]["message"] == "No such subscription: 'sub_missing'"


# -- subscriptions with several items ------------------------------------------------------

@pytest.fixture(scope="session")
def addon(api):
    """A monthly add-on price whose product names no plan, and a yearly one."""
    product = api.ok("POST", "/v1/products", {"name": "Extra seats", "metadata[kind]": "addon"})
    monthly = api.ok("POST", "/v1/prices", {
        "currency": "usd", "unit_amount": 300, "product": product["id"],
        "recurring[interval]": "month", "metadata[kind]": "addon"})
    yearly = api.ok("POST", "/v1/prices", {
        "currency": "usd", "unit_amount": 3000, "product": product["id"],
        "recurring[interval]": "year"})
    return {"product": product, "monthly": monthly, "yearly": yearly}


def customer_with_card(api, email):
    customer = new_customer(api, email)
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    api.ok("POST", "/v1/customers/" + customer["id"],
           {"invoice_settings[default_payment_method]": pm["id"]})
    return customer


def invoice_payment_event(receiver, invoice_id):
    def delivered():
        with receiver.lock:
            return next((d["event"] for d in receiver.deliveries if d["path"] == "/hook"
                         and d["event"]["type"] == "invoice_payment.paid"
                         and d["event"]["data"]["object"]["invoice"] == invoice_id), None)
    event = wait_until(delivered)
    assert event, "no invoice_payment.paid for %s" % invoice_id
    verify_signature(next(d for d in receiver.deliveries if d["event"] is event))
    return event


def assert_items(sub, prices, products):
    """The subscription's items, in order, each in the current shape."""
    items = sub["items"]["data"]
    assert [i["price"]["id"] for i in items] == [p["id"] for p in prices]
    for item, price, product in zip(items, prices, products):
        assert item["object"] == "subscription_item" and item["id"].startswith("si_")
        assert item["price"]["product"] == product["id"]
        assert item["price"]["metadata"] == price["metadata"]
        assert item["price"]["recurring"]["interval"] == "month"
        assert item["subscription"] == sub["id"]
        assert (item["current_period_start"], item["current_period_end"]) \
            == (sub["current_period_start"], sub["current_period_end"])
    assert_shape(sub, "Subscription")


def test_a_subscription_should_hold_an_add_on_first_and_the_pro_price_second(
        api, catalog, addon, receiver):
    customer = customer_with_card(api, "two-items@example.com")
    prices = [addon["monthly"], catalog["monthly"]]
    products = [addon["product"], catalog["product"]]
    sub = api.ok("POST", "/v1/subscriptions", {
        "customer": customer["id"], "items[0][price]": addon["monthly"]["id"],
        "items[1][price]": catalog["monthly"]["id"], "metadata[cognito_sub]": "s-two"})
    assert sub["status"] == "active" and sub["metadata"] == {"cognito_sub": "s-two"}
    assert_items(sub, prices, products)
    assert (sub["plan"], sub["quantity"]) == (None, None)  # old API: one item only
    assert api.get("/v1/subscriptions/" + sub["id"]) == sub
    listed = api.get("/v1/subscription_items", subscription=sub["id"])
    assert [i["id"] for i in listed["data"]] == [i["id"] for i in sub["items"]["data"]]
    assert_items(api.get("/v1/subscriptions", customer=customer["id"])["data"][0], prices,
                 products)
    created = receiver.find("customer.subscription.created", sub["id"])[0]["event"]
    assert_items(created["data"]["object"], prices, products)
    assert_shape(created, "Event")

    # the first invoice charges both items
    invoice = api.get("/v1/invoices/" + sub["latest_invoice"])
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", 1800)
    # ... and its payment intent is linked by an invoice_payment, no longer by pi.invoice
    payment = invoice_payment_event(receiver, invoice["id"])
    inpay = payment["data"]["object"]
    assert inpay["id"].startswith("inpay_") and inpay["object"] == "invoice_payment"
    assert (inpay["amount_paid"], inpay["amount_requested"], inpay["currency"]) \
        == (1800, 1800, "usd")
    assert (inpay["is_default"], inpay["livemode"], inpay["status"]) == (True, False, "paid")
    assert inpay["payment"] == {"type": "payment_intent",
                                "payment_intent": invoice["payment_intent"]}
    assert inpay["status_transitions"]["canceled_at"] is None
    assert inpay["status_transitions"]["paid_at"] >= inpay["created"] > 0
    assert_shape(payment, "Event")
    assert_shape(inpay, "InvoicePayment")
    pi = api.get("/v1/payment_intents/" + invoice["payment_intent"])
    assert pi["amount"] == 1800 and "invoice" not in pi
    assert_shape(pi, "PaymentIntent")
    relayed = receiver.find("payment_intent.succeeded", pi["id"])[0]["event"]
    assert "invoice" not in relayed["data"]["object"]
    assert api.get("/v1/invoice_payments", invoice=invoice["id"])["data"] == [inpay]
    assert api.get("/v1/invoice_payments/" + inpay["id"]) == inpay

    # a renewal bills both items too
    reply = api.ok("POST", "/_test/subscriptions/%s/renew" % sub["id"], {})
    renewal = delivered_in_order(receiver, reply["events"])
    lines = renewal[0]["data"]["object"]["lines"]["data"]
    assert [li["price"]["id"] for li in lines] == [p["id"] for p in prices]
    assert renewal[0]["data"]["object"]["amount_paid"] == 1800
    assert_items(renewal[-1]["data"]["object"], prices, products)

    # several items are refused where localstripe would replace its one item
    status, body, _ = api.call("POST", "/v1/subscriptions/" + sub["id"],
                               {"items[0][price]": catalog["monthly"]["id"]})
    assert status == 400 and body["error"]["param"] == "items"
    canceled = api.ok("DELETE", "/v1/subscriptions/" + sub["id"])
    assert_items(canceled, prices, products)
    deleted = receiver.find("customer.subscription.deleted", sub["id"])[0]["event"]
    assert_items(deleted["data"]["object"], prices, products)


def test_subscription_items_should_be_added_and_removed_with_updated_events(
        api, catalog, addon, receiver):
    customer = customer_with_card(api, "add-item@example.com")
    sub = api.ok("POST", "/v1/subscriptions", {
        "customer": customer["id"], "items[0][price]": addon["monthly"]["id"]})
    item = api.ok("POST", "/v1/subscription_items", {
        "subscription": sub["id"], "price": catalog["monthly"]["id"], "quantity": 2,
        "metadata[role]": "plan"})
    assert item["object"] == "subscription_item" and item["quantity"] == 2
    assert item["price"]["id"] == catalog["monthly"]["id"] and item["metadata"] == {"role": "plan"}
    assert_shape(item, "SubscriptionItem")
    assert api.get("/v1/subscription_items/" + item["id"]) == item
    got = api.get("/v1/subscriptions/" + sub["id"])
    assert_items(got, [addon["monthly"], catalog["monthly"]],
                 [addon["product"], catalog["product"]])
    updated = receiver.find("customer.subscription.updated", sub["id"])[0]["event"]
    assert updated["data"]["object"]["items"] == got["items"]
    assert [i["price"]["id"] for i in updated["data"]["previous_attributes"]["items"]["data"]] \
        == [addon["monthly"]["id"]]

    for data, param in (({"price": catalog["monthly"]["id"]}, "price"),  # already there
                        ({"price": addon["yearly"]["id"]}, "price"),  # another interval
                        ({"price": "price_missing"}, "price"),
                        ({"price": catalog["one_time"]["id"]}, "price"),
                        ({"price": catalog["monthly"]["id"], "subscription": "sub_missing"},
                         "subscription")):
        status, body, _ = api.call("POST", "/v1/subscription_items",
                                   dict({"subscription": sub["id"]}, **data))
        assert (status, body["error"]["param"]) == (400, param), body
    status, body, _ = api.call("POST", "/v1/subscriptions", {
        "customer": customer["id"], "items[0][price]": addon["monthly"]["id"],
        "items[1][price]": addon["yearly"]["id"]})
    assert (status, body["error"]["param"]) == (400, "items[1][price]")

    gone = api.ok("DELETE", "/v1/subscription_items/" + item["id"])
    assert gone == {"id": item["id"], "object": "subscription_item", "deleted": True}
    assert [i["price"]["id"] for i in api.get("/v1/subscriptions/" + sub["id"])
            ["items"]["data"]] == [addon["monthly"]["id"]]
    receiver.find("customer.subscription.updated", sub["id"], count=2)


def test_a_subscription_checkout_should_take_two_recurring_line_items(
        api, catalog, addon, receiver):
    customer = new_customer(api, "two-lines@example.com")
    session = subscription_session(api, catalog, customer, **{
        "line_items[0][price]": addon["monthly"]["id"],
        "line_items[1][price]": catalog["monthly"]["id"], "line_items[1][quantity]": 1})
    assert session["amount_total"] == 1800
    done = api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    assert done["payment_status"] == "paid"
    sub = api.get("/v1/subscriptions/" + done["subscription"])
    assert_items(sub, [addon["monthly"], catalog["monthly"]],
                 [addon["product"], catalog["product"]])
    assert api.get("/v1/invoices/" + sub["latest_invoice"])["amount_paid"] == 1800
    created = receiver.find("customer.subscription.created", sub["id"])[0]["event"]
    assert len(created["data"]["object"]["items"]["data"]) == 2


# -- promotion codes -----------------------------------------------------------------------

def payment_session(api, catalog, **extra):
    return api.call("POST", "/v1/checkout/sessions", dict({
        "mode": "payment", "line_items[0][price]": catalog["one_time"]["id"],
        "line_items[0][quantity]": 1, "success_url": "http://127.0.0.1:9/ok"}, **extra))


def test_an_unknown_promotion_code_at_checkout_should_be_a_stripe_400(api, catalog):
    status, body, _ = payment_session(api, catalog,
                                      **{"discounts[0][promotion_code]": "promo_unknown"})
    assert status == 400
    assert body == {"error": {"type": "invalid_request_error", "code": "resource_missing",
                              "param": "discounts[0][promotion_code]",
                              "message": "No such promotion code: 'promo_unknown'"}}
    status, body, _ = payment_session(api, catalog, **{"discounts[0][coupon]": "NOPE"})
    assert (status, body["error"]["code"], body["error"]["param"]) \
        == (400, "resource_missing", "discounts[0][coupon]")


def test_promotion_codes_should_be_created_listed_and_accepted_at_checkout(
        api, catalog, receiver):
    coupon = api.ok("POST", "/v1/coupons", {"percent_off": 20, "duration": "once",
                                            "name": "Launch"})
    assert coupon["object"] == "coupon" and len(coupon["id"]) == 8
    assert api.get("/v1/coupons/" + coupon["id"])["name"] == "Launch"
    assert_shape(coupon, "Coupon")
    promo = api.ok("POST", "/v1/promotion_codes", {
        "promotion[type]": "coupon", "promotion[coupon]": coupon["id"], "code": "LAUNCH20",
        "metadata[campaign]": "launch"})
    assert promo["id"].startswith("promo_") and promo["object"] == "promotion_code"
    assert (promo["code"], promo["active"], promo["times_redeemed"]) == ("LAUNCH20", True, 0)
    assert promo["promotion"] == {"type": "coupon", "coupon": coupon["id"]}
    assert_shape(promo, "PromotionCode")
    receiver.find("promotion_code.created", promo["id"])
    status, body, _ = api.call("POST", "/v1/promotion_codes",
                               {"coupon": coupon["id"], "code": "launch20"})
    assert (status, body["error"]["param"]) == (400, "code")
    legacy = api.ok("POST", "/v1/promotion_codes", {"coupon": coupon["id"], "code": "OTHER"})
    assert legacy["promotion"]["coupon"] == coupon["id"]
    status, body, _ = api.call("POST", "/v1/promotion_codes", {"coupon": "NOPE"})
    assert (status, body["error"]["code"]) == (400, "resource_missing")

    found = api.get("/v1/promotion_codes", code="launch20")
    assert [p["id"] for p in found["data"]] == [promo["id"]]
    assert_shape(found, "List<PromotionCode>")
    expanded = api.get("/v1/promotion_codes/" + promo["id"],
                       **{"expand[]": "promotion.coupon"})
    assert expanded["promotion"]["coupon"]["percent_off"] == 20

    status, session, _ = payment_session(api, catalog, customer_email="promo@example.com",
                                         **{"discounts[0][promotion_code]": promo["id"]})
    assert status == 200, session
    assert session["discounts"] == [{"coupon": None, "promotion_code": promo["id"]}]
    assert_shape(session, "CheckoutSession")
    api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    assert api.get("/v1/promotion_codes/" + promo["id"])["times_redeemed"] == 1

    off = api.ok("POST", "/v1/promotion_codes/" + promo["id"], {"active": "false"})
    assert off["active"] is False
    status, body, _ = payment_session(api, catalog,
                                      **{"discounts[0][promotion_code]": promo["id"]})
    assert (status, body["error"]["param"]) == (400, "discounts[0][promotion_code]")
    status, session, _ = payment_session(api, catalog, **{"discounts[0][coupon]": coupon["id"]})
    assert status == 200 and session["discounts"] == [{"coupon": coupon["id"],
                                                       "promotion_code": None}]


# -- guest checkout ------------------------------------------------------------------------

def completed_event(receiver, session_id):
    event = receiver.find("checkout.session.completed", session_id)[0]["event"]
    assert_shape(event, "Event")
    return event["data"]["object"]


def test_a_guest_payment_checkout_should_complete_without_a_customer(api, catalog, receiver):
    # customer_creation absent (Stripe's default in payment mode: if_required)
    status, session, _ = payment_session(api, catalog, customer_email="guest@example.com")
    assert status == 200 and session["customer_creation"] == "if_required"
    done = api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    assert (done["status"], done["payment_status"], done["customer"]) \
        == ("complete", "paid", None)
    completed = completed_event(receiver, session["id"])
    assert completed["customer"] is None
    assert completed["customer_details"]["email"] == "guest@example.com"
    pi = api.get("/v1/payment_intents/" + completed["payment_intent"])
    assert pi["status"] == "succeeded" and pi["customer"] is None

    # no customer_email: the e-mail given when paying (test route form `email`)
    status, session, _ = payment_session(api, catalog, customer_creation="if_required")
    assert status == 200
    api.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"],
           {"email": "walk-in@example.com"})
    completed = completed_event(receiver, session["id"])
    assert completed["customer"] is None
    assert completed["customer_details"]["email"] == "walk-in@example.com"

    # ... or on the pay page
    status, session, _ = payment_session(api, catalog)
    page = urllib.request.urlopen(session["url"], timeout=10).read().decode()
    assert 'name=email' in page
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(api.base).netloc, timeout=10)
    conn.request("POST", "/checkout/pay/" + session["id"],
                 urllib.parse.urlencode({"action": "pay", "email": "page@example.com"}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    assert response.status == 303 and response.getheader("Location") == "http://127.0.0.1:9/ok"
    conn.close()
    completed = completed_event(receiver, session["id"])
    assert completed["customer"] is None
    assert completed["customer_details"]["email"] == "page@example.com"
