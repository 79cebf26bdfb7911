"""Billing Meters, meter events, event summaries and metered prices (checkout, renewals), on a
front of their own.

    local/.venv/bin/python -m pytest -q local/stripe_front/tests/test_meters.py
"""
import time
import urllib.request
import uuid

import pytest

from test_front import add_months, assert_shape, delivered_in_order, new_customer, period

DAY, HOUR = 86400, 3600



@pytest.fixture(scope="module")
def product(front):
    return front.ok("POST", "/v1/products", {"name": "API calls"})


def unique(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


def new_meter(front, **extra):
    return front.ok("POST", "/v1/billing/meters", dict({
        "display_name": "API calls", "event_name": unique("api_calls"),
        "default_aggregation[formula]": "sum"}, **extra))


def metered_price(front, product, meter, **extra):
    return front.ok("POST", "/v1/prices", dict({
        "currency": "usd", "unit_amount": 2, "product": product["id"],
        "recurring[interval]": "month", "recurring[usage_type]": "metered",
        "recurring[meter]": meter["id"]}, **extra))


def licensed_price(front, product, amount=1500):
    return front.ok("POST", "/v1/prices", {
        "currency": "usd", "unit_amount": amount, "product": product["id"],
        "recurring[interval]": "month"})


def send(front, meter, customer, value="1", **extra):
    return front.call("POST", "/v1/billing/meter_events", dict({
        "event_name": meter["event_name"], "payload[stripe_customer_id]": customer["id"],
        "payload[value]": value}, **extra))


def sent(front, meter, customer, value="1", **extra):
    status, body, _ = send(front, meter, customer, value, **extra)
    assert status == 200, body
    return body


def refused(front, data, status=400):
    got, body, _ = front.call("POST", "/v1/billing/meter_events", data)
    assert got == status, body
    assert body["error"]["type"] == "invalid_request_error"
    assert_shape(body["error"], "ApiErrors")
    return body["error"]


def summaries(front, meter, customer, start, end, **extra):
    return front.get("/v1/billing/meters/%s/event_summaries" % meter["id"],
                     customer=customer["id"], start_time=start, end_time=end, **extra)


def checkout(front, customer, *line_items):
    data = {"mode": "subscription", "customer": customer["id"],
            "success_url": "http://127.0.0.1:9/done"}
    for i, (price, quantity) in enumerate(line_items):
        data["line_items[%d][price]" % i] = price["id"]
        if quantity is not None:
            data["line_items[%d][quantity]" % i] = quantity
    return front.call("POST", "/v1/checkout/sessions", data)


def subscribe(front, customer, *line_items):
    status, session, _ = checkout(front, customer, *line_items)
    assert status == 200, session
    with urllib.request.urlopen(session["url"], timeout=10) as page:  # the pay page
        assert page.status == 200
        html = page.read().decode()
    assert html.count("billed by usage") == sum(q is None for _, q in line_items)
    done = front.ok("POST", "/_test/checkout/sessions/%s/complete" % session["id"], {})
    return session, done, front.get("/v1/subscriptions/" + done["subscription"])


# -- meters --------------------------------------------------------------------------------

def test_meters_should_be_created_listed_updated_deactivated_and_reactivated(front, hooks):
    meter = new_meter(front)
    assert meter["id"].startswith("mtr_test_") and meter["object"] == "billing.meter"
    assert meter["customer_mapping"] == {"event_payload_key": "stripe_customer_id",
                                         "type": "by_id"}
    assert meter["value_settings"] == {"event_payload_key": "value"}
    assert (meter["status"], meter["status_transitions"], meter["event_time_window"]) \
        == ("active", {"deactivated_at": None}, None)
    assert meter["default_aggregation"] == {"formula": "sum"} and meter["livemode"] is False
    assert_shape(meter, "BillingMeter")
    created = hooks.find("billing.meter.created", meter["id"])[0]["event"]
    assert created["data"]["object"] == meter
    assert front.get("/v1/billing/meters/" + meter["id"]) == meter

    custom = new_meter(front, **{"customer_mapping[event_payload_key]": "customer",
                                 "customer_mapping[type]": "by_id",
                                 "value_settings[event_payload_key]": "calls",
                                 "default_aggregation[formula]": "count",
                                 "event_time_window": "day"})
    assert (custom["customer_mapping"]["event_payload_key"],
            custom["value_settings"]["event_payload_key"], custom["event_time_window"],
            custom["default_aggregation"]["formula"]) == ("customer", "calls", "day", "count")
    for data, param in (({"event_name": meter["event_name"]}, "event_name"),  # taken
                        ({"default_aggregation[formula]": "max"},
                         "default_aggregation[formula]"),
                        ({"customer_mapping[type]": "by_email",
                          "customer_mapping[event_payload_key]": "x"}, "customer_mapping[type]"),
                        ({"customer_mapping[type]": "by_id"},
                         "customer_mapping[event_payload_key]"),
                        ({"event_time_window": "week"}, "event_time_window"),
                        ({"display_name": ""}, "display_name"),
                        ({"color": "red"}, "color")):
        status, body, _ = front.call("POST", "/v1/billing/meters", dict({
            "display_name": "x", "event_name": unique("e"),
            "default_aggregation[formula]": "sum"}, **data))
        assert (status, body["error"]["param"]) == (400, param), body

    listed = front.get("/v1/billing/meters", limit=2)
    assert [m["id"] for m in listed["data"]] == [custom["id"], meter["id"]]
    assert listed["url"] == "/v1/billing/meters"
    page = front.get("/v1/billing/meters", limit=1)
    assert page["has_more"] and page["data"][0]["id"] == custom["id"]
    after = front.get("/v1/billing/meters", limit=1, starting_after=custom["id"])
    assert after["data"][0]["id"] == meter["id"]

    renamed = front.ok("POST", "/v1/billing/meters/" + meter["id"], {"display_name": "Calls"})
    assert renamed["display_name"] == "Calls" and renamed["event_name"] == meter["event_name"]
    updated = hooks.find("billing.meter.updated", meter["id"])[0]["event"]
    assert updated["data"]["previous_attributes"]["display_name"] == "API calls"
    status, body, _ = front.call("POST", "/v1/billing/meters/" + meter["id"],
                                 {"event_name": "other"})
    assert (status, body["error"]["param"]) == (400, "event_name")

    off = front.ok("POST", "/v1/billing/meters/%s/deactivate" % meter["id"], {})
    assert off["status"] == "inactive" and off["status_transitions"]["deactivated_at"] > 0
    assert_shape(off, "BillingMeter")
    hooks.find("billing.meter.deactivated", meter["id"])
    assert [m["id"] for m in front.get("/v1/billing/meters", status="inactive")["data"]] \
        == [meter["id"]]
    assert meter["id"] not in [m["id"] for m in front.get("/v1/billing/meters",
                                                           status="active", limit=100)["data"]]
    status, _, _ = front.call("POST", "/v1/billing/meters/%s/deactivate" % meter["id"], {})
    assert status == 400
    on = front.ok("POST", "/v1/billing/meters/%s/reactivate" % meter["id"], {})
    assert on["status"] == "active" and on["status_transitions"]["deactivated_at"] is None
    hooks.find("billing.meter.reactivated", meter["id"])

    # an inactive meter frees its event name; reactivating it then is refused
    front.ok("POST", "/v1/billing/meters/%s/deactivate" % meter["id"], {})
    successor = new_meter(front, event_name=meter["event_name"])
    status, body, _ = front.call("POST", "/v1/billing/meters/%s/reactivate" % meter["id"], {})
    assert status == 400 and successor["id"] in body["error"]["message"]

    status, body, _ = front.call("GET", "/v1/billing/meters/mtr_missing")
    assert status == 404 and body["error"] == {
        "type": "invalid_request_error", "code": "resource_missing",
        "message": "No such billing.meter: 'mtr_missing'"}


# -- meter events --------------------------------------------------------------------------

def test_meter_events_should_be_accepted_or_refused_like_stripe(front):
    meter = new_meter(front)
    customer = new_customer(front, "meter-events@example.com")
    before = int(time.time())
    event = sent(front, meter, customer, "25")
    assert event["object"] == "billing.meter_event" and event["livemode"] is False
    assert event["event_name"] == meter["event_name"]
    assert event["payload"] == {"stripe_customer_id": customer["id"], "value": "25"}
    assert before <= event["timestamp"] <= event["created"] <= int(time.time())
    assert len(event["identifier"]) >= 8  # generated
    assert_shape(event, "BillingMeterEvent")
    assert front.get("/_test/billing/meter_events", customer=customer["id"])["data"] == [event]

    # Stripe's limits: 35 days back, 5 minutes ahead (accepted inside, refused outside)
    now = int(time.time())
    assert sent(front, meter, customer, timestamp=now - 35 * DAY + 120)["timestamp"] \
        == now - 35 * DAY + 120
    assert sent(front, meter, customer, timestamp=now + 240)["timestamp"] == now + 240
    base = {"event_name": meter["event_name"], "payload[stripe_customer_id]": customer["id"],
            "payload[value]": "1"}
    old = refused(front, dict(base, timestamp=now - 35 * DAY - 120))
    assert old["param"] == "timestamp" and "code" not in old
    assert old["message"].startswith("The event timestamp cannot be more than 35 days in "
                                     "past. Expected a timestamp greater than or equal to ")
    ahead = refused(front, dict(base, timestamp=now + 600))
    assert ahead["param"] == "timestamp" and "5 minutes in the future" in ahead["message"]

    nobody = dict(base, **{"payload[stripe_customer_id]": "cus_missing"})
    for data, code, param in (
            (dict(base, event_name="no_such_event"), "no_meter", "event_name"),
            ({"event_name": meter["event_name"], "payload[value]": "1"},
             "meter_event_no_customer_defined", "payload"),
            (nobody, "meter_event_customer_not_found", "payload[stripe_customer_id]"),
            (dict(base, **{"payload[value]": "1.5"}), "meter_event_invalid_value",
             "payload[value]"),
            (dict(base, **{"payload[value]": "ten"}), "meter_event_invalid_value",
             "payload[value]"),
            ({"event_name": meter["event_name"],
              "payload[stripe_customer_id]": customer["id"]}, "meter_event_value_not_found",
             "payload")):
        error = refused(front, data)
        assert (error.get("code"), error["param"]) == (code, param), error
    assert refused(front, {"event_name": meter["event_name"]})["param"] == "payload"
    assert refused(front, dict(base, colour="red"))["param"] == "colour"
    assert refused(front, dict(base, identifier="x" * 101))["param"] == "identifier"
    assert sent(front, meter, customer, "-3")["payload"]["value"] == "-3"  # whole numbers

    # a count meter needs no value; a deactivated meter takes no event
    counter = new_meter(front, **{"default_aggregation[formula]": "count"})
    assert sent(front, counter, customer, **{"payload[value]": "x"})["event_name"] \
        == counter["event_name"]
    front.ok("POST", "/v1/billing/meters/%s/deactivate" % counter["id"], {})
    status, body, _ = send(front, counter, customer)
    assert (status, body["error"]["code"]) == (400, "archived_meter")
    # customer_mapping / value_settings name the payload keys
    custom = new_meter(front, **{"customer_mapping[event_payload_key]": "customer",
                                 "customer_mapping[type]": "by_id",
                                 "value_settings[event_payload_key]": "calls"})
    status, _, _ = front.call("POST", "/v1/billing/meter_events", {
        "event_name": custom["event_name"], "payload[customer]": customer["id"],
        "payload[calls]": "4"})
    assert status == 200
    assert sum(e["payload"].get("calls") == "4" for e in front.get(
        "/_test/billing/meter_events", event_name=custom["event_name"])["data"]) == 1


def test_a_duplicate_identifier_within_24_hours_should_be_refused_and_a_replay_answered(front):
    meter = new_meter(front)
    customer = new_customer(front, "meter-dup@example.com")
    identifier = "usage:k1:up_api:2026-12-01:0-40"
    data = {"event_name": meter["event_name"], "payload[stripe_customer_id]": customer["id"],
            "payload[value]": "40", "identifier": identifier}
    status, first, _ = front.call("POST", "/v1/billing/meter_events", data,
                                  headers={"Idempotency-Key": "meter-1"})
    assert status == 200 and first["identifier"] == identifier
    # the same request under the same Idempotency-Key: Stripe's replay of the first answer
    status, replay, headers = front.call("POST", "/v1/billing/meter_events", data,
                                         headers={"Idempotency-Key": "meter-1"})
    assert (status, replay, headers.get("Idempotent-Replayed")) == (200, first, "true")
    # the identifier again under a fresh key (or none): refused, whatever the rest says
    for key in ("meter-2", None):
        status, body, _ = front.call("POST", "/v1/billing/meter_events",
                                     dict(data, **{"payload[value]": "41"}),
                                     headers={"Idempotency-Key": key} if key else None)
        assert status == 400
        assert body == {"error": {"type": "invalid_request_error",
                                  "message": "An event already exists with identifier %s."
                                             % identifier}}
    # ... also on another meter: identifiers are the account's
    other = new_meter(front)
    status, _, _ = send(front, other, customer, identifier=identifier)
    assert status == 400
    # counted once
    now = int(time.time())
    got = summaries(front, meter, customer, now // 60 * 60 - HOUR, now // 60 * 60 + HOUR)
    assert [s["aggregated_value"] for s in got["data"]] == [40]
    assert len(front.get("/_test/billing/meter_events", customer=customer["id"])["data"]) == 1


# -- summaries -----------------------------------------------------------------------------

def test_event_summaries_should_aggregate_per_range_day_and_hour(front):
    meter = new_meter(front)
    customer = new_customer(front, "meter-summaries@example.com")
    someone = new_customer(front, "meter-someone@example.com")
    now = int(time.time())
    today = now // DAY * DAY
    for ts, value in ((today - 2 * DAY + HOUR + 5, "5"), (today - 2 * DAY + 2 * HOUR, "7"),
                      (today - 2 * DAY + 2 * HOUR + 59, "3"), (today - DAY + 100, "6"),
                      (today - DAY + 200, "-2"), (now, "1")):
        sent(front, meter, customer, value, timestamp=ts)
    sent(front, meter, someone, "100", timestamp=today - DAY)
    sent(front, new_meter(front), customer, "100", timestamp=today - DAY)  # another meter

    whole = summaries(front, meter, customer, today - 3 * DAY, today + DAY)
    assert [s["aggregated_value"] for s in whole["data"]] == [20]
    summary = whole["data"][0]
    assert (summary["object"], summary["meter"], summary["start_time"], summary["end_time"]) \
        == ("billing.meter_event_summary", meter["id"], today - 3 * DAY, today + DAY)
    assert summary["id"].startswith("mtrusg_test_") and summary["livemode"] is False
    assert_shape(summary, "BillingMeterEventSummary")
    assert whole["url"] == "/v1/billing/meters/%s/event_summaries" % meter["id"]

    daily = summaries(front, meter, customer, today - 3 * DAY, today + DAY,
                      value_grouping_window="day")
    assert [(s["start_time"], s["end_time"], s["aggregated_value"]) for s in daily["data"]] \
        == [(today, today + DAY, 1), (today - DAY, today, 4),
            (today - 2 * DAY, today - DAY, 15)]  # newest first; an empty day is left out
    hourly = summaries(front, meter, customer, today - 2 * DAY, today - DAY,
                       value_grouping_window="hour")
    assert [(s["start_time"] - (today - 2 * DAY), s["aggregated_value"])
            for s in hourly["data"]] == [(2 * HOUR, 10), (HOUR, 5)]
    # a range in minutes: end exclusive, start inclusive
    minutes = summaries(front, meter, customer, today - 2 * DAY + HOUR,
                        today - 2 * DAY + 2 * HOUR)
    assert minutes["data"][0]["aggregated_value"] == 5
    assert summaries(front, meter, customer, today - 30 * DAY, today - 29 * DAY)["data"][0][
        "aggregated_value"] == 0

    page = summaries(front, meter, customer, today - 3 * DAY, today + DAY,
                     value_grouping_window="day", limit=2)
    assert page["has_more"] and len(page["data"]) == 2
    rest = summaries(front, meter, customer, today - 3 * DAY, today + DAY,
                     value_grouping_window="day", starting_after=page["data"][-1]["id"])
    assert [s["aggregated_value"] for s in rest["data"]] == [15] and not rest["has_more"]

    path = "/v1/billing/meters/%s/event_summaries" % meter["id"]
    for query, param in (
            ({"start_time": today + 30, "end_time": today + DAY}, "start_time"),
            ({"start_time": today, "end_time": today + 90}, "end_time"),
            ({"start_time": today + HOUR, "end_time": today + DAY,
              "value_grouping_window": "day"}, "start_time"),
            ({"start_time": today, "end_time": today + 90 * 60,
              "value_grouping_window": "hour"}, "end_time"),
            ({"start_time": today, "end_time": today}, "end_time"),
            ({"start_time": today, "end_time": today + DAY, "value_grouping_window": "week"},
             "value_grouping_window"),
            ({"end_time": today + DAY}, "start_time"),
            ({"start_time": today, "end_time": today + DAY, "customer": "cus_missing"},
             "customer")):
        query = dict({"customer": customer["id"]}, **query)
        status, body, _ = front.call("GET", path + "?" + "&".join(
            "%s=%s" % kv for kv in query.items()))
        assert (status, body["error"]["param"]) == (400, param), (query, body)
    status, body, _ = front.call("GET", path + "?start_time=%d&end_time=%d"
                                 % (today, today + DAY))
    assert (status, body["error"]["param"]) == (400, "customer")
    status, _, _ = front.call("GET", "/v1/billing/meters/mtr_missing/event_summaries?"
                              "customer=%s&start_time=%d&end_time=%d"
                              % (customer["id"], today, today + DAY))
    assert status == 404


def test_count_last_and_pre_aggregated_meters_should_aggregate_like_stripe(front):
    customer = new_customer(front, "meter-formulas@example.com")
    now = int(time.time())
    hour = now // HOUR * HOUR - 2 * HOUR
    counter = new_meter(front, **{"default_aggregation[formula]": "count"})
    last = new_meter(front, **{"default_aggregation[formula]": "last"})
    hourly = new_meter(front, event_time_window="hour")
    for meter in (counter, last, hourly):
        for ts, value in ((hour + 300, "9"), (hour + 60, "4"), (hour + HOUR + 10, "2"),
                          (hour + HOUR + 20, "8"), (hour + HOUR + 5, "1")):
            sent(front, meter, customer, value, timestamp=ts)

    def value(meter):
        return summaries(front, meter, customer, hour, hour + 2 * HOUR)["data"][0][
            "aggregated_value"]
    assert value(counter) == 5
    assert value(last) == 8  # the latest timestamp's value
    assert value(hourly) == 4 + 1  # each hour: the latest event received replaces the others


# -- metered prices, checkout, renewals ----------------------------------------------------

def test_a_metered_price_should_need_an_active_meter(front, product):
    meter = new_meter(front)
    price = metered_price(front, product, meter)
    assert price["recurring"]["usage_type"] == "metered"
    assert price["recurring"]["meter"] == meter["id"]
    assert_shape(price, "Price")
    assert front.get("/v1/prices/" + price["id"]) == price
    listed = front.get("/v1/prices", **{"recurring[meter]": meter["id"]})["data"]
    assert [p["id"] for p in listed] == [price["id"]]
    assert price["id"] in [p["id"] for p in front.get(
        "/v1/prices", limit=100, **{"recurring[usage_type]": "metered"})["data"]]

    inactive = new_meter(front)
    front.ok("POST", "/v1/billing/meters/%s/deactivate" % inactive["id"], {})
    base = {"currency": "usd", "unit_amount": 2, "product": product["id"],
            "recurring[interval]": "month"}
    for data, param, code in (
            ({"recurring[usage_type]": "metered"}, "recurring[meter]", None),
            ({"recurring[usage_type]": "metered", "recurring[meter]": "mtr_missing"},
             "recurring[meter]", "resource_missing"),
            ({"recurring[usage_type]": "metered", "recurring[meter]": inactive["id"]},
             "recurring[meter]", None),
            ({"recurring[meter]": meter["id"]}, "recurring[meter]", None)):
        status, body, _ = front.call("POST", "/v1/prices", dict(base, **data))
        assert (status, body["error"]["param"], body["error"].get("code")) \
            == (400, param, code), body


def test_checkout_should_sell_a_metered_price_without_quantity_and_charge_nothing_first(
        front, product, hooks):
    meter = new_meter(front)
    price = metered_price(front, product, meter)
    licensed = licensed_price(front, product)
    customer = new_customer(front, "meter-checkout@example.com")

    status, body, _ = checkout(front, customer, (price, 1))
    assert status == 400 and body["error"] == {
        "type": "invalid_request_error", "param": "line_items[0][quantity]",
        "message": "Quantity should not be specified where usage_type is `metered`. Remove "
                   "quantity from `line_items[0]`"}
    status, body, _ = checkout(front, customer, (licensed, None))
    assert (status, body["error"]["param"]) == (400, "line_items[0][quantity]")

    # alone: nothing to pay now
    session, done, sub = subscribe(front, customer, (price, None))
    assert session["amount_total"] == 0
    items = front.get("/v1/checkout/sessions/%s/line_items" % session["id"])["data"]
    assert [(i["price"]["id"], i["quantity"], i["amount_total"]) for i in items] \
        == [(price["id"], None, 0)]
    assert_shape(items[0], "CheckoutSessionItem")
    assert (done["status"], done["payment_status"]) == ("complete", "no_payment_required")
    assert sub["status"] == "active"
    item = sub["items"]["data"][0]
    assert item["price"]["id"] == price["id"] and "quantity" not in item
    assert item["price"]["recurring"]["meter"] == meter["id"]
    assert (item["plan"]["amount"], item["plan"]["meter"], item["plan"]["usage_type"]) \
        == (2, meter["id"], "metered")
    assert_shape(sub, "Subscription")
    invoice = front.get("/v1/invoices/" + sub["latest_invoice"])
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", 0)
    assert [(line["amount"], line["quantity"]) for line in invoice["lines"]["data"]] == [(0, 0)]
    created = hooks.find("customer.subscription.created", sub["id"])[0]["event"]
    assert "quantity" not in created["data"]["object"]["items"]["data"][0]

    # next to a licensed price, either way round: only the licensed one is paid now
    for pair in (((licensed, 1), (price, None)), ((price, None), (licensed, 2))):
        other = new_customer(front, "meter-checkout-%s@example.com" % uuid.uuid4().hex[:6])
        session, done, sub = subscribe(front, other, *pair)
        amount = 1500 * (pair[0][1] or pair[1][1])
        assert session["amount_total"] == amount and done["payment_status"] == "paid"
        assert [i["price"]["id"] for i in sub["items"]["data"]] == [p["id"] for p, _ in pair]
        assert [i.get("quantity") for i in sub["items"]["data"]] == [q for _, q in pair]
        assert front.get("/v1/invoices/" + sub["latest_invoice"])["amount_paid"] == amount
        assert_shape(sub, "Subscription")

    # a quantity on a metered item is refused on the subscription routes too
    for data in ({"items[0][price]": price["id"], "items[0][quantity]": 2},
                 {"items[0][price]": licensed["id"], "items[1][price]": price["id"],
                  "items[1][quantity]": 1}):
        status, body, _ = front.call("POST", "/v1/subscriptions",
                                     dict({"customer": customer["id"]}, **data))
        assert status == 400 and body["error"]["param"].endswith("[quantity]"), body


def test_renewal_should_bill_the_metered_usage_of_the_period_just_ended(
        front, product, hooks):
    meter = new_meter(front)
    price = metered_price(front, product, meter)
    licensed = licensed_price(front, product)
    customer = new_customer(front, "meter-renewal@example.com")
    someone = new_customer(front, "meter-renewal-other@example.com")
    _, _, sub = subscribe(front, customer, (licensed, 1), (price, None))
    start0, end0 = period(sub)
    anchor = sub["billing_cycle_anchor"]
    sent(front, meter, customer, "10", timestamp=start0)  # [start, end): start counts
    sent(front, meter, customer, "5")
    sent(front, meter, customer, "1000", timestamp=start0 - 120)  # before the period
    sent(front, meter, someone, "1000")

    reply = front.ok("POST", "/_test/subscriptions/%s/renew" % sub["id"], {})
    paid = delivered_in_order(hooks, reply["events"])[0]
    invoice = paid["data"]["object"]
    assert paid["type"] == "invoice.paid"
    lines = invoice["lines"]["data"]
    assert [(li["price"]["id"], li["quantity"], li["amount"]) for li in lines] \
        == [(licensed["id"], 1, 1500), (price["id"], 15, 30)]
    assert lines[0]["period"] == {"start": end0, "end": add_months(anchor, 2)}  # ahead
    assert lines[1]["period"] == {"start": start0, "end": end0}  # in arrears
    assert lines[1]["pricing"]["price_details"] == {"price": price["id"],
                                                    "product": product["id"]}
    assert lines[1]["parent"]["subscription_item_details"]["subscription_item"] \
        == sub["items"]["data"][1]["id"]
    assert (invoice["amount_due"], invoice["amount_paid"], invoice["status"]) \
        == (1530, 1530, "paid")
    assert_shape(invoice, "Invoice")
    assert front.get("/v1/invoices/" + invoice["id"]) == invoice

    # the next period has no usage yet: its metered line is 0
    again = front.ok("POST", "/_test/subscriptions/%s/renew" % sub["id"], {})
    invoice = delivered_in_order(hooks, again["events"])[0]["data"]["object"]
    assert [(li["quantity"], li["amount"]) for li in invoice["lines"]["data"]] \
        == [(1, 1500), (0, 0)]
    assert invoice["lines"]["data"][1]["period"] == {"start": end0,
                                                     "end": add_months(anchor, 2)}

    # a graduated metered price, alone: the tiers price the usage
    tiered = front.ok("POST", "/v1/prices", {
        "currency": "usd", "product": product["id"], "recurring[interval]": "month",
        "recurring[usage_type]": "metered", "recurring[meter]": meter["id"],
        "billing_scheme": "tiered", "tiers_mode": "graduated",
        "tiers[0][up_to]": 10, "tiers[0][unit_amount]": 0,
        "tiers[1][up_to]": "inf", "tiers[1][unit_amount]": 3})
    buyer = new_customer(front, "meter-tiers@example.com")
    _, done, sub = subscribe(front, buyer, (tiered, None))
    assert done["payment_status"] == "no_payment_required"
    sent(front, meter, buyer, "25")
    reply = front.ok("POST", "/_test/subscriptions/%s/renew" % sub["id"], {})
    invoice = delivered_in_order(hooks, reply["events"])[0]["data"]["object"]
    assert [(li["quantity"], li["amount"]) for li in invoice["lines"]["data"]] == [(25, 45)]
    assert invoice["amount_paid"] == 45
