"""Bare HTML pages behind the `url` of Checkout and portal sessions (and the renewals'
`hosted_invoice_url`), for clicking through a demo."""
import html
import time

from aiohttp import web

import checkout
import portal
from errors import StripeError

_STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}button{margin:.2em}"


def _page(title, body, status=200):
    return web.Response(status=status, content_type="text/html", text=(
        "<!doctype html><html><head><meta charset=utf-8><title>%s</title><style>%s</style>"
        "</head><body><h1>%s</h1>%s<p><small>Local Stripe emulator: test mode only."
        "</small></p></body></html>" % (html.escape(title), _STYLE, html.escape(title), body)))


def _link(url, text):
    return '<a href="%s">%s</a>' % (html.escape(url), html.escape(text)) if url else ""


async def checkout_page(request):
    front = request.app["front"]
    session = front.sessions.get(request.match_info["id"])
    if session is None:
        return _page("Unknown Checkout Session", "", status=404)
    checkout._refresh(front, session)
    if session["status"] != "open":
        return _page("Checkout Session %s" % session["status"],
                     "<p>%s</p>" % _link(session["success_url"], "Back to the site"))
    rows = "".join("<li>%s %s</li>" % (
        html.escape(li["description"] or li["price"]),
        "(billed by usage)" if li["quantity"] is None else "x %d" % li["quantity"])
        for li in session["_line_items"])
    total = session["amount_total"]
    amount = "" if total is None else "<p>Total: %.2f %s</p>" % (
        total / 100, html.escape((session["currency"] or "").upper()))
    email = "" if session["customer"] or session["customer_email"] else (
        "<p><label>Email <input type=email name=email></label></p>")
    return _page("Pay (%s)" % session["mode"], (
        "<ul>%s</ul>%s<form method=post>%s"
        "<button name=action value=pay>Pay with test card 4242</button>"
        "<button name=action value=decline>Simulate a declined card</button></form><p>%s</p>"
        % (rows, amount, email, _link(session["cancel_url"], "Cancel and go back"))))


async def checkout_submit(request):
    front = request.app["front"]
    session = front.sessions.get(request.match_info["id"])
    if session is None:
        return _page("Unknown Checkout Session", "", status=404)
    form = await request.post()
    if form.get("action") == "decline":
        return _page("Your card was declined", "<p>%s</p>" % _link(
            "/checkout/pay/" + session["id"], "Try again"), status=402)
    try:
        await checkout.pay(front, session, email=form.get("email") or None)
    except StripeError as e:
        return _page("Payment failed", "<p>%s</p>" % html.escape(str(e)), status=e.status)
    if session["success_url"]:
        raise web.HTTPSeeOther(session["success_url"])
    return _page("Paid", "")


async def portal_page(request):
    front = request.app["front"]
    session = front.portal_sessions.get(request.match_info["id"])
    if session is None:
        return _page("Unknown portal session", "", status=404)
    subs = front.patch(await front.upstream.list_all("/v1/subscriptions",
                                                     query={"customer": session["customer"]}))
    rows = "".join(
        "<li>%s (%s%s) <form method=post action=/portal/%s/cancel style=display:inline>"
        "<input type=hidden name=subscription value=%s>"
        "<button name=at_period_end value=true>Cancel at period end</button>"
        "<button name=at_period_end value=false>Cancel now</button></form></li>"
        % (html.escape(s["id"]), html.escape(s["status"]),
           ", ends at period end" if s.get("cancel_at_period_end") else "",
           html.escape(session["id"]), html.escape(s["id"]))
        for s in subs)
    return _page("Billing portal", "<p>Customer %s</p><ul>%s</ul><p>%s</p>" % (
        html.escape(session["customer"]), rows or "<li>No subscriptions</li>",
        _link(session["return_url"], "Return")))


async def portal_cancel(request):
    front = request.app["front"]
    session = front.portal_sessions.get(request.match_info["id"])
    if session is None:
        return _page("Unknown portal session", "", status=404)
    form = await request.post()
    try:
        await portal.cancel_subscription(front, session, form.get("subscription", ""),
                                         form.get("at_period_end") == "true")
    except StripeError as e:
        return _page("Cancellation failed", "<p>%s</p>" % html.escape(str(e)), status=e.status)
    raise web.HTTPSeeOther("/portal/" + session["id"])


async def invoice_page(request):
    """The `hosted_invoice_url` of the invoices the renewals make up (read only)."""
    invoice = request.app["front"].renewals.invoices.get(request.match_info["id"])
    if invoice is None:
        return _page("Unknown invoice", "", status=404)
    line = invoice["lines"]["data"][0]
    return _page("Invoice %s" % invoice["number"], (
        "<p>%s</p><p>Period: %s to %s</p><p>Amount due: %.2f %s, paid: %.2f</p>"
        "<p>Status: %s (%d payment attempt%s)</p>" % (
            "<br>".join(html.escape(li["description"] or "")
                        for li in invoice["lines"]["data"]), _day(line["period"]["start"]),
            _day(line["period"]["end"]), invoice["amount_due"] / 100,
            html.escape(invoice["currency"].upper()), invoice["amount_paid"] / 100,
            html.escape(invoice["status"]), invoice["attempt_count"],
            "" if invoice["attempt_count"] == 1 else "s")))


def _day(ts):
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def setup(app):
    app.router.add_get("/checkout/pay/{id}", checkout_page)
    app.router.add_post("/checkout/pay/{id}", checkout_submit)
    app.router.add_get("/portal/{id}", portal_page)
    app.router.add_post("/portal/{id}/cancel", portal_cancel)
    app.router.add_get("/invoices/{id}", invoice_page)
