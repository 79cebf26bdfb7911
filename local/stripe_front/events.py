"""Stripe's event API over the events the front recorded (webhooks.py): `GET /v1/events` and
`GET /v1/events/{id}`, for a reconciler that lists events to repair missed deliveries.

Newest first as on Stripe: by `created`, ties in reverse emit order (so the order is stable
while events are added, and a cursor keeps its place). A cursor is any recorded event, whether
or not it matches the filters; filters apply to what lies past it.
"""
import re

import forms
from errors import StripeError, json_response, no_such

_KNOWN = {"created", "delivery_success", "ending_before", "expand", "limit", "starting_after",
          "type", "types"}
_RANGE = ("gt", "gte", "lt", "lte")
_COMPARE = {"gt": lambda c, v: c > v, "gte": lambda c, v: c >= v,
            "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v}
MAX_TYPES = 20


def newest_first(events):
    """Events (oldest emitted first) by `created` descending, ties newest emitted first."""
    order = sorted(range(len(events)), key=lambda i: (events[i]["created"], i), reverse=True)
    return [events[i] for i in order]


def _created_filter(value):
    """`created=<int>` or `created[gt|gte|lt|lte]=<int>` -> a predicate on `created`."""
    if value is None:
        return lambda c: True
    if isinstance(value, str):
        exact = forms.as_int(value, "created")
        return lambda c: c == exact
    if not isinstance(value, dict):
        _invalid_integer(value, "created")
    bounds = []
    for key, raw in value.items():
        param = "created[%s]" % key
        if key not in _RANGE:
            raise StripeError(400, "Received unknown parameter: %s" % param, param=param)
        if not isinstance(raw, str):
            _invalid_integer(raw, param)
        bounds.append((_COMPARE[key], forms.as_int(raw, param)))
    return lambda c: all(op(c, v) for op, v in bounds)


def _invalid_integer(value, param):
    raise StripeError(400, "Invalid integer: %s" % (value,), param=param)


def _type_filter(p):
    """`type` (exact, `*` matches anything) or `types[]` (up to 20 exact names), not both."""
    one, many = p.get("type"), p.get("types")
    if one is not None and many is not None:
        raise StripeError(400, "You may only specify one of these parameters: type, types.")
    if many is not None:
        names = forms.as_list(many, "types")
        if not all(isinstance(n, str) for n in names):
            raise StripeError(400, "Invalid array", param="types")
        if len(names) > MAX_TYPES:
            raise StripeError(400, "You may pass at most %d types, but passed %d."
                              % (MAX_TYPES, len(names)), param="types")
        wanted = set(names)
        return lambda t: t in wanted
    if one is not None:
        forms.as_str(one, "type")
        pattern = re.compile("^%s$" % ".*".join(re.escape(part) for part in one.split("*")))
        return lambda t: pattern.match(t) is not None
    return lambda t: True


def _delivery_filter(p):
    """`delivery_success=true`: delivered to every endpoint; `false`: some still pending
    (waiting, retrying, given up, or never sent while delivery was switched off)."""
    wanted = forms.as_bool(p.get("delivery_success"), "delivery_success")
    if wanted is None:
        return lambda e: True
    return lambda e: (e["pending_webhooks"] == 0) == wanted


def _cursor(p, name, ids):
    value = p.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in ids:
        raise StripeError(400, "No such event: '%s'" % (value,), code="resource_missing",
                          param=name)
    return ids[value]


async def list_events(request):
    front = request.app["front"]
    p = forms.parse_query(request.query)
    for key in p:
        if key not in _KNOWN:
            raise StripeError(400, "Received unknown parameter: %s" % key, param=key)
    limit = forms.as_int(p.get("limit"), "limit", minimum=1)
    if limit is None:
        limit = 10
    if limit > 100:
        raise StripeError(400, "This value must be less than or equal to 100.", param="limit")
    created_ok, type_ok, delivery_ok = _created_filter(p.get("created")), _type_filter(p), \
        _delivery_filter(p)
    forms.as_list(p.get("expand"), "expand")  # accepted; nothing in an event expands

    events = newest_first(front.webhooks.events)
    ids = {e["id"]: i for i, e in enumerate(events)}
    after, before = _cursor(p, "starting_after", ids), _cursor(p, "ending_before", ids)
    if after is not None and before is not None:
        raise StripeError(400, "Received both starting_after and ending_before parameters. "
                          "Please pass in only one.")
    if after is not None:
        events = events[after + 1:]
    elif before is not None:
        events = events[:before]
    matching = [e for e in events
                if created_ok(e["created"]) and type_ok(e["type"]) and delivery_ok(e)]
    page = matching[-limit:] if before is not None else matching[:limit]
    return json_response({"object": "list", "data": page,
                          "has_more": len(matching) > len(page), "url": "/v1/events"})


async def retrieve_event(request):
    event_id = request.match_info["id"]
    event = next((e for e in request.app["front"].webhooks.events if e["id"] == event_id), None)
    if event is None:
        raise no_such("event", event_id)
    return json_response(event)


def setup(app):
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/v1/events/{id}", retrieve_event)
