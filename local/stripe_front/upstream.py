"""HTTP client for localstripe: the only way the front talks to it."""
import json

import aiohttp

import forms
from errors import StripeError

INTERNAL_KEY = "sk_test_stripe_front_internal"
# Added to localstripe by run_localstripe.py (/_config/: localstripe asks no API key there).
OUTSTANDING_WEBHOOKS_PATH = "/_config/webhooks_outstanding"


def localstripe_error(status, body, kind=None, id=None, param=None):
    """localstripe's errors -> Stripe's: 404 gains code resource_missing (400 when a param)."""
    err = (body or {}).get("error") or {}
    message = err.get("message") or "localstripe error %d" % status
    if status == 404:
        if kind and id:
            message = "No such %s: '%s'" % (kind, id)
        return StripeError(400 if param else 404, message, code="resource_missing", param=param)
    extra = {k: v for k, v in err.items() if k not in ("type", "message", "code", "param")}
    return StripeError(status, message, type=err.get("type"), code=err.get("code"),
                       param=err.get("param") or param, **extra)


class Upstream:
    def __init__(self, base_url):
        self.base = base_url.rstrip("/")
        self._session = None

    async def session(self):
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self):
        if self._session is not None:
            await self._session.close()

    async def raw(self, method, path_qs, headers, body):
        """Verbatim proxying: returns (status, content_type, body bytes)."""
        s = await self.session()
        async with s.request(method, self.base + path_qs, headers=headers,
                             data=body if body else None) as r:
            return r.status, r.headers.get("Content-Type", "application/json"), await r.read()

    async def call(self, method, path, data=None, query=None, key=None,
                   kind=None, id=None, param=None):
        """JSON call with Stripe-shaped errors; `kind`/`id`/`param` shape a 404."""
        s = await self.session()
        headers = {"Authorization": "Bearer " + (key or INTERNAL_KEY)}
        body = None
        if data is not None:
            body = forms.encode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = self.base + path
        if query:
            url += "?" + forms.encode(query)
        async with s.request(method, url, headers=headers, data=body) as r:
            text = await r.text()
            try:
                payload = json.loads(text) if text else {}
            except ValueError:
                payload = {"error": {"message": text[:200]}}
            if r.status >= 300:
                raise localstripe_error(r.status, payload, kind, id, param)
            return payload

    async def outstanding_webhooks(self):
        """How many of localstripe's events are scheduled and not yet posted to the front."""
        return (await self.call("GET", OUTSTANDING_WEBHOOKS_PATH))["outstanding"]

    async def list_all(self, path, key=None, query=None):
        """Every item of a localstripe list, paginated with starting_after."""
        items, after = [], None
        while True:
            q = dict(query or {}, limit=100)
            if after:
                q["starting_after"] = after
            page = await self.call("GET", path, query=q, key=key)
            items += page.get("data", [])
            if not page.get("has_more") or not page.get("data"):
                return items
            after = page["data"][-1]["id"]
