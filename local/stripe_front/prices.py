"""Prices, kept by the front (localstripe has plans only).

A recurring price is mirrored as a localstripe plan with the same id, so localstripe
subscriptions can use the price id as their plan. Products stay in localstripe. A metered
price (`recurring[usage_type]=metered` with an active `recurring[meter]`, meters.py) is
mirrored as a free plan: localstripe's first invoice charges nothing for it, and the renewals
bill the meter's usage at the front's price (renewals.py).
"""
import copy

import forms
from common import expand_of, new_id, now, paginate, params
from errors import StripeError, json_response, no_such

INTERVALS = ("day", "week", "month", "year")
_CREATE = {"active", "billing_scheme", "currency", "currency_options", "custom_unit_amount",
           "expand", "lookup_key", "metadata", "nickname", "product", "product_data",
           "recurring", "tax_behavior", "tiers", "tiers_mode", "transfer_lookup_key",
           "transform_quantity", "unit_amount", "unit_amount_decimal"}
_UPDATE = {"active", "currency_options", "expand", "lookup_key", "metadata", "nickname",
           "tax_behavior", "transfer_lookup_key"}


class Prices:
    def __init__(self):
        self.by_id = {}  # id -> price object (with private "_tiers")

    def reset(self):
        self.by_id.clear()

    def get(self, price_id, param=None):
        price = self.by_id.get(price_id) if isinstance(price_id, str) else None
        if price is None:
            raise no_such("price", price_id, param=param)
        return price

    def price_for_plan(self, plan):
        """The price mirrored by a localstripe plan (synthesized for a plan made directly)."""
        price = self.by_id.get(plan.get("id"))
        if price is not None:
            return public(price)
        return {"id": plan["id"], "object": "price", "active": plan.get("active", True),
                "billing_scheme": plan.get("billing_scheme", "per_unit"),
                "created": plan.get("created"), "currency": plan.get("currency"),
                "custom_unit_amount": None, "livemode": False, "lookup_key": None,
                "metadata": plan.get("metadata") or {}, "nickname": plan.get("nickname"),
                "product": plan.get("product"),
                "recurring": {"interval": plan.get("interval"),
                              "interval_count": plan.get("interval_count", 1), "meter": None,
                              "trial_period_days": plan.get("trial_period_days"),
                              "usage_type": plan.get("usage_type", "licensed")},
                "tax_behavior": "unspecified", "tiers_mode": plan.get("tiers_mode"),
                "transform_quantity": None, "type": "recurring",
                "unit_amount": plan.get("amount"),
                "unit_amount_decimal": None if plan.get("amount") is None
                else str(plan["amount"])}

    def amount(self, price, quantity):
        """Amount for `quantity` units, per_unit or tiered (volume / graduated)."""
        if price["billing_scheme"] == "per_unit":
            return (price["unit_amount"] or 0) * quantity
        tiers = price["_tiers"]
        if price["tiers_mode"] == "volume":
            for t in tiers:
                if t["up_to"] is None or quantity <= t["up_to"]:
                    return (t["unit_amount"] or 0) * quantity + (t["flat_amount"] or 0)
        total, floor = 0, 0
        for t in tiers:
            if quantity <= floor:
                break
            top = quantity if t["up_to"] is None else min(quantity, t["up_to"])
            total += (t["unit_amount"] or 0) * (top - floor) + (t["flat_amount"] or 0)
            floor = top
        return total

    def take_lookup_key(self, key, transfer, except_id=None):
        for other in self.by_id.values():
            if other["lookup_key"] == key and other["id"] != except_id:
                if not transfer:
                    raise StripeError(400, "A price (`%s`) already uses that lookup key."
                                      % other["id"], param="lookup_key")
                other["lookup_key"] = None


def public(price, tiers=False):
    out = {k: copy.deepcopy(v) for k, v in price.items() if not k.startswith("_")}
    if tiers and price["billing_scheme"] == "tiered":
        out["tiers"] = copy.deepcopy(price["_tiers"])
    return out


async def render(front, price, expand, prefix=""):
    """Public price; `<prefix>product` in expand inlines the product, `<prefix>tiers` the tiers."""
    out = public(price, tiers=prefix + "tiers" in expand)
    if prefix + "product" in expand:
        out["product"] = await front.product(out["product"])
    return out


def _parse_tiers(raw):
    tiers = []
    for i, t in enumerate(forms.as_list(raw, "tiers")):
        if not isinstance(t, dict) or "up_to" not in t:
            raise StripeError(400, "Missing required param: tiers[%d][up_to]." % i,
                              param="tiers[%d][up_to]" % i)
        up_to = None if t["up_to"] == "inf" else forms.as_int(t["up_to"], "tiers[%d][up_to]" % i, 1)
        unit = forms.as_int(t.get("unit_amount"), "tiers[%d][unit_amount]" % i, 0)
        flat = forms.as_int(t.get("flat_amount"), "tiers[%d][flat_amount]" % i, 0)
        tiers.append({"up_to": up_to, "unit_amount": unit, "flat_amount": flat,
                      "unit_amount_decimal": None if unit is None else str(unit),
                      "flat_amount_decimal": None if flat is None else str(flat)})
    if not tiers or tiers[-1]["up_to"] is not None:
        raise StripeError(400, "The last tier must have `up_to` set to `inf`.", param="tiers")
    return tiers


def _check_meter(front, recurring):
    """A metered price bills a Billing Meter (meters.py): one that exists and is active."""
    meter_id = forms.as_str(recurring["meter"], "recurring[meter]") or None
    recurring["meter"] = meter_id
    if recurring["usage_type"] != "metered":
        if meter_id:
            raise StripeError(400, "`recurring[meter]` can only be set on a price with "
                              "`recurring[usage_type]=metered`.", param="recurring[meter]")
        return
    if not meter_id:
        raise StripeError(400, "Missing required param: recurring[meter]. A metered price "
                          "needs the billing meter that tracks its usage.",
                          param="recurring[meter]")
    if front.meters.get(meter_id, param="recurring[meter]")["status"] != "active":
        raise StripeError(400, "You can't attach a deactivated meter to a price.",
                          param="recurring[meter]")


async def create_price(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    forms.reject_unknown(p, _CREATE)
    currency = forms.as_str(forms.require(p, "currency"), "currency").lower()
    scheme = forms.as_enum(p.get("billing_scheme", "per_unit"), "billing_scheme",
                           ("per_unit", "tiered"))
    tiers, tiers_mode, unit_amount = None, None, None
    if scheme == "tiered":
        tiers_mode = forms.as_enum(forms.require(p, "tiers_mode"), "tiers_mode",
                                   ("graduated", "volume"))
        tiers = _parse_tiers(forms.require(p, "tiers"))
    else:
        raw = p.get("unit_amount", p.get("unit_amount_decimal"))
        if raw is None:
            raise StripeError(400, "Missing required param: unit_amount.", param="unit_amount")
        unit_amount = forms.as_int(raw, "unit_amount", minimum=0)
    recurring = None
    if p.get("recurring") not in (None, ""):
        r = p["recurring"]
        if not isinstance(r, dict):
            raise StripeError(400, "Invalid object", param="recurring")
        recurring = {
            "interval": forms.as_enum(forms.require(r, "interval", "recurring[interval]"),
                                      "recurring[interval]", INTERVALS),
            "interval_count": forms.as_int(r.get("interval_count", 1),
                                           "recurring[interval_count]", minimum=1),
            "meter": r.get("meter"),
            "trial_period_days": forms.as_int(r.get("trial_period_days"),
                                              "recurring[trial_period_days]", minimum=0),
            "usage_type": forms.as_enum(r.get("usage_type", "licensed"), "recurring[usage_type]",
                                        ("licensed", "metered")),
        }
        _check_meter(front, recurring)
    lookup_key = forms.as_str(p.get("lookup_key"), "lookup_key") or None
    transfer = forms.as_bool(p.get("transfer_lookup_key"), "transfer_lookup_key")
    active = forms.as_bool(p.get("active", "true"), "active")
    tax_behavior = forms.as_enum(p.get("tax_behavior", "unspecified"), "tax_behavior",
                                 ("inclusive", "exclusive", "unspecified"))
    metadata = forms.as_metadata(p.get("metadata"))
    nickname = forms.as_str(p.get("nickname"), "nickname") or None
    key = request["api_key"]

    if p.get("product") and p.get("product_data"):
        raise StripeError(400, "You may only specify one of these parameters: product, "
                          "product_data.", param="product")
    if p.get("product"):
        product_id = forms.as_str(p["product"], "product")
        await front.product(product_id, param="product")
    elif isinstance(p.get("product_data"), dict):
        pd = p["product_data"]
        forms.require(pd, "name", "product_data[name]")
        data = {k: pd[k] for k in ("id", "name", "active", "metadata", "statement_descriptor")
                if k in pd}
        product_id = (await front.upstream.call("POST", "/v1/products", data, key=key))["id"]
    else:
        raise StripeError(400, "You must specify either `product` or `product_data` when "
                          "creating a price.", param="product")
    if lookup_key:
        front.prices.take_lookup_key(lookup_key, transfer)  # checked again below, after awaits

    price_id = new_id("price_")
    if recurring:
        plan = {"id": price_id, "product": product_id, "currency": currency,
                "interval": recurring["interval"], "interval_count": recurring["interval_count"],
                "usage_type": recurring["usage_type"], "billing_scheme": scheme,
                "active": active, "nickname": nickname, "metadata": metadata or None}
        if recurring["usage_type"] == "metered":
            # localstripe would bill it like a licensed one (quantity 1) on the first
            # invoice: its mirror is free; renewals.py bills the usage from the front's price.
            plan.update(billing_scheme="per_unit", amount=0)
        elif scheme == "tiered":
            plan["tiers_mode"] = tiers_mode
            plan["tiers"] = [{"up_to": "inf" if t["up_to"] is None else t["up_to"],
                              "unit_amount": t["unit_amount"] or 0,
                              "flat_amount": t["flat_amount"] or 0} for t in tiers]
        else:
            plan["amount"] = unit_amount
        await front.upstream.call("POST", "/v1/plans", plan, key=key)
    if lookup_key:
        front.prices.take_lookup_key(lookup_key, transfer)
    price = {
        "id": price_id, "object": "price", "active": active, "billing_scheme": scheme,
        "created": now(), "currency": currency, "custom_unit_amount": None, "livemode": False,
        "lookup_key": lookup_key, "metadata": metadata, "nickname": nickname,
        "product": product_id, "recurring": recurring, "tax_behavior": tax_behavior,
        "tiers_mode": tiers_mode, "transform_quantity": None,
        "type": "recurring" if recurring else "one_time", "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
        "_tiers": tiers,
    }
    front.prices.by_id[price_id] = price
    front.webhooks.emit("price.created", public(price))
    return json_response(await render(front, price, expand))


async def retrieve_price(request):
    front = request.app["front"]
    p = await params(request)
    price = front.prices.get(request.match_info["id"])
    return json_response(await render(front, price, expand_of(p)))


async def update_price(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    forms.reject_unknown(p, _UPDATE)
    price = front.prices.get(request.match_info["id"])
    changes = {}
    if "active" in p:
        changes["active"] = forms.as_bool(p["active"], "active")
    if "nickname" in p:
        changes["nickname"] = forms.as_str(p["nickname"], "nickname") or None
    if "tax_behavior" in p:
        changes["tax_behavior"] = forms.as_enum(p["tax_behavior"], "tax_behavior",
                                                ("inclusive", "exclusive", "unspecified"))
    if "metadata" in p:
        changes["metadata"] = forms.merge_metadata(price["metadata"], p["metadata"])
    if "lookup_key" in p:
        changes["lookup_key"] = forms.as_str(p["lookup_key"], "lookup_key") or None
        if changes["lookup_key"]:
            front.prices.take_lookup_key(changes["lookup_key"],
                                         forms.as_bool(p.get("transfer_lookup_key"),
                                                       "transfer_lookup_key"),
                                         except_id=price["id"])
    if price["type"] == "recurring" and ("active" in changes or "nickname" in changes):
        plan = {k: changes[k] for k in ("active", "nickname") if k in changes}
        await front.upstream.call("POST", "/v1/plans/" + price["id"], plan,
                                  key=request["api_key"])
    previous = {k: price[k] for k in changes if price[k] != changes[k]}
    price.update(changes)
    if previous:
        front.webhooks.emit("price.updated", public(price), previous_attributes=previous)
    return json_response(await render(front, price, expand))


async def list_prices(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    items = list(reversed(list(front.prices.by_id.values())))
    if "active" in p:
        active = forms.as_bool(p["active"], "active")
        items = [x for x in items if x["active"] == active]
    for field in ("product", "currency"):
        if p.get(field):
            items = [x for x in items if x[field] == p[field]]
    if p.get("type"):
        forms.as_enum(p["type"], "type", ("one_time", "recurring"))
        items = [x for x in items if x["type"] == p["type"]]
    if "lookup_keys" in p:
        keys = set(forms.as_list(p["lookup_keys"], "lookup_keys"))
        items = [x for x in items if x["lookup_key"] in keys]
    recurring = p.get("recurring")
    if isinstance(recurring, dict):
        for field in ("interval", "meter", "usage_type"):
            if recurring.get(field):
                items = [x for x in items
                         if (x["recurring"] or {}).get(field) == recurring[field]]
    page = paginate(items, p, "/v1/prices")
    page["data"] = [await render(front, x, expand, prefix="data.") for x in page["data"]]
    return json_response(page)


def setup(app):
    app.router.add_post("/v1/prices", create_price)
    app.router.add_get("/v1/prices", list_prices)
    app.router.add_get("/v1/prices/{id}", retrieve_price)
    app.router.add_post("/v1/prices/{id}", update_price)
