"""`invoice_payment` objects and `invoice_payment.paid` events (API 2025-03-31.basil and later:
payment intents no longer name their invoice; an invoice_payment links the two).

Whenever an invoice with a payment intent is reported paid (localstripe's relayed
invoice.payment_succeeded, the renewals' paid invoices), the front makes the invoice's default
invoice_payment and sends `invoice_payment.paid` after `invoice.paid`. Shape: Stripe's OpenAPI
fixtures (`invoice_payment`) and async-stripe's InvoicePayment.

    GET /v1/invoice_payments?invoice=&status=&payment[payment_intent]=
    GET /v1/invoice_payments/{id}
"""
import copy

from common import expand_of, new_id, now, paginate, params
from errors import json_response, no_such


class InvoicePayments:
    def __init__(self):
        self.by_id = {}  # inpay_... -> invoice_payment, oldest first
        self._by_invoice = {}  # in_... -> inpay_...

    def reset(self):
        self.by_id.clear()
        self._by_invoice.clear()

    def paid(self, invoice, payment_intent):
        """The invoice's default invoice_payment, paid by `payment_intent` (one per invoice:
        an invoice paid again, e.g. an event resent by localstripe, keeps its id)."""
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or now()
        existing = self.by_id.get(self._by_invoice.get(invoice["id"]))
        if existing is not None:
            return existing
        payment = {
            "id": new_id("inpay_"), "object": "invoice_payment",
            "amount_paid": invoice.get("amount_paid") or invoice.get("amount_due") or 0,
            "amount_requested": invoice.get("amount_due") or 0,
            "created": (invoice.get("status_transitions") or {}).get("finalized_at")
            or invoice.get("created") or paid_at,
            "currency": invoice.get("currency") or "usd", "invoice": invoice["id"],
            "is_default": True, "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            "status": "paid", "status_transitions": {"canceled_at": None, "paid_at": paid_at}}
        self.by_id[payment["id"]] = payment
        self._by_invoice[invoice["id"]] = payment["id"]
        return payment


def emit_paid(front, invoice, payment_intent=None, **emit):
    """Send invoice_payment.paid for a paid invoice, if a payment intent paid it (its id, or
    the invoice's own `payment_intent` as localstripe renders it). Returns the event or None."""
    if payment_intent is None:
        payment_intent = invoice.get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    if not isinstance(payment_intent, str) or not payment_intent:
        return None
    payment = front.invoice_payments.paid(invoice, payment_intent)
    sub = invoice.get("subscription") or ((invoice.get("parent") or {}).get(
        "subscription_details") or {}).get("subscription")
    return front.webhooks.emit("invoice_payment.paid", copy.deepcopy(payment),
                               about=sub if isinstance(sub, str) else None, **emit)


async def retrieve(request):
    front = request.app["front"]
    payment = front.invoice_payments.by_id.get(request.match_info["id"])
    if payment is None:
        raise no_such("invoice_payment", request.match_info["id"])
    return json_response(copy.deepcopy(payment))


async def list_payments(request):
    front = request.app["front"]
    p = await params(request)
    expand_of(p)
    payments = list(reversed(list(front.invoice_payments.by_id.values())))
    for field in ("invoice", "status"):
        if p.get(field):
            payments = [x for x in payments if x[field] == p[field]]
    wanted = (p.get("payment") or {}) if isinstance(p.get("payment"), dict) else {}
    if wanted.get("payment_intent"):
        payments = [x for x in payments
                    if x["payment"]["payment_intent"] == wanted["payment_intent"]]
    page = paginate(payments, p, "/v1/invoice_payments")
    page["data"] = copy.deepcopy(page["data"])
    return json_response(page)


def setup(app):
    app.router.add_get("/v1/invoice_payments", list_payments)
    app.router.add_get("/v1/invoice_payments/{id}", retrieve)
