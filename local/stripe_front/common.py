"""Small helpers shared by the front's handlers."""
import base64
import secrets
import string
import time

import forms
from errors import StripeError

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix, n=24):
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def now():
    return int(time.time())


def api_key(request):
    """The secret key of `Authorization: Bearer sk_test_...` (or Basic), else None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic":
        try:
            value = base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return None
    elif scheme != "Bearer":
        return None
    value = value.strip()
    return value if value.startswith("sk_test_") and len(value) > 8 else None


async def params(request):
    """Request parameters as a nested dict: the query, plus the form body of a POST."""
    data = forms.parse_query(request.query)
    # Not `can_read_body`: once the idempotency layer has read the body it is False, while
    # `read()` still returns the cached bytes.
    if request.method == "POST":
        body = await request.read()
        if body:
            data.update(forms.parse_body(body))
    return data


def expand_of(params):
    return [e for e in forms.as_list(params.pop("expand", None), "expand") if isinstance(e, str)]


def paginate(items, params, url):
    """A Stripe list object over `items` (already newest first), honouring limit/starting_after."""
    limit = forms.as_int(params.get("limit"), "limit", minimum=1) or 10
    if limit > 100:
        raise StripeError(400, "This value must be less than or equal to 100.", param="limit")
    after, before = params.get("starting_after"), params.get("ending_before")
    ids = [i["id"] for i in items]
    if after:
        if after not in ids:
            raise StripeError(400, "No such object: '%s'" % after, code="resource_missing",
                              param="starting_after")
        items = items[ids.index(after) + 1:]
        page = items[:limit]
    elif before:
        if before not in ids:
            raise StripeError(400, "No such object: '%s'" % before, code="resource_missing",
                              param="ending_before")
        items = items[:ids.index(before)]
        page = items[-limit:]
    else:
        page = items[:limit]
    return {"object": "list", "data": page, "has_more": len(items) > len(page), "url": url}
