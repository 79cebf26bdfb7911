"""GET /v1/events[/{id}] and the webhook delivery switch, on a front of their own (these tests
switch delivery off and reset the front, which the shared one in test_front.py must not see).

    local/.venv/bin/python -m pytest local/stripe_front/tests -q
"""
import math
import time
import urllib.parse

import pytest

from test_front import SECRET, assert_shape, new_customer, subscribe, wait_until



def recorded(front):
    """Every event the front recorded, newest emitted first (GET /_test/events)."""
    return front.get("/_test/events")["data"]


def newest_first(events):
    """Stripe's order: `created` descending; ties keep /_test/events' newest-emitted-first."""
    return sorted(events, key=lambda e: -e["created"])


def ids(events):
    return [e["id"] for e in events]


def list_all(front, **query):
    """Every page of GET /v1/events with these filters, following starting_after."""
    got, after = [], None
    while True:
        page = front.get("/v1/events", **dict(query, **({"starting_after": after}
                                                        if after else {})))
        got += page["data"]
        if not page["has_more"]:
            return got
        assert page["data"]
        after = page["data"][-1]["id"]


def new_price(front, name="Extra", **extra):
    return front.ok("POST", "/v1/prices", dict({"currency": "usd", "unit_amount": 700,
                                                "product_data[name]": name}, **extra))


def error(front, path, **query):
    status, body, _ = front.call("GET", path + "?" + urllib.parse.urlencode(query, doseq=True))
    return status, body["error"]


def set_delivery(front, enabled, via_query=False):
    value = "true" if enabled else "false"
    if via_query:
        return front.ok("POST", "/_test/webhooks/delivery?enabled=" + value, {}, key=None)
    return front.ok("POST", "/_test/webhooks/delivery", {"enabled": value}, key=None)


@pytest.fixture(scope="module")
def world(front):
    """A subscription renewed twice (the renewals' events are created seconds ahead of the
    clock), then prices created at once (created now, emitted after them), then quiet."""
    product = front.ok("POST", "/v1/products", {"name": "Pro"})
    monthly = front.ok("POST", "/v1/prices", {"currency": "usd", "unit_amount": 1500,
                                              "product": product["id"],
                                              "recurring[interval]": "month"})
    _, sub = subscribe(front, {"monthly": monthly}, "events@example.com")
    for _ in range(2):
        front.ok("POST", "/_test/subscriptions/%s/renew" % sub["id"], {})
    prices = [new_price(front, "Extra %d" % i) for i in range(3)]
    # localstripe sends its own events a second late: wait until nothing more arrives
    counts = []

    def quiet():
        counts.append(len(recorded(front)))
        return len(counts) > 6 and len(set(counts[-6:])) == 1
    assert wait_until(quiet, timeout=20, interval=0.3)
    return {"subscription": sub, "prices": prices}


# -- GET /v1/events ------------------------------------------------------------------------

def test_events_should_page_newest_first_through_every_recorded_event(front, world):
    events = recorded(front)
    want = ids(newest_first(events))
    # the list must really be sorted: emit order differs, and some `created` are equal
    assert want != ids(events)
    assert any(a["created"] == b["created"] for a, b in zip(events, events[1:]))
    assert len(want) > 3 * 7

    got, after, pages = [], None, 0
    while True:
        page = front.get("/v1/events", limit=7, **({"starting_after": after} if after else {}))
        assert (page["object"], page["url"]) == ("list", "/v1/events")
        pages += 1
        got += page["data"]
        if not page["has_more"]:
            break
        assert len(page["data"]) == 7
        after = page["data"][-1]["id"]
    assert ids(got) == want
    assert pages == math.ceil(len(want) / 7)
    assert_shape(page, "List<Event>")
    # the front's own events (localstripe has no /v1/events nor price events): not proxied
    assert {"price.created", "invoice.paid", "customer.subscription.updated",
            "customer.created"} <= {e["type"] for e in got}

    default = front.get("/v1/events")
    assert ids(default["data"]) == want[:10] and default["has_more"] is True
    before = front.get("/v1/events", ending_before=want[20], limit=5)
    assert ids(before["data"]) == want[15:20] and before["has_more"] is True
    first = front.get("/v1/events", ending_before=want[3], limit=10)
    assert ids(first["data"]) == want[:3] and first["has_more"] is False
    last = front.get("/v1/events", starting_after=want[-1])
    assert last["data"] == [] and last["has_more"] is False


def test_created_should_filter_exactly_and_by_range(front, world):
    events = newest_first(recorded(front))
    seconds = sorted({e["created"] for e in events})
    assert len(seconds) >= 3
    pivot = seconds[len(seconds) // 2]
    cases = {"gte": lambda c: c >= pivot, "gt": lambda c: c > pivot,
             "lt": lambda c: c < pivot, "lte": lambda c: c <= pivot}
    for op, keep in cases.items():
        want = ids(e for e in events if keep(e["created"]))
        assert 0 < len(want) < len(events), op
        assert ids(list_all(front, limit=4, **{"created[%s]" % op: pivot})) == want, op
    exact = ids(e for e in events if e["created"] == pivot)
    assert ids(list_all(front, created=pivot, limit=100)) == exact
    newest = events[0]["created"]
    window = ids(e for e in events if pivot <= e["created"] < newest)
    assert window and ids(list_all(front, limit=100, **{"created[gte]": pivot,
                                                        "created[lt]": newest})) == window


def test_types_and_a_type_wildcard_should_filter(front, world):
    events = newest_first(recorded(front))

    def of(*types):
        return ids(e for e in events if e["type"] in types)
    wanted = ["price.created", "invoice.paid"]
    assert ids(list_all(front, limit=3, **{"types[]": wanted})) == of(*wanted)
    subs = ids(list_all(front, limit=3, type="customer.subscription.*"))
    assert subs == ids(e for e in events if e["type"].startswith("customer.subscription."))
    assert {"customer.subscription.created", "customer.subscription.updated"} \
        <= {e["type"] for e in events if e["id"] in subs}
    assert ids(list_all(front, type="invoice.paid")) == of("invoice.paid")
    assert ids(list_all(front, type="*.paid")) == of("invoice.paid", "invoice_payment.paid")
    assert list_all(front, type="price.*.created") == []
    # a cursor that does not match the filter still marks its place
    other = next(e for e in events[5:] if e["type"] != "invoice.paid")
    place = events.index(other)
    assert ids(list_all(front, type="invoice.paid", starting_after=other["id"])) \
        == ids(e for e in events[place + 1:] if e["type"] == "invoice.paid")


def test_bad_list_parameters_should_be_stripe_400s(front, world):
    any_id = recorded(front)[0]["id"]
    for limit in (0, 101, "ten"):
        status, err = error(front, "/v1/events", limit=limit)
        assert (status, err["type"], err["param"]) == (400, "invalid_request_error", "limit")
    status, err = error(front, "/v1/events", type="invoice.paid", **{"types[]": "invoice.paid"})
    assert status == 400 and err["type"] == "invalid_request_error"
    assert "type" in err["message"] and "types" in err["message"]
    status, err = error(front, "/v1/events", **{"types[]": ["t%d" % i for i in range(21)]})
    assert (status, err["param"]) == (400, "types")
    for cursor in ("starting_after", "ending_before"):
        status, err = error(front, "/v1/events", **{cursor: "evt_unknown"})
        assert (status, err["code"], err["param"]) == (400, "resource_missing", cursor)
        assert err["message"] == "No such event: 'evt_unknown'"
    status, err = error(front, "/v1/events", starting_after=any_id, ending_before=any_id)
    assert status == 400 and "starting_after" in err["message"]
    for param, value in (("created", "yesterday"), ("created[gt]", "x"), ("created[lte]", "1.5")):
        status, err = error(front, "/v1/events", **{param: value})
        assert (status, err["param"]) == (400, param)
    status, err = error(front, "/v1/events", **{"created[after]": 1})
    assert (status, err["param"]) == (400, "created[after]")
    status, err = error(front, "/v1/events", customer="cus_x")
    assert (status, err["param"]) == (400, "customer")
    status, err = error(front, "/v1/events", delivery_success="maybe")
    assert (status, err["param"]) == (400, "delivery_success")
    assert front.get("/v1/events", limit=1, delivery_success="true")["object"] == "list"


def test_an_event_should_be_retrieved_by_id_and_an_unknown_one_should_404(front, world):
    newest = front.get("/v1/events", limit=1)["data"][0]
    assert front.get("/v1/events/" + newest["id"]) == newest
    invoice_paid = front.get("/v1/events", type="invoice.paid", limit=1)["data"][0]
    got = front.get("/v1/events/" + invoice_paid["id"])
    assert got == invoice_paid and got["data"]["object"]["object"] == "invoice"
    assert_shape(got, "Event")
    status, err = error(front, "/v1/events/evt_nope")
    assert (status, err["type"], err["code"]) == (404, "invalid_request_error", "resource_missing")
    assert err["message"] == "No such event: 'evt_nope'"


def test_events_should_need_a_secret_key(front, world):
    newest = recorded(front)[0]["id"]
    for path in ("/v1/events", "/v1/events/" + newest):
        for key in (None, "pk_test_public", "sk_live_real"):
            status, body, _ = front.call("GET", path, key=key)
            assert status == 401 and body["error"]["type"] == "invalid_request_error", (path, key)
        assert front.call("GET", path)[0] == 200


# -- the delivery switch (these change the front's state: keep them last) --------------------

def delivered(hooks, event_id, path="/hook"):
    with hooks.lock:
        return [d for d in hooks.deliveries if d["path"] == path and d["event"]["id"] == event_id]


def event_of(front, type, object_id):
    return next((e for e in front.get("/v1/events", type=type, limit=100)["data"]
                 if e["data"]["object"]["id"] == object_id), None)


def test_while_delivery_is_off_events_should_be_listed_but_never_delivered(front, world, hooks):
    assert front.ok("GET", "/_test/webhooks/delivery", key=None) == {"enabled": True}
    try:
        assert set_delivery(front, False) == {"enabled": False}
        assert front.ok("GET", "/_test/webhooks/delivery", key=None) == {"enabled": False}
        customer = new_customer(front, "lost@example.com")
        price = new_price(front, "Lost")
        # localstripe's customer.created is relayed a second late: wait until it is recorded
        lost = wait_until(lambda: [event_of(front, "customer.created", customer["id"]),
                                   event_of(front, "price.created", price["id"])]
                          if event_of(front, "customer.created", customer["id"]) else None)
        assert lost and all(lost)
        lost_ids = ids(lost)
        assert set(lost_ids) <= set(ids(recorded(front)))
        assert set(set_delivery(front, True, via_query=True).items()) == {("enabled", True)}

        after = new_price(front, "After")
        hooks.find("price.created", after["id"])  # delivery resumed, for new events
        time.sleep(1.0)  # time enough for a late delivery of the lost ones
        for event_id in lost_ids:
            assert delivered(hooks, event_id) == [], event_id
            assert front.get("/v1/events/" + event_id)["pending_webhooks"] == 1
        undelivered = ids(list_all(front, limit=100, delivery_success="false"))
        assert set(lost_ids) <= set(undelivered)
        done = wait_until(lambda: event_of(front, "price.created", after["id"])
                          ["pending_webhooks"] == 0)
        assert done
        delivered_ok = ids(list_all(front, limit=100, delivery_success="true"))
        assert event_of(front, "price.created", after["id"])["id"] in delivered_ok
        assert not set(lost_ids) & set(delivered_ok)

        # a lost delivery can still be resent by hand
        resent = front.ok("POST", "/_test/events/%s/resend" % lost_ids[1], {}, key=None)
        assert resent["deliveries"] == [{"endpoint": "main", "status": 200}]
        assert len(delivered(hooks, lost_ids[1])) == 1
        assert front.get("/v1/events/" + lost_ids[1])["pending_webhooks"] == 0
    finally:
        set_delivery(front, True)


def test_switching_delivery_off_should_drop_a_retry_still_waiting(front, world, hooks):
    status, _, _ = front.call("POST", "/_config/webhooks/flaky", {
        "url": hooks.url + "/flaky", "secret": SECRET, "events[]": "price.updated"}, key=None)
    assert status == 200
    price = new_price(front, "Retried")
    try:
        front.ok("POST", "/v1/prices/" + price["id"], {"metadata[k]": "v"})
        first = hooks.find("price.updated", price["id"], path="/flaky")  # answered 500
        event_id = first[0]["event"]["id"]
        set_delivery(front, False)
        time.sleep(0.3)  # an attempt begun before the switch has arrived by now
        tries = len(delivered(hooks, event_id, "/flaky"))
        set_delivery(front, True)
        time.sleep(2.0)  # the retry was due 0.5 s after the first try
        assert len(delivered(hooks, event_id, "/flaky")) == tries
        if tries == 1:  # (the retry may have been made before the switch on a slow machine)
            assert front.get("/v1/events/" + event_id)["pending_webhooks"] == 1
    finally:
        set_delivery(front, True)


def test_reset_should_turn_delivery_back_on(front, hooks):
    set_delivery(front, False)
    assert front.ok("POST", "/_test/reset", {}, key=None) == {"ok": True}
    assert front.ok("GET", "/_test/webhooks/delivery", key=None) == {"enabled": True}
    price = new_price(front, "After reset")
    hooks.find("price.created", price["id"])
    status, err = front.call("POST", "/_test/webhooks/delivery", {}, key=None)[:2]
    assert (status, err["error"]["param"]) == (400, "enabled")
    status, err = front.call("POST", "/_test/webhooks/delivery", {"enabled": "off"}, key=None)[:2]
    assert (status, err["error"]["param"]) == (400, "enabled")


def test_settled_should_wait_for_localstripes_late_events_and_for_retries(front, world, hooks):
    def settled():
        return front.ok("GET", "/_test/webhooks/settled", key=None)

    status, _, _ = front.call("POST", "/_config/webhooks/flaky", {
        "url": hooks.url + "/flaky", "secret": SECRET, "events[]": "customer.updated"}, key=None)
    assert status == 200
    customer = new_customer(front, "settled@example.com")
    # localstripe posts customer.created a second after the call: not settled before that
    state = settled()
    assert state["settled"] is False and state["localstripe_outstanding"] >= 1, state
    assert wait_until(lambda: settled()["settled"], timeout=10)
    created = [d for d in hooks.deliveries if d["event"]["type"] == "customer.created"
               and d["event"]["data"]["object"]["id"] == customer["id"]]
    assert len(created) == 1

    # /flaky answers the first try with 500: settled only once the retry has been accepted
    front.ok("POST", "/v1/customers/" + customer["id"], {"name": "Settled"})
    first = hooks.find("customer.updated", customer["id"], path="/flaky")
    event_id = first[0]["event"]["id"]
    state = settled()
    if len(delivered(hooks, event_id, "/flaky")) == 1:  # the retry (0.5 s on) not yet made
        assert state["settled"] is False, state
    assert wait_until(lambda: settled()["settled"], timeout=10)
    assert len(delivered(hooks, event_id, "/flaky")) == 2
    assert front.get("/v1/events/" + event_id)["pending_webhooks"] == 0
