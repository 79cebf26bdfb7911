"""Idempotency-Key replay for every POST (the front's own routes and proxied ones).

Same key (per API key) + same method, path and parameters -> the saved response again with
`Idempotent-Replayed: true`; other parameters -> 400 idempotency_error. An asyncio lock per
key makes concurrent requests with one key run once. Like Stripe, requests that failed
validation or auth (400, 401), conflicted (409) or were rate limited (429) are not saved.
Keys expire after 24 hours.
"""
import asyncio
import collections
import time
from urllib.parse import parse_qsl

from aiohttp import web

from errors import StripeError

TTL = 24 * 3600
_NOT_SAVED = {400, 401, 409, 429}


class Idempotency:
    def __init__(self):
        self.saved = collections.OrderedDict()  # (api key, idem key) -> (time, fingerprint, resp)
        self.locks = {}

    def reset(self):
        self.saved.clear()
        self.locks.clear()

    def _prune(self):
        limit = time.time() - TTL
        while self.saved and next(iter(self.saved.values()))[0] < limit:
            scope, _ = self.saved.popitem(last=False)
            self.locks.pop(scope, None)


def _fingerprint(request, body):
    if request.content_type == "application/x-www-form-urlencoded" or not body:
        params = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    else:
        params = body
    return (request.method, request.path, request.query_string, repr(params))


@web.middleware
async def middleware(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or key is None:
        return await handler(request)
    if not key or len(key) > 255:
        raise StripeError(400, "Idempotency-Key must be 1 to 255 characters.")
    store = request.app["front"].idempotency
    scope = (request.get("api_key") or "", key)
    lock = store.locks.setdefault(scope, asyncio.Lock())
    async with lock:
        fingerprint = _fingerprint(request, await request.read())
        saved = store.saved.get(scope)
        if saved is not None:
            _, first, (status, content_type, body) = saved
            if first != fingerprint:
                raise StripeError(
                    400, "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other than '%s' if "
                    "you meant to execute a different request." % key,
                    type="idempotency_error")
            return web.Response(status=status, body=body, headers={
                "Content-Type": content_type, "Idempotent-Replayed": "true",
                "Idempotency-Key": key})
        response = await handler(request)
        response.headers["Idempotency-Key"] = key
        if response.status not in _NOT_SAVED and isinstance(response, web.Response):
            store._prune()
            content_type = response.headers.get("Content-Type", "application/json")
            store.saved[scope] = (time.time(), fingerprint,
                                  (response.status, content_type, response.body))
        return response
