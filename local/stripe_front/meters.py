"""Billing Meters, meter events and event summaries (kept by the front: localstripe has none).

    POST/GET /v1/billing/meters, GET/POST /v1/billing/meters/{id}
    POST /v1/billing/meters/{id}/deactivate, POST /v1/billing/meters/{id}/reactivate
    POST /v1/billing/meter_events
    GET /v1/billing/meters/{id}/event_summaries?customer=&start_time=&end_time=
                                               [&value_grouping_window=day|hour]
    GET /_test/billing/meter_events[?event_name=&customer=]   the accepted events (no auth)

Shapes from Stripe's OpenAPI spec and fixtures (`billing.meter`, `billing.meter_event`,
`billing.meter_event_summary`). Meter events are billed by renewals.py: a metered price
(`recurring[usage_type]=metered`, `recurring[meter]`, prices.py) bills, at each renewal, the
meter's aggregated value for the customer over the period that just ended (`usage`).

Stripe answers these synchronously (observed): a timestamp more than 35 days in the past or
more than 5 minutes ahead, and an `identifier` already used within 24 hours (400, no code,
"An event already exists with identifier <id>."; the same Idempotency-Key replays the first
answer instead). Stripe reports the other faults of a v1 meter event asynchronously
(`v1.billing.meter.error_report_triggered` / `no_meter_found` thin events, with these codes):
the front refuses them at once, with the same codes, so that a mistake shows in the test.
"""
import copy
import hashlib
import re
import uuid
from urllib.parse import quote

import forms
from common import expand_of, new_id, now, paginate, params
from errors import StripeError, json_response, no_such

FORMULAS = ("count", "last", "sum")
WINDOWS = {"day": 86400, "hour": 3600}
PAST_LIMIT = 35 * 86400  # timestamps up to 35 days back ...
FUTURE_LIMIT = 5 * 60  # ... and up to 5 minutes ahead
IDENTIFIER_TTL = 24 * 3600  # Stripe: unique "within a rolling period of at least 24 hours"
_WHOLE = re.compile(r"^-?[0-9]+$")
_CREATE = {"customer_mapping", "default_aggregation", "display_name", "event_name",
           "event_time_window", "expand", "value_settings"}
_UPDATE = {"display_name", "expand"}
_EVENT = {"event_name", "expand", "identifier", "payload", "timestamp"}
_SUMMARY = {"customer", "end_time", "ending_before", "expand", "limit", "start_time",
            "starting_after", "value_grouping_window"}


class Meters:
    def __init__(self):
        self.by_id = {}  # mtr_... -> billing.meter
        self.events = []  # accepted billing.meter_event, oldest first, with private fields
        self._identifiers = {}  # identifier -> `created` of the event that holds it

    def reset(self):
        self.by_id.clear()
        self.events.clear()
        self._identifiers.clear()

    def get(self, meter_id, param=None):
        meter = self.by_id.get(meter_id) if isinstance(meter_id, str) else None
        if meter is None:
            raise no_such("billing.meter", meter_id, param=param)
        return meter

    def add(self, event):
        """Keep an accepted event, unless its identifier was used within 24 hours (Stripe's
        answer, observed: 400 invalid_request_error without a code)."""
        t = now()
        identifier = event["identifier"]
        if self._identifiers.get(identifier, -IDENTIFIER_TTL) > t - IDENTIFIER_TTL:
            raise StripeError(400, "An event already exists with identifier %s." % identifier)
        self._identifiers[identifier] = t
        event.update(created=t, _seq=len(self.events))
        self.events.append(event)
        return event

    def active_with_event_name(self, event_name, except_id=None):
        return next((m for m in self.by_id.values() if m["status"] == "active"
                     and m["event_name"] == event_name and m["id"] != except_id), None)

    def aggregate(self, meter, customer, start, end):
        """The meter's aggregated value for the customer over [start, end)."""
        events = [e for e in self.events if e["_meter"] == meter["id"]
                  and e["_customer"] == customer and start <= e["timestamp"] < end]
        size = WINDOWS.get(meter["event_time_window"])
        if size:  # pre-aggregated: the latest event received in each window replaces the rest
            latest = {}
            for e in events:
                latest[e["timestamp"] // size] = e
            events = list(latest.values())
        formula = meter["default_aggregation"]["formula"]
        if formula == "count":
            return len(events)
        if not events:
            return 0
        if formula == "last":
            return max(events, key=lambda e: (e["timestamp"], e["_seq"]))["_value"]
        return sum(e["_value"] for e in events)

    def usage(self, price, customer, start, end):
        """Quantity a metered price bills for [start, end): the meter's value, never below 0
        (Stripe bills a negative cycle usage as 0)."""
        meter = self.by_id.get((price.get("recurring") or {}).get("meter"))
        if meter is None:
            return 0
        return max(0, self.aggregate(meter, customer, start, end))


def is_metered(price):
    return bool(price) and (price.get("recurring") or {}).get("usage_type") == "metered"


def public(obj):
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


# -- meters --------------------------------------------------------------------------------

def _settings(raw, param, fields):
    """An optional object parameter with required string fields (max 100 characters)."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise StripeError(400, "Invalid object", param=param)
    forms.reject_unknown(raw, fields)
    out = {}
    for field in fields:
        name = "%s[%s]" % (param, field)
        value = forms.as_str(forms.require(raw, field, name), name)
        if len(value) > 100:
            raise StripeError(400, "Invalid %s: must be at most 100 characters" % name,
                              param=name)
        out[field] = value
    return out


def _check_event_name_free(front, event_name, except_id=None, param="event_name"):
    other = front.meters.active_with_event_name(event_name, except_id)
    if other is not None:
        raise StripeError(400, "An active meter (`%s`) already uses the event name `%s`."
                          % (other["id"], event_name), param=param)


async def create_meter(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    forms.reject_unknown(p, _CREATE)
    aggregation = forms.require(p, "default_aggregation")
    if not isinstance(aggregation, dict):
        raise StripeError(400, "Invalid object", param="default_aggregation")
    formula = forms.as_enum(forms.require(aggregation, "formula",
                                          "default_aggregation[formula]"),
                            "default_aggregation[formula]", FORMULAS)
    display_name = forms.as_str(forms.require(p, "display_name"), "display_name")
    if len(display_name) > 250:
        raise StripeError(400, "Invalid display_name: must be at most 250 characters",
                          param="display_name")
    event_name = forms.as_str(forms.require(p, "event_name"), "event_name")
    if len(event_name) > 100:
        raise StripeError(400, "Invalid event_name: must be at most 100 characters",
                          param="event_name")
    mapping = _settings(p.get("customer_mapping"), "customer_mapping",
                        ("event_payload_key", "type")) \
        or {"event_payload_key": "stripe_customer_id", "type": "by_id"}
    forms.as_enum(mapping["type"], "customer_mapping[type]", ("by_id",))
    value_settings = _settings(p.get("value_settings"), "value_settings",
                               ("event_payload_key",)) or {"event_payload_key": "value"}
    window = forms.as_enum(p.get("event_time_window") or None, "event_time_window",
                           tuple(WINDOWS))
    _check_event_name_free(front, event_name)
    t = now()
    meter = {
        "id": new_id("mtr_test_", 32), "object": "billing.meter", "created": t,
        "customer_mapping": {"event_payload_key": mapping["event_payload_key"],
                             "type": mapping["type"]},
        "default_aggregation": {"formula": formula}, "display_name": display_name,
        "event_name": event_name, "event_time_window": window, "livemode": False,
        "status": "active", "status_transitions": {"deactivated_at": None}, "updated": t,
        "value_settings": value_settings}
    front.meters.by_id[meter["id"]] = meter
    front.webhooks.emit("billing.meter.created", copy.deepcopy(meter))
    return json_response(copy.deepcopy(meter))


async def retrieve_meter(request):
    front = request.app["front"]
    expand_of(await params(request))
    return json_response(copy.deepcopy(front.meters.get(request.match_info["id"])))


async def update_meter(request):
    """Only the display name can change (Stripe: meters are immutable otherwise)."""
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    forms.reject_unknown(p, _UPDATE)
    meter = front.meters.get(request.match_info["id"])
    if "display_name" in p:
        name = forms.as_str(p["display_name"], "display_name")
        if not name or len(name) > 250:
            raise StripeError(400, "Invalid display_name: must be 1 to 250 characters",
                              param="display_name")
        if name != meter["display_name"]:
            previous = {"display_name": meter["display_name"], "updated": meter["updated"]}
            meter.update(display_name=name, updated=now())
            front.webhooks.emit("billing.meter.updated", copy.deepcopy(meter),
                                previous_attributes=previous)
    return json_response(copy.deepcopy(meter))


async def _set_status(request, active):
    front = request.app["front"]
    expand_of(await params(request))
    meter = front.meters.get(request.match_info["id"])
    if (meter["status"] == "active") == active:
        raise StripeError(400, "This meter is already %s." % meter["status"])
    if active:
        _check_event_name_free(front, meter["event_name"], except_id=meter["id"], param=None)
    t = now()
    meter.update(status="active" if active else "inactive", updated=t,
                 status_transitions={"deactivated_at": None if active else t})
    front.webhooks.emit("billing.meter.%s" % ("reactivated" if active else "deactivated"),
                        copy.deepcopy(meter))
    return json_response(copy.deepcopy(meter))


async def deactivate_meter(request):
    """No more events are accepted for the meter, and no price can take it."""
    return await _set_status(request, active=False)


async def reactivate_meter(request):
    return await _set_status(request, active=True)


async def list_meters(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    meters = list(reversed(list(front.meters.by_id.values())))
    if p.get("status"):
        status = forms.as_enum(p["status"], "status", ("active", "inactive"))
        meters = [m for m in meters if m["status"] == status]
    page = paginate(meters, p, "/v1/billing/meters")
    page["data"] = [copy.deepcopy(m) for m in page["data"]]
    return json_response(page)


# -- meter events --------------------------------------------------------------------------

async def create_event(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    forms.reject_unknown(p, _EVENT)
    event_name = forms.as_str(forms.require(p, "event_name"), "event_name")
    payload = forms.require(p, "payload")
    if not isinstance(payload, dict) or not all(isinstance(v, str) for v in payload.values()):
        raise StripeError(400, "Invalid object", param="payload")
    identifier = forms.as_str(p.get("identifier"), "identifier") or None
    if identifier and len(identifier) > 100:
        raise StripeError(400, "Invalid identifier: must be at most 100 characters",
                          param="identifier")
    t = now()
    timestamp = forms.as_int(p.get("timestamp"), "timestamp")
    if timestamp is None:
        timestamp = t
    elif timestamp < t - PAST_LIMIT:
        raise StripeError(400, "The event timestamp cannot be more than 35 days in past. "
                          "Expected a timestamp greater than or equal to %d."
                          % (t - PAST_LIMIT), param="timestamp")
    elif timestamp > t + FUTURE_LIMIT:
        raise StripeError(400, "The event timestamp cannot be more than 5 minutes in the "
                          "future. Expected a timestamp less than or equal to %d."
                          % (t + FUTURE_LIMIT), param="timestamp")

    meter = front.meters.active_with_event_name(event_name)
    if meter is None:
        if any(m["event_name"] == event_name for m in front.meters.by_id.values()):
            raise StripeError(400, "The meter for event_name %s is deactivated: it accepts "
                              "no events." % event_name, code="archived_meter",
                              param="event_name")
        raise StripeError(400, "No meter was found matching event_name %s." % event_name,
                          code="no_meter", param="event_name")
    customer_key = meter["customer_mapping"]["event_payload_key"]
    customer = payload.get(customer_key)
    if not customer:
        raise StripeError(400, "Customer mapping key %s not found in payload." % customer_key,
                          code="meter_event_no_customer_defined", param="payload")
    value = 0
    if meter["default_aggregation"]["formula"] != "count":
        value_key = meter["value_settings"]["event_payload_key"]
        if value_key not in payload:
            raise StripeError(400, "Value key %s not found in payload." % value_key,
                              code="meter_event_value_not_found", param="payload")
        if not _WHOLE.match(payload[value_key]):
            raise StripeError(400, "Invalid value for key %s: %s. Only whole numbers are "
                              "accepted." % (value_key, payload[value_key]),
                              code="meter_event_invalid_value",
                              param="payload[%s]" % value_key)
        value = int(payload[value_key])
    try:
        await front.upstream.call("GET", "/v1/customers/" + quote(customer, safe=""))
    except StripeError as e:
        if e.body.get("code") != "resource_missing":
            raise
        raise StripeError(400, "No customer was found with ID %s." % customer,
                          code="meter_event_customer_not_found",
                          param="payload[%s]" % customer_key)

    event = {"object": "billing.meter_event", "event_name": event_name,
             "identifier": identifier or str(uuid.uuid4()), "livemode": False,
             "payload": dict(payload), "timestamp": timestamp, "_meter": meter["id"],
             "_customer": customer, "_value": value}
    return json_response(public(front.meters.add(event)))


async def test_list_events(request):
    """Accepted meter events, newest first (test-only; Stripe has no such list)."""
    front = request.app["front"]
    q = request.query
    events = [public(e) for e in reversed(front.meters.events)
              if (not q.get("event_name") or e["event_name"] == q["event_name"])
              and (not q.get("customer") or e["_customer"] == q["customer"])]
    return json_response({"object": "list", "data": events, "has_more": False,
                          "url": "/_test/billing/meter_events"})


# -- event summaries -----------------------------------------------------------------------

def _aligned(p, field, step, what):
    value = forms.as_int(forms.require(p, field), field)
    if value % step:
        raise StripeError(400, "Invalid %s: must be aligned with %s." % (field, what),
                          param=field)
    return value


async def event_summaries(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    forms.reject_unknown(p, _SUMMARY)
    meter = front.meters.get(request.match_info["id"])
    customer = forms.as_str(forms.require(p, "customer"), "customer")
    window = forms.as_enum(p.get("value_grouping_window") or None, "value_grouping_window",
                           tuple(WINDOWS))
    step, what = {None: (60, "minute boundaries"), "hour": (3600, "hour boundaries"),
                  "day": (86400, "UTC day boundaries (00:00 UTC)")}[window]
    start = _aligned(p, "start_time", step, what)
    end = _aligned(p, "end_time", step, what)
    if start >= end:
        raise StripeError(400, "Invalid end_time: must be after start_time.", param="end_time")
    await front.upstream.call("GET", "/v1/customers/" + quote(customer, safe=""),
                              kind="customer", id=customer, param="customer")
    if window is None:
        bounds = [(start, end)]
    else:
        bounds = [(s, s + step) for s in range(start, end, step)
                  if any(e["_meter"] == meter["id"] and e["_customer"] == customer
                         and s <= e["timestamp"] < s + step for e in front.meters.events)]
    summaries = [_summary(front, meter, customer, s, e) for s, e in reversed(bounds)]
    return json_response(paginate(summaries, p, "/v1/billing/meters/%s/event_summaries"
                                  % meter["id"]))


def _summary(front, meter, customer, start, end):
    digest = hashlib.sha256(("%s:%s:%d:%d" % (meter["id"], customer, start, end)).encode())
    return {"id": "mtrusg_test_" + digest.hexdigest()[:48],
            "object": "billing.meter_event_summary",
            "aggregated_value": front.meters.aggregate(meter, customer, start, end),
            "end_time": end, "livemode": False, "meter": meter["id"], "start_time": start}


def setup(app):
    app.router.add_post("/v1/billing/meters", create_meter)
    app.router.add_get("/v1/billing/meters", list_meters)
    app.router.add_get("/v1/billing/meters/{id}", retrieve_meter)
    app.router.add_post("/v1/billing/meters/{id}", update_meter)
    app.router.add_post("/v1/billing/meters/{id}/deactivate", deactivate_meter)
    app.router.add_post("/v1/billing/meters/{id}/reactivate", reactivate_meter)
    app.router.add_get("/v1/billing/meters/{id}/event_summaries", event_summaries)
    app.router.add_post("/v1/billing/meter_events", create_event)
    app.router.add_get("/_test/billing/meter_events", test_list_events)
