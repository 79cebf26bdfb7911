"""Webhook endpoints, Stripe-signed event delivery with bounded retries, and the event log.

localstripe's own events are relayed: localstripe posts them to the front (signed with a
per-process secret), the front patches their objects to the current shape and delivers them
like its own events, so every endpoint sees one consistent, current-shaped stream.

Per subscription the front remembers the latest `created` of the events about it (the clock);
`next_created` gives a later one, so an event the front makes up (renewals.py) is always newer
than everything already sent about that subscription. Events emitted with a `chain` key are
delivered to each endpoint one after the other, in emit order (each waits until the previous
one was accepted or given up).

Delivery can be switched off (`POST /_test/webhooks/delivery enabled=false`): events are still
recorded (and listed by /v1/events), but none is ever delivered, not even once delivery is
back on: lost deliveries, for testing a reconciler (resend still sends them). Switching off
also drops every delivery not yet attempted: retries waiting for their turn and events waiting
for an earlier one of their chain (a POST already under way finishes). Each event's
`pending_webhooks` counts the endpoints that have not accepted it yet, as on Stripe.

`GET /_test/webhooks/settled` says whether nothing more is on its way: no delivery under way
or waiting for a retry, no localstripe event not yet relayed, and no event emitted while it
looked; tests wait on it instead of sleeping.
"""
import asyncio
import hashlib
import hmac
import json
import logging

import aiohttp
from aiohttp import web

import forms
import invoice_payments
from common import new_id, now
from errors import StripeError, json_response

log = logging.getLogger("stripe_front.webhooks")

API_VERSION = "2026-09-30.endive"  # async-stripe 1.0.0-rc.10's stripe_shared::VERSION
RETRY_DELAYS = (0.5, 1, 2, 4)  # 5 attempts over ~7.5 s
RELAY_PATH = "/_internal/localstripe_events"
MAX_EVENTS = 20000  # ~50 subscriptions with renewals make thousands


def sign(secret, payload: bytes, timestamp):
    mac = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256)
    return "t=%d,v1=%s" % (timestamp, mac.hexdigest())


def verify(secret, payload: bytes, header, tolerance=300):
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    try:
        t = int(dict(parts).get("t", ""))
    except ValueError:
        return False
    expected = sign(secret, payload, t).split("v1=", 1)[1]
    ok = any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)
    return ok and abs(now() - t) <= tolerance


class Webhooks:
    def __init__(self):
        self.endpoints = {}  # id -> {"url", "secret", "events"}
        self.events = []  # sent events, oldest first
        self.relay_secret = new_id("whsec_relay_")
        self.clock = {}  # subscription id -> latest `created` about it (kept across reset)
        self.delivery_enabled = True
        self._epoch = 0  # bumped by each switch-off: older deliveries are dropped
        self._pending = {}  # event id -> (event, ids of endpoints that have not accepted it)
        self._tasks = set()
        self.emitted = 0  # events emitted since start: a settled check sees none were added
        self._chains = {}  # (endpoint id, chain key) -> the chain's latest delivery task
        self._http = None

    def reset(self, endpoints=False):
        self.events.clear()
        self._pending.clear()
        self.set_delivery(True)
        if endpoints:
            self.endpoints.clear()

    async def close(self):
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()

    def set_delivery(self, enabled):
        if self.delivery_enabled and not enabled:
            self._epoch += 1
        if self.delivery_enabled != enabled:
            log.info("webhook delivery %s", "on" if enabled else "off (events are recorded only)")
        self.delivery_enabled = enabled

    def _accepted(self, event_id, endpoint_id):
        event, pending = self._pending.get(event_id, (None, ()))
        if endpoint_id in pending:
            pending.discard(endpoint_id)
            event["pending_webhooks"] = len(pending)

    def note(self, subscription_id, created):
        """Something about the subscription happened (or was sent) at `created`."""
        if subscription_id:
            self.clock[subscription_id] = max(self.clock.get(subscription_id, 0), created)

    def next_created(self, subscription_id):
        """A `created` strictly after every event sent about the subscription: max(now, last+1)."""
        return max(now(), self.clock.get(subscription_id, -1) + 1)

    def emit(self, type, obj, previous_attributes=None, event_id=None, created=None,
             chain=None, about=None):
        """Record an event and deliver it in the background to every matching endpoint
        (after the previous event of the same `chain`, if given, for each endpoint). `about`:
        the subscription it is about, when its object does not say (subscription_of)."""
        self.emitted += 1
        event = {"id": event_id or new_id("evt_"), "object": "event", "account": None,
                 "api_version": API_VERSION, "context": None, "created": created or now(),
                 "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": type}
        if previous_attributes is not None:
            event["data"]["previous_attributes"] = previous_attributes
        self.note(about or subscription_of(obj), event["created"])
        self.events.append(event)
        for dropped in self.events[:-MAX_EVENTS]:
            self._pending.pop(dropped["id"], None)
        del self.events[:-MAX_EVENTS]
        targets = self._targets(type)
        event["pending_webhooks"] = len(targets)
        self._pending[event["id"]] = (event, {endpoint_id for endpoint_id, _ in targets})
        if not self.delivery_enabled:
            if targets:
                log.info("webhook %s %s: delivery off, not sent to %s", type, event["id"],
                         ",".join(endpoint_id for endpoint_id, _ in targets))
            return event
        payload = json.dumps(event, indent=2, sort_keys=True).encode()
        for endpoint_id, ep in targets:
            key = (endpoint_id, chain)
            after = self._chains.get(key) if chain else None
            task = asyncio.ensure_future(self._deliver(endpoint_id, ep, type, event["id"],
                                                       payload, after, self._epoch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if chain:
                self._chains[key] = task
                task.add_done_callback(
                    lambda t, k=key: self._chains.pop(k) if self._chains.get(k) is t else None)
        return event

    def activity(self):
        """(events emitted, deliveries under way or waiting to retry)."""
        return self.emitted, len(self._tasks)

    def _targets(self, type):
        return [(i, ep) for i, ep in self.endpoints.items()
                if ep["events"] is None or type in ep["events"] or "*" in ep["events"]]

    async def _post(self, ep, payload, timestamp):
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                   "Stripe-Signature": sign(ep["secret"], payload, timestamp)}
        try:
            async with self._http.post(ep["url"], data=payload, headers=headers) as r:
                await r.read()
                return r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            return type(e).__name__

    async def _deliver(self, endpoint_id, ep, type, event_id, payload, after=None, epoch=0):
        if after is not None and not after.done():
            await asyncio.wait([after])
        for attempt in range(len(RETRY_DELAYS) + 1):
            if not self.delivery_enabled or epoch != self._epoch:
                log.warning("webhook %s %s -> %s: dropped, delivery was switched off "
                            "(attempt %d not made)", type, event_id, endpoint_id, attempt + 1)
                return
            status = await self._post(ep, payload, now())
            if isinstance(status, int) and 200 <= status < 300:
                log.info("webhook %s %s -> %s: %s (attempt %d)", type, event_id, endpoint_id,
                         status, attempt + 1)
                self._accepted(event_id, endpoint_id)
                return
            log.warning("webhook %s %s -> %s: %s (attempt %d)", type, event_id, endpoint_id,
                        status, attempt + 1)
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt])
        log.warning("webhook %s %s -> %s: giving up", type, event_id, endpoint_id)

    async def resend(self, event_id, timestamp=None):
        """Deliver a stored event again, once per endpoint, signed now (or at `timestamp`)."""
        event = next((e for e in self.events if e["id"] == event_id), None)
        if event is None:
            raise StripeError(404, "No such event: '%s'" % event_id, code="resource_missing")
        payload = json.dumps(event, indent=2, sort_keys=True).encode()
        results = []
        for endpoint_id, ep in self._targets(event["type"]):
            status = await self._post(ep, payload, timestamp or now())
            log.info("webhook resend %s %s -> %s: %s", event["type"], event_id, endpoint_id,
                     status)
            if isinstance(status, int) and 200 <= status < 300:
                self._accepted(event_id, endpoint_id)
            results.append({"endpoint": endpoint_id, "status": status})
        return {"id": event_id, "object": "event_delivery", "deliveries": results}


def subscription_of(obj):
    """The id of the subscription an event's object is about (itself, or its `subscription`
    or `parent.subscription_details.subscription`), else None."""
    if not isinstance(obj, dict):
        return None
    if obj.get("object") == "subscription":
        return obj.get("id")
    ref = obj.get("subscription")
    parent = obj.get("parent")
    if ref is None and isinstance(parent, dict):
        ref = (parent.get("subscription_details") or {}).get("subscription")
    if isinstance(ref, dict):
        ref = ref.get("id")
    return ref if isinstance(ref, str) else None


# -- routes --------------------------------------------------------------------------------

async def config_webhook(request):
    """Same API as localstripe's /_config/webhooks/{id}: form url, secret, optional events[]."""
    front = request.app["front"]
    p = forms.parse_body(await request.read())
    url, secret = p.get("url"), p.get("secret")
    if not isinstance(url, str) or not url.startswith("http://127.0.0.1:") \
            or not isinstance(secret, str) or not secret:
        raise StripeError(400, "url (http://127.0.0.1:...) and secret are required",
                          param="url")
    events = p.get("events")
    if events is not None:
        events = forms.as_list(events, "events")
    front.webhooks.endpoints[request.match_info["id"]] = {"url": url, "secret": secret,
                                                          "events": events}
    log.info("webhook endpoint %s -> %s (%s)", request.match_info["id"], url,
             ",".join(events) if events else "all events")
    await front.register_relay()
    return web.Response()


async def relay(request):
    """localstripe's events: verify, patch to the current shape, re-sign and deliver."""
    front = request.app["front"]
    body = await request.read()
    if not verify(front.webhooks.relay_secret, body,
                  request.headers.get("Stripe-Signature", "")):
        raise StripeError(400, "bad signature")
    event = json.loads(body)
    obj = front.patch(event["data"]["object"])
    front.webhooks.emit(event["type"], obj, event_id=event["id"], created=event["created"])
    if event["type"] == "invoice.payment_succeeded":  # Stripe sends both; localstripe one
        front.webhooks.emit("invoice.paid", obj, created=event["created"])
        # ... and, since API 2025-03-31.basil, invoice_payment.paid (the payment intent's link)
        invoice_payments.emit_paid(front, obj, created=event["created"])
    return web.Response()


async def list_events(request):
    front = request.app["front"]
    events = list(reversed(front.webhooks.events))
    if request.query.get("type"):
        events = [e for e in events if e["type"] == request.query["type"]]
    return json_response({"object": "list", "data": events, "has_more": False,
                          "url": "/_test/events"})


async def delivery(request):
    """GET: whether events are delivered; POST `enabled=true|false` (form or query) sets it."""
    hooks = request.app["front"].webhooks
    if request.method == "POST":
        p = forms.parse_body(await request.read())
        p.update(forms.parse_query(request.query))
        hooks.set_delivery(forms.as_bool(forms.require(p, "enabled"), "enabled"))
    return json_response({"enabled": hooks.delivery_enabled})


async def settled(request):
    """Whether every event made so far has been delivered (or given up) and nothing more is
    on its way. Read in this order: the front's activity, localstripe's unsent events, the
    front's activity again. Whatever a delivery under way makes at localstripe is scheduled
    before that delivery ends (the function answers after its calls); a localstripe event sent
    is emitted here before localstripe counts it sent. So an idle front, then nothing unsent
    at localstripe, then the same idle front means nothing is left anywhere."""
    front = request.app["front"]
    hooks = front.webhooks
    before = hooks.activity()
    outstanding = await front.upstream.outstanding_webhooks()
    after = hooks.activity()
    done = before == after and before[1] == 0 and outstanding == 0
    return json_response({"settled": done, "emitted": after[0], "deliveries": after[1],
                          "localstripe_outstanding": outstanding})


async def resend_event(request):
    front = request.app["front"]
    ts = request.query.get("timestamp")
    if ts is None:
        ts = forms.parse_body(await request.read()).get("timestamp")
    result = await front.webhooks.resend(request.match_info["id"],
                                         forms.as_int(ts, "timestamp"))
    return json_response(result)


def setup(app):
    app.router.add_post("/_config/webhooks/{id}", config_webhook)
    app.router.add_post(RELAY_PATH, relay)
    app.router.add_get("/_test/events", list_events)
    app.router.add_post("/_test/events/{id}/resend", resend_event)
    app.router.add_get("/_test/webhooks/settled", settled)
    app.router.add_get("/_test/webhooks/delivery", delivery)
    app.router.add_post("/_test/webhooks/delivery", delivery)
