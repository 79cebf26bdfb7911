"""Test-only renewals: a billing cycle that is paid, or whose payment fails (localstripe has no
clock: it never renews a subscription nor fails a renewal).

    POST /_test/subscriptions/{id}/renew
    POST /_test/subscriptions/{id}/renewal_failed[?final=true]

The front keeps, per subscription, an overlay (current period, status, latest invoice) that
`apply` lays over every subscription localstripe answers or sends (Front.patch), and the
invoices it made up (served by GET /v1/invoices/{id} and the hosted invoice page).

As on Stripe, a new cycle moves the period forward whether its payment succeeds or fails; a
failed cycle leaves its invoice open, and the next call retries that invoice (same id, one
more attempt) instead of starting another cycle. A paid attempt confirms a payment intent in
localstripe with the default payment method (when there is one) and sends
invoice_payment.paid. Events are created strictly after every event already sent about the
subscription and delivered in order (webhooks.py).
"""
import calendar
import copy
import logging
from datetime import datetime, timezone

import forms
import invoice_payments
import meters
from common import new_id, now
from errors import StripeError, json_response

log = logging.getLogger("stripe_front.renewals")
RETRY_DELAY = 3 * 86400  # next_payment_attempt after a failed attempt that is not the last
FINAL_ATTEMPT = 4  # Stripe's default schedule: the 4th failed attempt marks it unpaid
_RENEWABLE = ("active", "trialing", "past_due", "unpaid")
_ENDED = ("canceled", "incomplete_expired")


def shift(ts, interval, count):
    """`ts` moved `count` intervals forward; months and years keep the day (clamped), in UTC."""
    if interval in ("day", "week"):
        return ts + count * (86400 if interval == "day" else 7 * 86400)
    d = datetime.fromtimestamp(ts, timezone.utc)
    months = d.month - 1 + count * (12 if interval == "year" else 1)
    year, month = d.year + months // 12, months % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


class Renewals:
    def __init__(self):
        self.overlay = {}  # subscription id -> {status, current_period_start/end, ...}
        self.invoices = {}  # in_... -> invoice made up by the front
        self._numbers = {}  # customer -> invoices numbered so far

    def reset(self):
        self.overlay.clear()
        self.invoices.clear()
        self._numbers.clear()

    def apply(self, value):
        """Lay the overlay over every subscription in `value` (already patched by shapes)."""
        if isinstance(value, list):
            for v in value:
                self.apply(v)
        elif isinstance(value, dict):
            for v in value.values():
                self.apply(v)
            state = self.overlay.get(value.get("id"))
            if state and value.get("object") == "subscription" and not value.get("deleted"):
                self._apply(value, state)
        return value

    def _apply(self, sub, state):
        if sub.get("status") not in _ENDED:  # a cancellation in localstripe wins
            sub["status"] = state["status"]
        start, end = state["current_period_start"], state["current_period_end"]
        sub["current_period_start"], sub["current_period_end"] = start, end
        for item in (sub.get("items") or {}).get("data") or []:
            item["current_period_start"], item["current_period_end"] = start, end
        invoice = self.invoices.get(state.get("latest_invoice"))
        if invoice is not None:
            expanded = isinstance(sub.get("latest_invoice"), dict)
            sub["latest_invoice"] = copy.deepcopy(invoice) if expanded else invoice["id"]

    def number(self, customer):
        n = self._numbers[customer] = self._numbers.get(customer, 0) + 1
        prefix = "".join(c for c in customer[4:] if c.isalnum())[:8].upper() or "LOCAL"
        return "%s-%04d" % (prefix, n)


# -- one cycle -------------------------------------------------------------------------------

async def _subscription(front, sub_id):
    return front.patch(await front.upstream.call("GET", "/v1/subscriptions/" + sub_id,
                                                 kind="subscription", id=sub_id))


def _check(sub, allowed):
    if sub["status"] not in allowed:
        raise StripeError(400, "This subscription is %s: it has no renewal to simulate."
                          % sub["status"], param="subscription")
    if sub.get("cancel_at_period_end"):
        raise StripeError(400, "This subscription is set to cancel at period end: it would "
                          "end, not renew.", param="subscription")


def _next_period(front, sub, item):
    """The period after the current one, counted from the billing cycle anchor (Stripe keeps
    the anchor's day of month); the anchor of a subscription leaving its trial is trial end."""
    state = front.renewals.overlay.get(sub["id"]) or {}
    start = sub["current_period_end"]
    anchor = state.get("anchor")
    if anchor is None:
        anchor = start if sub["status"] == "trialing" else (
            sub.get("billing_cycle_anchor") or sub.get("start_date") or sub["current_period_start"])
    plan = item.get("plan") or {}
    interval, count = plan.get("interval") or "month", plan.get("interval_count") or 1
    k = 1
    while shift(anchor, interval, k * count) <= start:
        k += 1
    return anchor, start, shift(anchor, interval, k * count)


def _amount(front, item, quantity):
    price = item.get("price") or {}
    kept = front.prices.by_id.get(price.get("id"))
    if kept is not None:
        return front.prices.amount(kept, quantity)
    return (price.get("unit_amount") or (item.get("plan") or {}).get("amount") or 0) * quantity


def _line(front, sub, item, inv_id, period, usage_period):
    """The invoice line of an item: a licensed one pays the new period ahead; a metered one
    pays, in arrears, the meter's usage over the period just ended (meters.py)."""
    price = item.get("price") or {}
    if meters.is_metered(front.prices.by_id.get(price.get("id"))):
        period = usage_period
        quantity = front.meters.usage(price, sub["customer"], *usage_period)
    else:
        quantity = item.get("quantity") or 1
    amount = _amount(front, item, quantity)
    currency = price.get("currency") or sub.get("currency") or "usd"
    return {
        "id": new_id("il_", 14), "object": "line_item", "amount": amount, "currency": currency,
        "description": "%d × %s" % (quantity, (item.get("plan") or {}).get("name")
                                    or price.get("nickname") or price.get("id")),
        "discount_amounts": [], "discountable": True, "discounts": [], "invoice": inv_id,
        "livemode": False, "metadata": {},
        "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                   "subscription_item_details": {
                       "invoice_item": None, "proration": False,
                       "proration_details": {"credited_items": None},
                       "subscription": sub["id"], "subscription_item": item.get("id")}},
        "period": {"start": period[0], "end": period[1]}, "pretax_credit_amounts": [],
        "price": copy.deepcopy(price),
        "pricing": {"type": "price_details",
                    "price_details": {"price": price.get("id"), "product": price.get("product")},
                    "unit_amount_decimal": price.get("unit_amount_decimal")},
        "quantity": quantity, "subtotal": amount, "taxes": []}


async def _new_invoice(front, sub, items, period, usage_period):
    """A current-API subscription_cycle invoice, open and not yet attempted, one line per
    item. Like Stripe, the invoice's period_start/end look back on the period just ended
    (`usage_period`); its licensed lines cover the new one (`period`), its metered lines the
    usage of the period just ended."""
    customer = await front.upstream.call("GET", "/v1/customers/" + sub["customer"])
    inv_id = new_id("in_", 14)
    lines = [_line(front, sub, item, inv_id, period, usage_period) for item in items]
    amount = sum(line["amount"] for line in lines)
    currency = lines[0]["currency"]
    created = now()
    invoice = {
        "id": inv_id, "object": "invoice", "account_country": "US",
        "account_name": "Local Stripe", "account_tax_ids": None, "amount_due": amount,
        "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": amount,
        "amount_shipping": 0, "application": None, "attempt_count": 0, "attempted": False,
        "auto_advance": True,
        "automatic_tax": {"enabled": False, "liability": None, "status": None,
                          "disabled_reason": None, "provider": None},
        "automatically_finalizes_at": None, "billing_reason": "subscription_cycle",
        "collection_method": sub.get("collection_method") or "charge_automatically",
        "created": created, "currency": currency, "custom_fields": None,
        "customer": sub["customer"], "customer_address": None,
        "customer_email": customer.get("email"), "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"), "customer_shipping": None,
        "customer_tax_exempt": "none", "customer_tax_ids": [], "default_payment_method": None,
        "default_source": None, "default_tax_rates": [], "description": None, "discounts": [],
        "due_date": None, "effective_at": created, "ending_balance": 0, "footer": None,
        "from_invoice": None, "hosted_invoice_url": front.base_url + "/invoices/" + inv_id,
        "invoice_pdf": None, "issuer": {"type": "self"}, "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": lines, "has_more": False,
                  "total_count": len(lines), "url": "/v1/invoices/%s/lines" % inv_id},
        "livemode": False, "metadata": {}, "next_payment_attempt": None,
        "number": front.renewals.number(sub["customer"]), "on_behalf_of": None,
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"metadata": copy.deepcopy(sub.get("metadata")),
                                            "subscription": sub["id"],
                                            "subscription_proration_date": None}},
        "payment_settings": {"default_mandate": None, "payment_method_options": None,
                             "payment_method_types": None},
        "period_start": usage_period[0], "period_end": usage_period[1],
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
        "receipt_number": None, "rendering": None, "shipping_cost": None,
        "shipping_details": None, "starting_balance": 0, "statement_descriptor": None,
        "status": "open",
        "status_transitions": {"finalized_at": created, "marked_uncollectible_at": None,
                               "paid_at": None, "voided_at": None},
        "subtotal": amount, "subtotal_excluding_tax": amount, "test_clock": None,
        "threshold_reason": None, "total": amount, "total_discount_amounts": [],
        "total_excluding_tax": amount, "total_pretax_credit_amounts": [], "total_taxes": [],
        "webhooks_delivered_at": created}
    front.renewals.invoices[inv_id] = invoice
    return invoice


async def _charge(front, sub, invoice):
    """A payment intent for the invoice, confirmed in localstripe with the subscription's (or
    the customer's) default payment method, so that an invoice_payment can link the two (and
    localstripe sends payment_intent.succeeded). None without a payment method or amount."""
    customer = await front.upstream.call("GET", "/v1/customers/" + sub["customer"])
    method = sub.get("default_payment_method") or \
        (customer.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    if not method or not invoice["amount_due"]:
        return None
    try:
        pi = await front.upstream.call("POST", "/v1/payment_intents", {
            "amount": invoice["amount_due"], "currency": invoice["currency"],
            "customer": sub["customer"], "payment_method": method, "confirm": "true"})
    except StripeError as e:  # a test route: the renewal is paid whatever the card says
        log.warning("renewal of %s: no payment intent (%s)", sub["id"], e)
        return None
    return pi["id"] if pi.get("status") == "succeeded" else None


async def _cycle(front, sub_id, paid, final=False):
    """Run one payment attempt: on the open invoice of a failed cycle if there is one, else on
    a new cycle's invoice. Returns the reply body; sends the events in order."""
    sub = await _subscription(front, sub_id)
    _check(sub, _RENEWABLE if paid else ("active", "trialing", "past_due"))
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise StripeError(400, "This subscription has no items.", param="subscription")
    renewals = front.renewals
    state = renewals.overlay.get(sub_id)
    before = {k: copy.deepcopy(sub.get(k)) for k in (
        "status", "current_period_start", "current_period_end", "latest_invoice", "items")}
    if isinstance(before["latest_invoice"], dict):
        before["latest_invoice"] = before["latest_invoice"].get("id")
    invoice = renewals.invoices.get((state or {}).get("open_invoice"))
    if invoice is None:
        anchor, start, end = _next_period(front, sub, items[0])
        invoice = await _new_invoice(front, sub, items, (start, end),
                                     (sub["current_period_start"], start))
        state = renewals.overlay[sub_id] = dict(state or {}, anchor=anchor,
                                                current_period_start=start,
                                                current_period_end=end)
    payment_intent = await _charge(front, sub, invoice) if paid else None
    t = now()
    invoice["attempted"] = True
    if paid:
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0,
                       attempt_count=invoice["attempt_count"] + 1, next_payment_attempt=None,
                       auto_advance=False)
        invoice["status_transitions"]["paid_at"] = t
        state.update(status="active", open_invoice=None)
    else:
        invoice.update(attempt_count=FINAL_ATTEMPT if final else invoice["attempt_count"] + 1,
                       next_payment_attempt=None if final else t + RETRY_DELAY)
        state.update(status="unpaid" if final else "past_due", open_invoice=invoice["id"])
    state["latest_invoice"] = invoice["id"]

    events = []
    for type in (("invoice.paid", "invoice.payment_succeeded") if paid
                 else ("invoice.payment_failed",)):
        events.append(front.webhooks.emit(type, copy.deepcopy(invoice), chain=sub_id,
                                          created=front.webhooks.next_created(sub_id)))
    if payment_intent:
        events.append(invoice_payments.emit_paid(front, invoice, payment_intent, chain=sub_id,
                                                 created=front.webhooks.next_created(sub_id)))
    sub = await _subscription(front, sub_id)
    previous = {}
    if sub["status"] != before["status"]:
        previous["status"] = before["status"]
    if sub["current_period_end"] != before["current_period_end"]:
        previous.update(current_period_start=before["current_period_start"],
                        current_period_end=before["current_period_end"],
                        items=before["items"])
    latest = sub["latest_invoice"]
    if (latest.get("id") if isinstance(latest, dict) else latest) != before["latest_invoice"]:
        previous["latest_invoice"] = before["latest_invoice"]
    if previous:  # a retry that changes nothing sends no customer.subscription.updated
        events.append(front.webhooks.emit(
            "customer.subscription.updated", copy.deepcopy(sub), previous_attributes=previous,
            chain=sub_id, created=front.webhooks.next_created(sub_id)))
    return {"object": "test_renewal", "subscription": sub, "events": [e["id"] for e in events]}


# -- routes ----------------------------------------------------------------------------------

async def _run(request, paid):
    front = request.app["front"]
    sub_id = request.match_info["id"]
    p = forms.parse_query(request.query)
    p.update(forms.parse_body(await request.read()))
    final = forms.as_bool(p.get("final", "false"), "final")
    if paid and final:
        raise StripeError(400, "Received unknown parameter: final", param="final")
    async with front.lock("subscription:" + sub_id):
        return json_response(await _cycle(front, sub_id, paid, final))


async def renew(request):
    return await _run(request, paid=True)


async def renewal_failed(request):
    return await _run(request, paid=False)


def setup(app):
    app.router.add_post("/_test/subscriptions/{id}/renew", renew)
    app.router.add_post("/_test/subscriptions/{id}/renewal_failed", renewal_failed)
