"""Bring localstripe's (2017-era) objects up to the current API shape async-stripe expects.

`patch(value, price_for_plan)` walks any JSON value and patches every dict by its `object`,
in place. Only fields async-stripe requires (or that current Stripe clearly has) are added;
one is removed: a payment intent's `invoice`, gone from the current API.
"""
import time


def _customer(c, ctx):
    if "balance" not in c:
        c["balance"] = -(c.get("account_balance") or 0)
    c.setdefault("tax_exempt", "none")
    c.setdefault("invoice_prefix", None)


def _plan(p, ctx):
    if p.get("usage_type") == "metered":
        # localstripe holds a free mirror of a metered price (prices.py): show the price
        price = ctx(p)
        p.update(amount=price.get("unit_amount"), billing_scheme=price.get("billing_scheme"),
                 tiers_mode=price.get("tiers_mode"),
                 meter=(price.get("recurring") or {}).get("meter"))
        p["amount_decimal"] = None if p["amount"] is None else str(p["amount"])
    if p.get("tiers"):
        p["tiers"] = [_tier(t) for t in p["tiers"]]
    p.setdefault("amount_decimal", None if p.get("amount") is None else str(p["amount"]))
    p.setdefault("meter", None)


def _metered(plan):
    return isinstance(plan, dict) and plan.get("usage_type") == "metered"


def _tier(t):
    def num(v):
        return None if v in (None, "", "inf") else int(v)
    out = {"up_to": num(t.get("up_to")), "unit_amount": num(t.get("unit_amount")),
           "flat_amount": num(t.get("flat_amount"))}
    out["unit_amount_decimal"] = None if out["unit_amount"] is None else str(out["unit_amount"])
    out["flat_amount_decimal"] = None if out["flat_amount"] is None else str(out["flat_amount"])
    return out


def _product(p, ctx):
    p.setdefault("images", [])
    p.setdefault("marketing_features", [])
    p.setdefault("updated", p.get("created"))
    for key in ("default_price", "tax_code", "unit_label", "package_dimensions"):
        p.setdefault(key, None)


def _subscription(s, ctx):
    now = int(time.time())
    items = (s.get("items") or {}).get("data") or []
    first_plan = items[0].get("plan") if items else None
    # localstripe never reports a trial: a subscription created with a future trial_end stays
    # "incomplete" with no invoice.
    trialing = (s.get("status") == "incomplete" and not s.get("latest_invoice")
                and (s.get("trial_end") or 0) > now)
    if trialing:
        s["status"] = "trialing"
        s["trial_start"] = s.get("trial_start") or s.get("start_date")
        s["current_period_end"] = s["trial_end"]
    if s.get("status") == "canceled" and not s.get("canceled_at"):
        s["canceled_at"] = s.get("ended_at")
    s.setdefault("automatic_tax", {"enabled": False, "liability": None, "disabled_reason": None})
    if s.get("billing_cycle_anchor") is None:
        s["billing_cycle_anchor"] = s.get("start_date")
    s.setdefault("billing_mode", {"type": "classic", "flexible": None, "updated_at": None})
    s.setdefault("billing_schedules", [])
    s.setdefault("collection_method", "charge_automatically")
    if "currency" not in s:
        s["currency"] = (first_plan or {}).get("currency", "usd")
    s.setdefault("discounts", [])
    s.setdefault("invoice_settings", {"account_tax_ids": None, "issuer": {"type": "self"}})
    s.setdefault("default_payment_method", None)
    s.setdefault("cancellation_details", {
        "comment": None, "feedback": None,
        "reason": "cancellation_requested" if s.get("status") == "canceled" else None})
    s.setdefault("pending_update", None)
    for item in items:
        item.setdefault("current_period_start", s.get("current_period_start"))
        item.setdefault("current_period_end", s.get("current_period_end"))
        item.setdefault("discounts", [])
        item.setdefault("subscription", s.get("id"))
        if "price" not in item and isinstance(item.get("plan"), dict):
            item["price"] = ctx(item["plan"])
        if _metered(item.get("plan")):
            item.pop("quantity", None)  # a metered item has none: its usage is billed
            if s.get("quantity") is not None and len(items) == 1:
                s["quantity"] = None


def _invoice(i, ctx):
    due, paid = i.get("amount_due") or 0, i.get("amount_paid") or 0
    i.setdefault("amount_overpaid", 0)
    i.setdefault("amount_remaining", max(due - paid, 0))
    i.setdefault("amount_shipping", 0)
    i.setdefault("automatic_tax", {"enabled": False, "liability": None, "status": None,
                                   "disabled_reason": None, "provider": None})
    i.setdefault("discounts", [])
    i.setdefault("issuer", {"type": "self"})
    i.setdefault("payment_settings", {"default_mandate": None, "payment_method_options": None,
                                      "payment_method_types": None})
    i.setdefault("post_payment_credit_notes_amount", 0)
    i.setdefault("pre_payment_credit_notes_amount", 0)
    sub = i.get("subscription")
    if "parent" not in i:
        i["parent"] = None if not sub else {
            "type": "subscription_details", "quote_details": None,
            "subscription_details": {"subscription": sub if isinstance(sub, str) else sub["id"],
                                     "metadata": None, "subscription_proration_date": None}}
    for line in (i.get("lines") or {}).get("data") or []:
        if _metered(line.get("plan")) and line.get("amount") == 0:
            line["quantity"] = 0  # a metered price's first invoice: no usage yet
        line.setdefault("discountable", True)
        line.setdefault("discounts", [])
        line.setdefault("subtotal", line.get("amount", 0))
        line.setdefault("metadata", {})
        line.setdefault("livemode", False)


def _payment_intent(p, ctx):
    p.setdefault("amount_capturable", 0)
    p.setdefault("amount_received", p.get("amount", 0) if p.get("status") == "succeeded" else 0)
    p.setdefault("confirmation_method", "automatic")
    p.setdefault("payment_method_types", ["card"])
    # Gone since API 2025-03-31.basil: an invoice_payment links the invoice and its payment
    # intent (invoice_payments.py). localstripe still sets it on an invoice's payment intent.
    p.pop("invoice", None)


def _charge(c, ctx):
    c.setdefault("amount_captured", c.get("amount", 0) if c.get("captured") else 0)
    c.setdefault("billing_details", {"address": None, "email": None, "name": None,
                                     "phone": None})
    c.setdefault("disputed", False)


_PATCHES = {"customer": _customer, "plan": _plan, "product": _product,
            "subscription": _subscription, "invoice": _invoice,
            "payment_intent": _payment_intent, "charge": _charge}


def patch(value, price_for_plan):
    """Patch every localstripe object found in `value` (in place) and return it."""
    if isinstance(value, list):
        for v in value:
            patch(v, price_for_plan)
    elif isinstance(value, dict):
        for v in value.values():
            patch(v, price_for_plan)
        if value.get("deleted") is not True:
            fix = _PATCHES.get(value.get("object"))
            if fix:
                fix(value, price_for_plan)
    return value
