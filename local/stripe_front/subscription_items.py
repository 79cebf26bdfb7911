"""Subscriptions with several items (localstripe holds one item per subscription).

localstripe keeps a subscription's first item; the front keeps the others (`Items`) and lays
them after it in every subscription it answers or relays (Front.patch, before the shape
patches, so they get `price`, periods, ... like the first one).

    POST /v1/subscriptions with items[1..]     the first item in localstripe, the rest here
    POST /v1/subscription_items                adds an item (customer.subscription.updated)
    GET /v1/subscription_items?subscription=   the subscription's items, in order
    GET / DELETE /v1/subscription_items/{id}   the front's items (others go to localstripe)

The first invoice charges every item: before creating the subscription, the front adds a
pending localstripe invoice item per extra item (amount = price x quantity; 0 for a metered
price, whose item has no quantity: its usage is billed by the renewals), which localstripe's
first invoice takes in. No trial, no invoice items. Adding an item later makes
no proration.
"""
import copy

import forms
import meters
from common import expand_of, new_id, now, paginate, params
from errors import StripeError, json_response

_ENDED = ("canceled", "incomplete_expired")
_ADD = {"billing_thresholds", "discounts", "expand", "metadata", "payment_behavior", "plan",
        "price", "price_data", "proration_behavior", "proration_date", "quantity",
        "subscription", "tax_rates"}


class Items:
    def __init__(self):
        self.extra = {}  # subscription id -> [localstripe-shaped subscription_item], in order
        self.owner = {}  # extra item id -> subscription id

    def reset(self):
        self.extra.clear()
        self.owner.clear()

    def add(self, sub_id, item):
        self.extra.setdefault(sub_id, []).append(item)
        self.owner[item["id"]] = sub_id

    def remove(self, item_id):
        sub_id = self.owner.pop(item_id)
        self.extra[sub_id] = [i for i in self.extra[sub_id] if i["id"] != item_id]
        return sub_id

    def apply(self, value):
        """Append the front's items to every subscription in `value` (localstripe's shape)."""
        if isinstance(value, list):
            for v in value:
                self.apply(v)
        elif isinstance(value, dict):
            for v in value.values():
                self.apply(v)
            extra = self.extra.get(value.get("id"))
            items = value.get("items")
            if extra and value.get("object") == "subscription" and isinstance(items, dict) \
                    and isinstance(items.get("data"), list):
                known = {i.get("id") for i in items["data"] if isinstance(i, dict)}
                items["data"] += [copy.deepcopy(i) for i in extra if i["id"] not in known]
                if "total_count" in items:
                    items["total_count"] = len(items["data"])
                # the old API's top-level plan / quantity: set for a single item only
                for key in ("plan", "quantity"):
                    if key in value:
                        value[key] = None
        return value


def _raw_item(plan, quantity, metadata):
    """A subscription_item as localstripe renders one (Front.patch brings it up to date)."""
    return {"id": new_id("si_", 14), "object": "subscription_item", "created": now(),
            "livemode": False, "metadata": metadata, "plan": plan, "quantity": quantity,
            "tax_rates": []}


async def _plan(front, price_id, param):
    """The localstripe plan of a recurring price (as localstripe renders it) and its price."""
    price = front.prices.by_id.get(price_id) if isinstance(price_id, str) else None
    if price is not None and price["type"] != "recurring":
        raise StripeError(400, "The price specified is set to `type=one_time` but this field "
                          "only accepts prices with `type=recurring`.", param=param)
    plan = await front.upstream.call("GET", "/v1/plans/%s" % price_id, kind="price",
                                     id=price_id, param=param)
    return plan, price


def _amount(front, plan, price, quantity):
    if quantity is None:  # metered: nothing up front
        return 0
    if price is not None:
        return front.prices.amount(price, quantity)
    return (plan.get("amount") or 0) * quantity


def _check_matching(plans, param):
    first = plans[0]
    for i, plan in enumerate(plans[1:], 1):
        for field in ("currency", "interval", "interval_count"):
            if plan.get(field) != first.get(field):
                raise StripeError(400, "Currency and interval fields must match across all "
                                  "plans on this subscription. Found mismatch in %s field."
                                  % field.split("_")[0], param=param(i))
        if plan["id"] in [p["id"] for p in plans[:i]]:
            raise StripeError(400, "Cannot add multiple subscription items with the same "
                              "price: %s" % plan["id"], param=param(i))


def _item_params(raw, i):
    param = "items[%d]" % i
    if not isinstance(raw, dict):
        raise StripeError(400, "Invalid object", param=param)
    if raw.get("price_data"):
        raise StripeError(400, "The local Stripe emulator does not support price_data; create "
                          "a price first.", param=param + "[price_data]")
    price_id = raw.get("price") or raw.get("plan")
    if not price_id:
        raise StripeError(400, "Missing required param: %s[price]." % param,
                          param=param + "[price]")
    quantity = forms.as_int(raw.get("quantity"), param + "[quantity]", minimum=1)
    metadata = forms.as_metadata(raw.get("metadata"), param + "[metadata]")
    return price_id, quantity, metadata


def _quantity(plan, quantity, param):
    """An item's quantity: 1 by default, none for a metered price (given one: a 400)."""
    if plan.get("usage_type") != "metered":
        return 1 if quantity is None else quantity
    if quantity is not None:
        raise StripeError(400, "You cannot set the quantity for metered plans.", param=param)
    return None


def check_single(front, p):
    """`POST /v1/subscriptions` with one item goes to localstripe as it is: refuse a quantity
    on a metered price there too."""
    items = forms.as_list(p.get("items"), "items")
    if len(items) == 1 and isinstance(items[0], dict) and items[0].get("quantity") is not None:
        price = front.prices.by_id.get(items[0].get("price") or items[0].get("plan"))
        if meters.is_metered(price):
            raise StripeError(400, "You cannot set the quantity for metered plans.",
                              param="items[0][quantity]")


async def create(front, data, key=None):
    """Create a subscription from localstripe-style params (`items[i][plan]` or `[price]`):
    one item goes to localstripe as it is; with more, localstripe gets the first and the front
    keeps the rest. Returns the subscription, patched."""
    items = forms.as_list(data.get("items"), "items")
    if len(items) <= 1:
        sub = await front.upstream.call("POST", "/v1/subscriptions", data, key=key)
        front.webhooks.note(sub.get("id"), now())
        return front.patch(sub)
    customer = forms.require(data, "customer")
    wanted = [_item_params(raw, i) for i, raw in enumerate(items)]
    await front.upstream.call("GET", "/v1/customers/%s" % customer, kind="customer",
                              id=customer, param="customer")
    plans = [await _plan(front, price_id, "items[%d][price]" % i)
             for i, (price_id, _, _) in enumerate(wanted)]
    _check_matching([plan for plan, _ in plans], lambda i: "items[%d][price]" % i)
    wanted = [(price_id, _quantity(plan, quantity, "items[%d][quantity]" % i), metadata)
              for i, ((plan, _), (price_id, quantity, metadata)) in enumerate(zip(plans, wanted))]
    first = dict(items[0])
    first.pop("price", None)
    first["plan"] = wanted[0][0]
    data = dict(data, items=[first])
    invoiced = not any(data.get(k) not in (None, "", "false")
                       for k in ("trial_end", "trial_period_days", "trial_from_plan"))
    async with front.lock("customer:" + customer):
        pending = []
        try:
            if invoiced:  # localstripe's first invoice takes in the customer's pending items
                for (plan, price), (_, quantity, _) in zip(plans[1:], wanted[1:]):
                    pending.append(await front.upstream.call("POST", "/v1/invoiceitems", {
                        "customer": customer, "currency": plan["currency"], "plan": plan["id"],
                        "amount": _amount(front, plan, price, quantity),
                        "description": "%d × %s" % (quantity or 0, plan.get("nickname")
                                                    or plan["id"])}, key=key))
            sub = await front.upstream.call("POST", "/v1/subscriptions", data, key=key)
        except StripeError:
            for ii in pending:
                await front.upstream.call("DELETE", "/v1/invoiceitems/" + ii["id"], key=key)
            raise
        # localstripe sends its customer.subscription.created a second later: the items are
        # kept before that, so the relayed event lists them all.
        for (plan, _), (_, quantity, metadata) in zip(plans[1:], wanted[1:]):
            front.items.add(sub["id"], _raw_item(plan, quantity, metadata))
    front.webhooks.note(sub["id"], now())
    return front.patch(sub)


# -- routes ----------------------------------------------------------------------------------

async def _subscription(front, sub_id, param=None):
    return front.patch(await front.upstream.call("GET", "/v1/subscriptions/%s" % sub_id,
                                                 kind="subscription", id=sub_id, param=param))


def _find(sub, item_id):
    return next(i for i in sub["items"]["data"] if i["id"] == item_id)


async def add_item(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    forms.reject_unknown(p, _ADD)
    sub_id = forms.as_str(forms.require(p, "subscription"), "subscription")
    if p.get("price_data"):
        raise StripeError(400, "The local Stripe emulator does not support price_data; create "
                          "a price first.", param="price_data")
    price_id = forms.as_str(p.get("price") or p.get("plan"), "price")
    if not price_id:
        raise StripeError(400, "Missing required param: price.", param="price")
    quantity = forms.as_int(p.get("quantity"), "quantity", minimum=1)
    metadata = forms.as_metadata(p.get("metadata"))
    async with front.lock("subscription:" + sub_id):
        sub = await _subscription(front, sub_id, param="subscription")
        if sub["status"] in _ENDED:
            raise StripeError(400, "You cannot update a subscription that is `%s`."
                              % sub["status"], param="subscription")
        plan, _ = await _plan(front, price_id, "price")
        quantity = _quantity(plan, quantity, "quantity")
        before = copy.deepcopy(sub["items"])
        _check_matching([i["plan"] for i in before["data"]] + [plan],
                        lambda i: "price")
        item = _raw_item(plan, quantity, metadata)
        front.items.add(sub_id, item)
        sub = await _subscription(front, sub_id)
        front.webhooks.emit("customer.subscription.updated", copy.deepcopy(sub),
                            previous_attributes={"items": before}, chain=sub_id,
                            created=front.webhooks.next_created(sub_id))
    return json_response(_find(sub, item["id"]))


async def list_items(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    sub_id = forms.as_str(forms.require(p, "subscription"), "subscription")
    sub = await _subscription(front, sub_id, param="subscription")
    return json_response(paginate(sub["items"]["data"], p,
                                  "/v1/subscription_items?subscription=" + sub_id))


async def retrieve_item(request, proxy):
    front = request.app["front"]
    sub_id = front.items.owner.get(request.match_info["id"])
    if sub_id is None:
        return await proxy(request)
    return json_response(_find(await _subscription(front, sub_id), request.match_info["id"]))


async def delete_item(request, proxy):
    front = request.app["front"]
    item_id = request.match_info["id"]
    sub_id = front.items.owner.get(item_id)
    if sub_id is None:
        return await proxy(request)
    async with front.lock("subscription:" + sub_id):
        before = copy.deepcopy((await _subscription(front, sub_id))["items"])
        front.items.remove(item_id)
        sub = await _subscription(front, sub_id)
        front.webhooks.emit("customer.subscription.updated", copy.deepcopy(sub),
                            previous_attributes={"items": before}, chain=sub_id,
                            created=front.webhooks.next_created(sub_id))
    return json_response({"id": item_id, "object": "subscription_item", "deleted": True})


def check_update(front, sub_id, p):
    """localstripe replaces its one item on an update with `items`: refuse that on a
    subscription with items kept by the front (use /v1/subscription_items instead)."""
    if front.items.extra.get(sub_id) and p.get("items") not in (None, ""):
        raise StripeError(400, "The local Stripe emulator cannot update `items` of a "
                          "subscription with several items: use /v1/subscription_items.",
                          param="items")


def setup(app, proxy):
    app.router.add_post("/v1/subscription_items", add_item)
    app.router.add_get("/v1/subscription_items", list_items)
    app.router.add_get("/v1/subscription_items/{id}",
                       lambda request: retrieve_item(request, proxy))
    app.router.add_delete("/v1/subscription_items/{id}",
                          lambda request: delete_item(request, proxy))
