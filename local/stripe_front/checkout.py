"""Checkout Sessions (kept by the front) and the test-only endpoints that pay, fail or expire them.

Paying a session uses localstripe for real: a customer (none for a guest: payment mode with
`customer_creation` if_required, the default), a test card attached as the default payment
method, then a subscription (plan = price id; several items: subscription_items.py) or a
confirmed payment intent. A metered price (meters.py) is a line item without quantity: its
subscription item has none either, and the first invoice charges nothing for it.
"""
import copy
import re

import forms
import meters
import prices
import promotions
import subscription_items
from common import expand_of, new_id, now, paginate, params
from errors import StripeError, card_declined, json_response, no_such

MODES = ("payment", "setup", "subscription")
_KNOWN = {
    "adaptive_pricing", "after_expiration", "allow_promotion_codes", "automatic_tax",
    "billing_address_collection", "branding_settings", "cancel_url", "client_reference_id",
    "consent_collection", "currency", "custom_fields", "custom_text", "customer",
    "customer_account", "customer_creation", "customer_email", "customer_update", "discounts",
    "excluded_payment_method_types", "expand", "expires_at", "invoice_creation", "line_items",
    "locale", "metadata", "mode", "name_collection", "optional_items", "origin_context",
    "payment_intent_data", "payment_method_collection", "payment_method_configuration",
    "payment_method_data", "payment_method_options", "payment_method_types", "permissions",
    "phone_number_collection", "redirect_on_completion", "return_url",
    "saved_payment_method_options", "setup_intent_data", "shipping_address_collection",
    "shipping_options", "submit_type", "subscription_data", "success_url", "tax_id_collection",
    "ui_mode", "wallet_options"}
_LOCALE = re.compile(r"^(auto|[a-z]{2}(-[A-Z0-9]{2,3})?)$")


def _session(request):
    front = request.app["front"]
    sid = request.match_info["id"]
    session = front.sessions.get(sid)
    if session is None:
        raise no_such("checkout.session", sid)
    _refresh(front, session)
    return front, session


def _refresh(front, session):
    """An open session past its expires_at expires (and says so), as on Stripe."""
    if session["status"] == "open" and session["expires_at"] <= now():
        _expire(front, session)


def _expire(front, session):
    if session["status"] != "open":
        raise StripeError(400, "Only Checkout Sessions with a status in [\"open\"] can be "
                          "expired.", param="session")
    session.update(status="expired", url=None)
    front.webhooks.emit("checkout.session.expired", public(session))


def public(session):
    return {k: copy.deepcopy(v) for k, v in session.items() if not k.startswith("_")}


def _amount(front, price, quantity):
    """A metered price (no quantity) costs nothing up front: its usage is billed later."""
    return 0 if quantity is None else front.prices.amount(price, quantity)


async def _line_items(front, session, expand=(), prefix=""):
    items = []
    for li in session["_line_items"]:
        price = front.prices.get(li["price"])
        amount = _amount(front, price, li["quantity"])
        items.append({
            "id": li["id"], "object": "item", "amount_discount": 0, "amount_subtotal": amount,
            "amount_tax": 0, "amount_total": amount, "currency": price["currency"],
            "description": li["description"],
            "price": await prices.render(front, price, expand, prefix + "price."),
            "quantity": li["quantity"]})
    return items


async def render(front, session, expand):
    out = public(session)
    if "line_items" in expand or any(e.startswith("line_items.") for e in expand):
        out["line_items"] = {"object": "list", "has_more": False,
                             "url": "/v1/checkout/sessions/%s/line_items" % session["id"],
                             "data": await _line_items(front, session, expand,
                                                       "line_items.data.")}
    for field, path in (("subscription", "/v1/subscriptions/"), ("customer", "/v1/customers/"),
                        ("payment_intent", "/v1/payment_intents/"), ("invoice", "/v1/invoices/")):
        if field in expand and isinstance(out.get(field), str):
            out[field] = front.patch(await front.upstream.call("GET", path + out[field]))
    return out


async def _validated_line_items(front, p, mode):
    raw = p.get("line_items")
    if mode == "setup":
        if raw:
            raise StripeError(400, "You cannot pass `line_items` in `setup` mode.",
                              param="line_items")
        return [], None
    if not raw:
        raise StripeError(400, "Missing required param: line_items.", param="line_items")
    if not isinstance(raw, list):
        raise StripeError(400, "Invalid array", param="line_items")
    items, currency = [], None
    for i, li in enumerate(raw):
        param = "line_items[%d]" % i
        if not isinstance(li, dict):
            raise StripeError(400, "Invalid object", param=param)
        if li.get("price_data"):
            raise StripeError(400, "The local Stripe emulator does not support price_data; "
                              "create a price first.", param=param + "[price_data]")
        price_id = forms.require(li, "price", param + "[price]")
        price = front.prices.get(price_id, param=param + "[price]")
        if not price["active"]:
            raise StripeError(400, "The price specified is inactive. This field only accepts "
                              "active prices.", param=param + "[price]")
        if mode == "subscription" and price["type"] != "recurring":
            raise StripeError(400, "You specified `subscription` mode but `%s` is a one-time "
                              "price. Subscription mode needs recurring prices." % price_id,
                              param=param + "[price]")
        if mode == "payment" and price["type"] == "recurring":
            raise StripeError(400, "You specified `payment` mode but passed a recurring price. "
                              "Either switch to `subscription` mode or use only one-time "
                              "prices.", param=param + "[price]")
        if meters.is_metered(price):  # usage is billed at renewal, not bought up front
            if "quantity" in li:
                raise StripeError(400, "Quantity should not be specified where usage_type is "
                                  "`metered`. Remove quantity from `%s`" % param,
                                  param=param + "[quantity]")
            quantity = None
        else:
            quantity = forms.as_int(forms.require(li, "quantity", param + "[quantity]"),
                                    param + "[quantity]", minimum=1)
        if currency and price["currency"] != currency:
            raise StripeError(400, "All prices must use the same currency.",
                              param=param + "[price]")
        currency = price["currency"]
        product = await front.product(price["product"])
        items.append({"id": new_id("li_"), "price": price_id, "quantity": quantity,
                      "description": product.get("name")})
    return items, currency


async def _validated_discounts(front, raw, customer):
    """`discounts[i][promotion_code]` (the front's) or `[coupon]` (localstripe's) must exist,
    like on Stripe; they are recorded on the session, not taken off its amounts."""
    discounts = []
    for i, d in enumerate(forms.as_list(raw, "discounts")):
        param = "discounts[%d]" % i
        if not isinstance(d, dict):
            raise StripeError(400, "Invalid object", param=param)
        promo_id = forms.as_str(d.get("promotion_code"), param + "[promotion_code]") or None
        coupon_id = forms.as_str(d.get("coupon"), param + "[coupon]") or None
        if promo_id and coupon_id:
            raise StripeError(400, "You may only specify one of these parameters: coupon, "
                              "promotion_code.", param=param)
        if promo_id:
            code = front.promotions.get(promo_id, param=param + "[promotion_code]")
            why = front.promotions.usable(code)
            if why is None and code["customer"] and code["customer"] != customer:
                why = "This promotion code cannot be redeemed by this customer."
            if why:
                raise StripeError(400, why, param=param + "[promotion_code]")
        elif coupon_id:
            await promotions.coupon(front, coupon_id, param=param + "[coupon]")
        else:
            raise StripeError(400, "Missing required param: %s[coupon]." % param,
                              param=param + "[coupon]")
        discounts.append({"coupon": coupon_id, "promotion_code": promo_id})
    return discounts


async def create_session(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    forms.reject_unknown(p, _KNOWN)
    mode = forms.as_enum(forms.require(p, "mode"), "mode", MODES)
    ui_mode = forms.as_enum(p.get("ui_mode", "hosted"), "ui_mode",
                            ("hosted", "embedded", "custom"))
    success_url = forms.as_str(p.get("success_url"), "success_url")
    if ui_mode == "hosted" and not success_url:
        raise StripeError(400, "Missing required param: success_url.", param="success_url")
    customer = forms.as_str(p.get("customer"), "customer") or None
    customer_email = forms.as_str(p.get("customer_email"), "customer_email") or None
    if customer and customer_email:
        raise StripeError(400, "You may only specify one of these parameters: customer, "
                          "customer_email.", param="customer_email")
    if customer:
        await front.upstream.call("GET", "/v1/customers/" + customer, kind="customer",
                                  id=customer, param="customer")
    items, currency = await _validated_line_items(front, p, mode)
    sub_data = p.get("subscription_data") or {}
    pi_data = p.get("payment_intent_data") or {}
    if sub_data and mode != "subscription":
        raise StripeError(400, "You can only pass `subscription_data` in `subscription` mode.",
                          param="subscription_data")
    if pi_data and mode != "payment":
        raise StripeError(400, "You can only pass `payment_intent_data` in `payment` mode.",
                          param="payment_intent_data")
    if not isinstance(sub_data, dict) or not isinstance(pi_data, dict):
        raise StripeError(400, "Invalid object", param="subscription_data")
    trial_days = forms.as_int(sub_data.get("trial_period_days"),
                              "subscription_data[trial_period_days]", minimum=1)
    sub_metadata = forms.as_metadata(sub_data.get("metadata"), "subscription_data[metadata]")
    pi_metadata = forms.as_metadata(pi_data.get("metadata"), "payment_intent_data[metadata]")
    allow_promo = forms.as_bool(p.get("allow_promotion_codes"), "allow_promotion_codes")
    if allow_promo and forms.as_list(p.get("discounts"), "discounts"):
        raise StripeError(400, "You may only specify one of these parameters: "
                          "allow_promotion_codes, discounts.", param="discounts")
    discounts = await _validated_discounts(front, p.get("discounts"), customer)
    billing = forms.as_enum(p.get("billing_address_collection"), "billing_address_collection",
                            ("auto", "required"))
    auto_tax = p.get("automatic_tax") or {}
    tax_enabled = bool(forms.as_bool(auto_tax.get("enabled"), "automatic_tax[enabled]")) \
        if isinstance(auto_tax, dict) else False
    locale = forms.as_str(p.get("locale"), "locale") or None
    if locale and not _LOCALE.match(locale):
        raise StripeError(400, "Invalid locale: %s" % locale, param="locale")
    created = now()
    expires_at = forms.as_int(p.get("expires_at"), "expires_at")
    if expires_at is None:
        expires_at = created + 24 * 3600
    elif not created + 30 * 60 - 5 <= expires_at <= created + 24 * 3600 + 5:
        raise StripeError(400, "The `expires_at` timestamp must be between 30 minutes and 24 "
                          "hours from Checkout Session creation.", param="expires_at")
    customer_creation = forms.as_enum(p.get("customer_creation"), "customer_creation",
                                      ("always", "if_required"))
    if customer_creation and mode == "subscription":
        raise StripeError(400, "`customer_creation` can only be used in `payment` and `setup` "
                          "mode.", param="customer_creation")
    client_reference_id = forms.as_str(p.get("client_reference_id"), "client_reference_id")
    if client_reference_id and len(client_reference_id) > 200:
        raise StripeError(400, "client_reference_id must be at most 200 characters.",
                          param="client_reference_id")

    sid = new_id("cs_test_", 58)
    subtotal = sum(_amount(front, front.prices.get(li["price"]), li["quantity"])
                   for li in items) if items else None
    session = {
        "id": sid, "object": "checkout.session", "adaptive_pricing": None,
        "after_expiration": None, "allow_promotion_codes": allow_promo,
        "amount_subtotal": subtotal, "amount_total": subtotal,
        "automatic_tax": {"enabled": tax_enabled, "liability": None, "provider": None,
                          "status": "requires_location_inputs" if tax_enabled else None},
        "billing_address_collection": billing,
        "cancel_url": p.get("cancel_url"), "client_reference_id": client_reference_id or None,
        "client_secret": None, "collected_information": None, "consent": None,
        "consent_collection": None, "created": created,
        "currency": currency or (p.get("currency") or None),
        "currency_conversion": None, "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer,
        "customer_creation": None if customer else (customer_creation or (
            "always" if mode == "subscription" else "if_required")),
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": discounts,
        "expires_at": expires_at, "invoice": None, "invoice_creation": None,
        "livemode": False, "locale": locale, "metadata": forms.as_metadata(p.get("metadata")),
        "mode": mode, "payment_intent": None, "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None, "payment_method_options": {},
        "payment_method_types": forms.as_list(p.get("payment_method_types"),
                                              "payment_method_types") or ["card"],
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "phone_number_collection": {"enabled": False}, "recovered_from": None,
        "saved_payment_method_options": None, "setup_intent": None,
        "shipping_address_collection": None, "shipping_cost": None, "shipping_options": [],
        "status": "open", "submit_type": None, "subscription": None,
        "success_url": success_url.replace("{CHECKOUT_SESSION_ID}", sid) if success_url
        else None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode, "url": front.base_url + "/checkout/pay/" + sid,
        "_line_items": items, "_sub_metadata": sub_metadata, "_trial_days": trial_days,
        "_pi_metadata": pi_metadata, "_async_pending": False,
    }
    front.sessions[sid] = session
    return json_response(await render(front, session, expand))


async def retrieve_session(request):
    front, session = _session(request)
    return json_response(await render(front, session, expand_of(await params(request))))


async def session_line_items(request):
    front, session = _session(request)
    p = await params(request)
    expand = expand_of(p)
    page = paginate(await _line_items(front, session, expand, "data."), p,
                    "/v1/checkout/sessions/%s/line_items" % session["id"])
    return json_response(page)


async def list_sessions(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    sessions = list(reversed(list(front.sessions.values())))
    for s in sessions:
        _refresh(front, s)
    for field in ("customer", "subscription", "payment_intent", "status"):
        if p.get(field):
            sessions = [s for s in sessions if s[field] == p[field]]
    page = paginate(sessions, p, "/v1/checkout/sessions")
    page["data"] = [await render(front, s, [e[5:] for e in expand if e.startswith("data.")])
                    for s in page["data"]]
    return json_response(page)


async def expire_session(request):
    front, session = _session(request)
    _expire(front, session)
    return json_response(await render(front, session, expand_of(await params(request))))


# -- paying (test endpoints and the local pay page) -----------------------------------------

async def _ensure_customer(front, session, email=None, name=None):
    if session["customer"]:
        await front.upstream.call("GET", "/v1/customers/" + session["customer"],
                                  kind="customer", id=session["customer"], param="customer")
        return session["customer"]
    if session["mode"] == "payment" and session["customer_creation"] == "if_required":
        return None  # a guest (Stripe's default in payment mode): the session has no customer
    email = session["customer_email"] or email or "test+%s@example.com" % session["id"][-8:]
    data = {"email": email, "name": name} if name else {"email": email}
    return (await front.upstream.call("POST", "/v1/customers", data))["id"]


async def _attach_card(front, customer, card):
    pm = await front.upstream.call("POST", "/v1/payment_methods/%s/attach" % card,
                                   {"customer": customer}, kind="payment_method", id=card,
                                   param="card")
    await front.upstream.call("POST", "/v1/customers/" + customer,
                              {"invoice_settings": {"default_payment_method": pm["id"]}})
    return pm["id"]


async def pay(front, session, **kwargs):
    """Complete an open session for real in localstripe, then send checkout.session.completed.

    One payment at a time per session: a concurrent second call finds it complete."""
    async with front.lock("checkout:" + session["id"]):
        return await _pay(front, session, **kwargs)


async def _pay(front, session, async_payment=False, email=None, name=None, card=None):
    _refresh(front, session)
    if session["status"] != "open":
        raise StripeError(400, "This Checkout Session is not open (status %s)."
                          % session["status"], param="session")
    card = card or "pm_card_visa"
    customer = await _ensure_customer(front, session, email, name)
    pm = await _attach_card(front, customer, card) if customer else card
    status, updates = "paid", {}
    if session["mode"] == "subscription":
        data = {"customer": customer,
                "items": [{"plan": li["price"], "quantity": li["quantity"]}
                          for li in session["_line_items"]],
                "metadata": session["_sub_metadata"] or None}
        if session["_trial_days"]:
            data["trial_end"] = now() + session["_trial_days"] * 86400
        sub = await subscription_items.create(front, data)
        if sub["status"] not in ("active", "trialing"):
            await front.upstream.call("DELETE", "/v1/subscriptions/" + sub["id"])
            raise card_declined()
        updates = {"subscription": sub["id"], "invoice": sub.get("latest_invoice")}
        if sub["status"] == "trialing" or not session["amount_total"]:
            status = "no_payment_required"
    elif session["mode"] == "payment":
        if session["amount_total"]:
            data = {"amount": session["amount_total"], "currency": session["currency"],
                    "customer": customer, "payment_method": pm,
                    "metadata": session["_pi_metadata"] or None}
            if not async_payment:
                data["confirm"] = "true"
            pi = await front.upstream.call("POST", "/v1/payment_intents", data)
            updates = {"payment_intent": pi["id"]}
        else:
            status = "no_payment_required"
    else:
        seti = await front.upstream.call("POST", "/v1/setup_intents", {"customer": customer})
        updates, status = {"setup_intent": seti["id"]}, "no_payment_required"
    if async_payment and status == "paid":
        status = "unpaid"
        session["_async_pending"] = True
    details = {"address": None, "email": session["customer_email"] or email
               or "test+%s@example.com" % session["id"][-8:], "name": name,
               "phone": None, "tax_exempt": "none", "tax_ids": []}
    if customer:
        c = await front.upstream.call("GET", "/v1/customers/" + customer)
        details.update(email=c.get("email"), name=c.get("name") or name)
    session.update(updates, status="complete", payment_status=status, customer=customer,
                   customer_details=details, url=None)
    for d in session["discounts"]:
        if d["promotion_code"] in front.promotions.codes:
            front.promotions.codes[d["promotion_code"]]["times_redeemed"] += 1
    front.webhooks.emit("checkout.session.completed", public(session))
    return session


async def _test_session(request):
    front = request.app["front"]
    sid = request.match_info["id"]
    session = front.sessions.get(sid)
    if session is None:
        raise no_such("checkout.session", sid)
    return front, session, forms.parse_body(await request.read())


async def test_complete(request, async_payment=False):
    front, session, p = await _test_session(request)
    await pay(front, session, async_payment=async_payment, email=p.get("email"),
              name=p.get("name"), card=p.get("card"))
    return json_response(public(session))


async def test_complete_async(request):
    return await test_complete(request, async_payment=True)


async def test_async_payment(request):
    front, session, p = await _test_session(request)
    succeeded = forms.as_bool(forms.require(p, "succeeded"), "succeeded")
    if session["status"] != "complete" or not session["_async_pending"]:
        raise StripeError(400, "This Checkout Session has no pending asynchronous payment.",
                          param="session")
    session["_async_pending"] = False
    pi = session["payment_intent"]
    if pi:
        await front.upstream.call("POST", "/v1/payment_intents/%s/%s"
                                  % (pi, "confirm" if succeeded else "cancel"), {})
    session["payment_status"] = "paid" if succeeded else "unpaid"
    front.webhooks.emit("checkout.session.async_payment_%s"
                        % ("succeeded" if succeeded else "failed"), public(session))
    return json_response(public(session))


async def test_fail(request):
    front, session, _ = await _test_session(request)
    _refresh(front, session)
    if session["status"] != "open":
        raise StripeError(400, "This Checkout Session is not open (status %s)."
                          % session["status"], param="session")
    raise card_declined()


async def test_expire(request):
    front, session, _ = await _test_session(request)
    _expire(front, session)
    return json_response(public(session))


def setup(app):
    app.router.add_post("/v1/checkout/sessions", create_session)
    app.router.add_get("/v1/checkout/sessions", list_sessions)
    app.router.add_get("/v1/checkout/sessions/{id}", retrieve_session)
    app.router.add_get("/v1/checkout/sessions/{id}/line_items", session_line_items)
    app.router.add_post("/v1/checkout/sessions/{id}/expire", expire_session)
    app.router.add_post("/_test/checkout/sessions/{id}/complete", test_complete)
    app.router.add_post("/_test/checkout/sessions/{id}/complete_async", test_complete_async)
    app.router.add_post("/_test/checkout/sessions/{id}/async_payment", test_async_payment)
    app.router.add_post("/_test/checkout/sessions/{id}/fail", test_fail)
    app.router.add_post("/_test/checkout/sessions/{id}/expire", test_expire)
