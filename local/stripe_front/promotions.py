"""Coupons (localstripe's, with Stripe's optional id and `name`) and promotion codes (kept by
the front: localstripe has none).

    POST /v1/coupons                            id optional (generated); name, max_redemptions,
                                                redeem_by kept here, laid over localstripe's
    POST/GET /v1/promotion_codes, GET/POST /v1/promotion_codes/{id}

Promotion codes have the current API's shape (`promotion: {type: coupon, coupon}`); the older
`coupon` parameter is taken too. Checkout Sessions check `discounts[i][promotion_code]` and
`discounts[i][coupon]` against them (checkout.py).
"""
import copy
import re
import secrets
import string

import forms
from common import expand_of, new_id, now, paginate, params
from errors import StripeError, json_response, no_such

_CODE = re.compile(r"^[a-zA-Z0-9]{1,500}$")
_CREATE = {"active", "code", "coupon", "customer", "customer_account", "expand", "expires_at",
           "max_redemptions", "metadata", "promotion", "restrictions"}
_UPDATE = {"active", "expand", "metadata", "restrictions"}
_COUPON_EXTRA = ("name", "max_redemptions", "redeem_by")


class Promotions:
    def __init__(self):
        self.codes = {}  # promo_... -> promotion_code
        self.coupons = {}  # coupon id -> {name, max_redemptions, redeem_by} (localstripe lacks)

    def reset(self):
        self.codes.clear()
        self.coupons.clear()

    def get(self, promo_id, param=None):
        code = self.codes.get(promo_id) if isinstance(promo_id, str) else None
        if code is None:
            raise no_such("promotion code", promo_id, param=param)
        return code

    def usable(self, code):
        """Why the code cannot be redeemed now (None when it can)."""
        if not code["active"]:
            return "This promotion code is inactive."
        if code["expires_at"] is not None and code["expires_at"] <= now():
            return "This promotion code has expired."
        if code["max_redemptions"] is not None \
                and code["times_redeemed"] >= code["max_redemptions"]:
            return "This promotion code has reached its maximum number of redemptions."
        return None

    def apply(self, value):
        """Lay the fields localstripe cannot hold over every coupon in `value`."""
        if isinstance(value, list):
            for v in value:
                self.apply(v)
        elif isinstance(value, dict):
            for v in value.values():
                self.apply(v)
            if value.get("object") == "coupon" and not value.get("deleted"):
                value.update(self.coupons.get(value.get("id"), {}))
                for key in _COUPON_EXTRA + ("applies_to",):
                    value.setdefault(key, None)
        return value


async def coupon(front, coupon_id, param=None):
    return front.patch(await front.upstream.call("GET", "/v1/coupons/%s" % coupon_id,
                                                 kind="coupon", id=coupon_id, param=param))


async def create_coupon(request):
    """localstripe wants an id and takes no name: generate the one, keep the other."""
    front = request.app["front"]
    p = await params(request)
    extra = {k: p.pop(k) for k in _COUPON_EXTRA if k in p}
    if "name" in extra:
        extra["name"] = forms.as_str(extra["name"], "name") or None
    for k in ("max_redemptions", "redeem_by"):
        if k in extra:
            extra[k] = forms.as_int(extra[k], k, minimum=1)
    p.setdefault("id", "".join(secrets.choice(string.ascii_uppercase + string.digits)
                               for _ in range(8)))
    created = await front.upstream.call("POST", "/v1/coupons", p, key=request["api_key"])
    front.promotions.coupons[created["id"]] = extra
    return json_response(front.patch(created))


async def _render(front, code, expand):
    out = copy.deepcopy(code)
    if "promotion.coupon" in expand or "coupon" in expand:
        out["promotion"]["coupon"] = await coupon(front, code["promotion"]["coupon"])
    if "customer" in expand and code["customer"]:
        out["customer"] = front.patch(await front.upstream.call(
            "GET", "/v1/customers/" + code["customer"]))
    return out


def _restrictions(raw):
    if raw in (None, ""):
        raw = {}
    if not isinstance(raw, dict):
        raise StripeError(400, "Invalid object", param="restrictions")
    minimum = forms.as_int(raw.get("minimum_amount"), "restrictions[minimum_amount]", 0)
    currency = forms.as_str(raw.get("minimum_amount_currency"),
                            "restrictions[minimum_amount_currency]")
    if (minimum is None) != (currency is None):
        raise StripeError(400, "You must specify both `minimum_amount` and "
                          "`minimum_amount_currency`.", param="restrictions")
    return {"currency_options": raw.get("currency_options") or {},
            "first_time_transaction": bool(forms.as_bool(
                raw.get("first_time_transaction"), "restrictions[first_time_transaction]")),
            "minimum_amount": minimum,
            "minimum_amount_currency": currency.lower() if currency else None}


async def create_code(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    forms.reject_unknown(p, _CREATE)
    promotion = p.get("promotion")
    if promotion not in (None, ""):
        if not isinstance(promotion, dict):
            raise StripeError(400, "Invalid object", param="promotion")
        forms.as_enum(forms.require(promotion, "type", "promotion[type]"), "promotion[type]",
                      ("coupon",))
        coupon_id, param = forms.require(promotion, "coupon", "promotion[coupon]"), \
            "promotion[coupon]"
    elif p.get("coupon"):  # before API 2025-09-30.clover
        coupon_id, param = p["coupon"], "coupon"
    else:
        raise StripeError(400, "Missing required param: promotion.", param="promotion")
    coupon_id = forms.as_str(coupon_id, param)
    await coupon(front, coupon_id, param=param)
    code = forms.as_str(p.get("code"), "code")
    if code is None:
        code = "".join(secrets.choice(string.ascii_uppercase + string.digits)
                       for _ in range(8))
    elif not _CODE.match(code):
        raise StripeError(400, "Invalid code: only letters and digits are allowed.",
                          param="code")
    customer = forms.as_str(p.get("customer"), "customer") or None
    if customer:
        await front.upstream.call("GET", "/v1/customers/" + customer, kind="customer",
                                  id=customer, param="customer")
    active = forms.as_bool(p.get("active", "true"), "active")
    if active and _active_with_code(front, code):
        raise StripeError(400, "An active promotion code with `code: %s` already exists."
                          % code, param="code")
    promo = {
        "id": new_id("promo_"), "object": "promotion_code", "active": active, "code": code,
        "created": now(), "customer": customer, "customer_account": None,
        "expires_at": forms.as_int(p.get("expires_at"), "expires_at"), "livemode": False,
        "max_redemptions": forms.as_int(p.get("max_redemptions"), "max_redemptions", 1),
        "metadata": forms.as_metadata(p.get("metadata")),
        "promotion": {"type": "coupon", "coupon": coupon_id},
        "restrictions": _restrictions(p.get("restrictions")), "times_redeemed": 0}
    front.promotions.codes[promo["id"]] = promo
    front.webhooks.emit("promotion_code.created", copy.deepcopy(promo))
    return json_response(await _render(front, promo, expand))


def _active_with_code(front, code, except_id=None):
    return any(c["active"] and c["code"].lower() == code.lower() and c["id"] != except_id
               for c in front.promotions.codes.values())


async def retrieve_code(request):
    front = request.app["front"]
    p = await params(request)
    code = front.promotions.get(request.match_info["id"])
    return json_response(await _render(front, code, expand_of(p)))


async def update_code(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    forms.reject_unknown(p, _UPDATE)
    code = front.promotions.get(request.match_info["id"])
    changes = {}
    if "active" in p:
        changes["active"] = forms.as_bool(p["active"], "active")
        if changes["active"] and _active_with_code(front, code["code"], code["id"]):
            raise StripeError(400, "An active promotion code with `code: %s` already exists."
                              % code["code"], param="active")
    if "metadata" in p:
        changes["metadata"] = forms.merge_metadata(code["metadata"], p["metadata"])
    if "restrictions" in p:
        restrictions = dict(code["restrictions"])
        restrictions["currency_options"] = (p["restrictions"] or {}).get(
            "currency_options") or restrictions["currency_options"]
        changes["restrictions"] = restrictions
    previous = {k: code[k] for k in changes if code[k] != changes[k]}
    code.update(changes)
    if previous:
        front.webhooks.emit("promotion_code.updated", copy.deepcopy(code),
                            previous_attributes=copy.deepcopy(previous))
    return json_response(await _render(front, code, expand))


async def list_codes(request):
    front = request.app["front"]
    p = await params(request)
    expand = expand_of(p)
    codes = list(reversed(list(front.promotions.codes.values())))
    if "active" in p:
        active = forms.as_bool(p["active"], "active")
        codes = [c for c in codes if c["active"] == active]
    if p.get("code"):
        codes = [c for c in codes if c["code"].lower() == str(p["code"]).lower()]
    if p.get("coupon"):
        codes = [c for c in codes if c["promotion"]["coupon"] == p["coupon"]]
    if p.get("customer"):
        codes = [c for c in codes if c["customer"] == p["customer"]]
    page = paginate(codes, p, "/v1/promotion_codes")
    page["data"] = [await _render(front, c, [e[5:] for e in expand if e.startswith("data.")])
                    for c in page["data"]]
    return json_response(page)


def setup(app):
    app.router.add_post("/v1/coupons", create_coupon)
    app.router.add_post("/v1/promotion_codes", create_code)
    app.router.add_get("/v1/promotion_codes", list_codes)
    app.router.add_get("/v1/promotion_codes/{id}", retrieve_code)
    app.router.add_post("/v1/promotion_codes/{id}", update_code)
