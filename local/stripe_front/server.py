"""The local Stripe API front: what localstripe lacks, in front of it, over HTTP only.

    server.py --port 12111 --localstripe-url http://127.0.0.1:8420

Routes it handles itself are registered by the modules below; every other request is proxied
verbatim to localstripe and its JSON patched to the current API shape (see README.md).
"""
import argparse
import asyncio
import copy
import json
import logging
import re
import sys
import time
from urllib.parse import urlencode

from aiohttp import web

import checkout
import events
import forms
import idempotency
import invoice_payments
import meters
import pages
import portal
import prices
import promotions
import renewals
import search
import shapes
import subscription_items
import webhooks
from common import api_key, now, paginate, params
from errors import StripeError, json_response
from upstream import Upstream

log = logging.getLogger("stripe_front")
RELAY_ID = "stripe_front_relay"
LOCAL = "http://127.0.0.1:"
_FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "Stripe-Version")
_SUBSCRIPTION_STATUSES = {"active", "all", "canceled", "ended", "incomplete",
                          "incomplete_expired", "past_due", "paused", "trialing", "unpaid"}


class Front:
    """The front's state: everything here is in memory and cleared by POST /_test/reset."""

    def __init__(self, port, localstripe_url):
        self.base_url = "http://127.0.0.1:%d" % port
        self.upstream = Upstream(localstripe_url)
        self.prices = prices.Prices()
        self.sessions = {}
        self.portal_sessions = {}
        self.webhooks = webhooks.Webhooks()
        self.idempotency = idempotency.Idempotency()
        self.renewals = renewals.Renewals()
        self.items = subscription_items.Items()
        self.promotions = promotions.Promotions()
        self.invoice_payments = invoice_payments.InvoicePayments()
        self.meters = meters.Meters()
        self._locks = {}

    def reset(self, endpoints=False):
        self.prices.reset()
        self.sessions.clear()
        self.portal_sessions.clear()
        self.webhooks.reset(endpoints)
        self.idempotency.reset()
        self.renewals.reset()
        self.items.reset()
        self.promotions.reset()
        self.invoice_payments.reset()
        self.meters.reset()

    def lock(self, name):
        return self._locks.setdefault(name, asyncio.Lock())

    def patch(self, value):
        """localstripe's JSON in the current shape: the front's extra subscription items
        first (so they get patched too), then the shapes, coupons' extra fields, renewals."""
        value = shapes.patch(self.items.apply(value), self.prices.price_for_plan)
        return self.renewals.apply(self.promotions.apply(value))

    async def product(self, product_id, param=None):
        return self.patch(await self.upstream.call("GET", "/v1/products/" + product_id,
                                                   kind="product", id=product_id, param=param))

    async def register_relay(self, quiet=False):
        """Have localstripe post its events to the front (see webhooks.py). Done at startup,
        and again by every health check and webhook config (localstripe may have restarted)."""
        try:
            await self.upstream.call("POST", "/_config/webhooks/" + RELAY_ID, {
                "url": self.base_url + webhooks.RELAY_PATH,
                "secret": self.webhooks.relay_secret})
            return True
        except Exception as e:
            if not quiet:
                log.warning("cannot register the event relay in localstripe: %s", e)
            return False


# -- middlewares ---------------------------------------------------------------------------

@web.middleware
async def errors_middleware(request, handler):
    try:
        return await handler(request)
    except StripeError as e:
        # The emulator's own error text helps whoever reads the log; it holds no secret.
        log.info("%s %s -> %s", request.method, request.path, e)
        return e.response()
    except web.HTTPException:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return StripeError(500, "An unexpected error occurred in the local Stripe front.",
                           type="api_error").response()


@web.middleware
async def log_middleware(request, handler):
    if request.path.startswith("/v1/"):
        calls = request.app["calls"]
        caller = request.headers.get("User-Agent", "").split("/", 1)[0] or "unknown"
        key = "%s %s" % (caller, request.method)
        calls[key] = calls.get(key, 0) + 1
    start = time.monotonic()
    response = await handler(request)
    if request.path != webhooks.RELAY_PATH:
        log.info("%s %s %s %.0fms%s", request.method, request.path, response.status,
                 (time.monotonic() - start) * 1000,
                 " (replayed)" if response.headers.get("Idempotent-Replayed") else "")
    return response


@web.middleware
async def auth_middleware(request, handler):
    if request.path.startswith("/v1/"):
        key = api_key(request)
        if key is None:
            raise StripeError(401, "You did not provide a valid API key. Use your test secret "
                              "key (sk_test_...) in the Authorization header, using Bearer "
                              "auth (e.g. 'Authorization: Bearer sk_test_...').")
        request["api_key"] = key
    return await handler(request)


# -- proxy and extra routes ----------------------------------------------------------------

def _proxied_body(request, body):
    """localstripe subscriptions know items[i][plan] only: map the current items[i][price]."""
    if request.method == "POST" and request.path.startswith("/v1/subscriptions") and body:
        pairs = forms.parse_qsl_bytes(body)
        renamed = [(k.replace("][price]", "][plan]") if k.startswith("items[") else k, v)
                   for k, v in pairs]
        if renamed != pairs:
            return urlencode(renamed).encode()
    return body


async def proxy(request):
    front = request.app["front"]
    body = _proxied_body(request, await request.read())
    headers = {h: request.headers[h] for h in _FORWARDED_HEADERS if h in request.headers}
    status, content_type, payload = await front.upstream.raw(
        request.method, request.raw_path, headers, body)
    if request.path.startswith("/v1/") and content_type.startswith("application/json"):
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if isinstance(data, dict):
            if status < 300:
                data = front.patch(data)
                if request.method != "GET" and data.get("object") == "subscription" \
                        and request.path.startswith("/v1/subscriptions"):
                    # localstripe may send an event about it, created up to now, a second later
                    front.webhooks.note(data.get("id"), now())
            elif status == 404 and isinstance(data.get("error"), dict):
                data["error"].setdefault("code", "resource_missing")
                m = re.match(r"^/v1/(\w+?)s/([^/]+)$", request.path)
                if m and data["error"].get("message") == "Not Found":
                    data["error"]["message"] = "No such %s: '%s'" % m.groups()
            return json_response(data, status=status)
    if request.path.startswith("/v1/") and status in (404, 405):
        raise StripeError(404, "Unrecognized request URL (%s: %s)." % (request.method,
                                                                       request.path))
    if request.path.startswith("/v1/") and status >= 500:
        raise StripeError(500, "localstripe could not handle %s %s (an unsupported parameter?)."
                          % (request.method, request.path), type="api_error")
    return web.Response(status=status, body=payload, headers={"Content-Type": content_type})


async def delete_customer(request):
    """Stripe cancels a deleted customer's subscriptions (and says so); localstripe does not."""
    front = request.app["front"]
    customer = request.match_info["id"]
    try:
        subs = await front.upstream.list_all("/v1/subscriptions", query={"customer": customer})
    except StripeError:
        subs = []
    for sub in subs:
        await front.upstream.call("DELETE", "/v1/subscriptions/" + sub["id"])
    return await proxy(request)


async def create_subscription(request):
    """Several items: localstripe holds one, the front the others (subscription_items.py)."""
    p = await params(request)
    front = request.app["front"]
    if len(forms.as_list(p.get("items"), "items")) <= 1:
        subscription_items.check_single(front, p)
        return await proxy(request)
    return json_response(await subscription_items.create(front, p, key=request["api_key"]))


async def update_subscription(request):
    front = request.app["front"]
    subscription_items.check_update(front, request.match_info["id"], await params(request))
    return await proxy(request)


async def list_subscriptions(request):
    """A `status` filter applies to the patched statuses (trialing, and the renewals' past_due /
    unpaid), which localstripe does not know: list all, patch, filter, paginate here."""
    status = request.query.get("status")
    if status in (None, "all"):
        return await proxy(request)
    if status not in _SUBSCRIPTION_STATUSES:
        raise StripeError(400, "Invalid status: must be one of %s"
                          % ", ".join(sorted(_SUBSCRIPTION_STATUSES)), param="status")
    wanted = ("canceled", "incomplete_expired") if status == "ended" else (status,)
    front = request.app["front"]
    p = forms.parse_query(request.query)
    query = {k: v for k, v in p.items()
             if k not in ("status", "limit", "starting_after", "ending_before")}
    subs = front.patch(await front.upstream.list_all("/v1/subscriptions",
                                                     query=dict(query, status="all")))
    return json_response(paginate([s for s in subs if s.get("status") in wanted], p,
                                  "/v1/subscriptions"))


async def retrieve_invoice(request):
    """The invoices the renewals made up are the front's; others are localstripe's."""
    invoice = request.app["front"].renewals.invoices.get(request.match_info["id"])
    if invoice is None:
        return await proxy(request)
    return json_response(copy.deepcopy(invoice))


async def health(request):
    front = request.app["front"]
    try:
        await front.upstream.call("GET", "/v1/customers", query={"limit": 1})
    except Exception as e:
        return json_response({"ok": False, "error": {"type": "api_error",
                                                     "message": "localstripe: %s" % e}},
                             status=503)
    await front.register_relay()
    return json_response({"ok": True})


async def calls(request):
    """Stripe API calls received, by the caller's User-Agent product and method (the
    benchmark counts a lifecycle's calls); DELETE clears them."""
    if request.method == "DELETE":
        request.app["calls"].clear()
    return json_response(dict(sorted(request.app["calls"].items())))


async def reset(request):
    """Clears the front's state (webhooks.reset also turns webhook delivery back on)."""
    p = forms.parse_body(await request.read())
    p.update(forms.parse_query(request.query))
    request.app["front"].reset(endpoints=forms.as_bool(p.get("webhooks", "false"), "webhooks"))
    return json_response({"ok": True})


def make_app(port, localstripe_url):
    app = web.Application(middlewares=[log_middleware, errors_middleware, auth_middleware,
                                       idempotency.middleware, errors_middleware])
    front = app["front"] = Front(port, localstripe_url)
    app["calls"] = {}
    for module in (search, prices, checkout, portal, webhooks, events, pages, renewals,
                   promotions, invoice_payments, meters):
        module.setup(app)
    subscription_items.setup(app, proxy)
    app.router.add_delete("/v1/customers/{id}", delete_customer)
    app.router.add_post("/v1/subscriptions", create_subscription)
    app.router.add_post("/v1/subscriptions/{id}", update_subscription)
    app.router.add_get("/v1/subscriptions", list_subscriptions)
    app.router.add_get("/v1/invoices/{id}", retrieve_invoice)
    app.router.add_get("/_test/health", health)
    app.router.add_post("/_test/reset", reset)
    app.router.add_get("/_test/calls", calls)
    app.router.add_delete("/_test/calls", calls)
    app.router.add_route("*", "/{tail:.*}", proxy)

    async def register_when_up():
        for _ in range(120):  # localstripe may start after the front: try for ~60 s
            if await front.register_relay(quiet=True):
                return
            await asyncio.sleep(0.5)

    async def startup(app):
        app["relay_task"] = asyncio.ensure_future(register_when_up())

    async def cleanup(app):
        app["relay_task"].cancel()
        await front.webhooks.close()
        await front.upstream.close()
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


def main():
    parser = argparse.ArgumentParser(description="Local Stripe API front over localstripe.")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--localstripe-url", default="http://127.0.0.1:8420")
    args = parser.parse_args()
    if not args.localstripe_url.startswith(LOCAL):
        parser.error("--localstripe-url must be on 127.0.0.1")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="stripe_front %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    log.info("listening on 127.0.0.1:%d, localstripe at %s", args.port, args.localstripe_url)
    web.run_app(make_app(args.port, args.localstripe_url), host="127.0.0.1", port=args.port,
                access_log=None, print=None)


if __name__ == "__main__":
    main()
