"""Billing Portal sessions (kept by the front) and the test endpoint that cancels through one."""
import copy

import forms
from common import new_id, now, params
from errors import StripeError, json_response, no_such

FLOWS = ("payment_method_update", "subscription_cancel", "subscription_update",
         "subscription_update_confirm")
_KNOWN = {"configuration", "customer", "customer_account", "expand", "flow_data", "locale",
          "on_behalf_of", "return_url"}


async def _subscription_of(front, customer, sub_id, param):
    sub = await front.upstream.call("GET", "/v1/subscriptions/" + sub_id, kind="subscription",
                                    id=sub_id, param=param)
    if sub.get("customer") != customer:
        raise StripeError(400, "The subscription `%s` does not belong to customer `%s`."
                          % (sub_id, customer), param=param)
    return sub


async def _flow(front, customer, raw):
    if raw in (None, ""):
        return None
    if not isinstance(raw, dict):
        raise StripeError(400, "Invalid object", param="flow_data")
    kind = forms.as_enum(forms.require(raw, "type", "flow_data[type]"), "flow_data[type]", FLOWS)
    after = raw.get("after_completion") or {}
    after_type = forms.as_enum(after.get("type", "portal_homepage"),
                               "flow_data[after_completion][type]",
                               ("hosted_confirmation", "portal_homepage", "redirect"))
    flow = {"type": kind, "after_completion": {
        "type": after_type, "hosted_confirmation": None, "redirect": None},
        "subscription_cancel": None, "subscription_update": None,
        "subscription_update_confirm": None}
    if after_type == "redirect":
        url = forms.require(after.get("redirect") or {}, "return_url",
                            "flow_data[after_completion][redirect][return_url]")
        flow["after_completion"]["redirect"] = {"return_url": url}
    elif after_type == "hosted_confirmation":
        message = (after.get("hosted_confirmation") or {}).get("custom_message")
        flow["after_completion"]["hosted_confirmation"] = {"custom_message": message}
    if kind != "payment_method_update":
        body = raw.get(kind) or {}
        param = "flow_data[%s][subscription]" % kind
        sub_id = forms.require(body, "subscription", param)
        await _subscription_of(front, customer, sub_id, param)
        flow[kind] = {"subscription": sub_id}
        if kind == "subscription_cancel":
            flow[kind]["retention"] = None
        elif kind == "subscription_update_confirm":
            items = forms.as_list(body.get("items"), "flow_data[%s][items]" % kind)
            if not items:
                raise StripeError(400, "Missing required param: flow_data[%s][items]." % kind,
                                  param="flow_data[%s][items]" % kind)
            flow[kind].update(items=items, discounts=body.get("discounts"))
    return flow


async def create_portal_session(request):
    front = request.app["front"]
    p = await params(request)
    p.pop("expand", None)
    forms.reject_unknown(p, _KNOWN)
    customer = forms.as_str(forms.require(p, "customer"), "customer")
    await front.upstream.call("GET", "/v1/customers/" + customer, kind="customer", id=customer,
                              param="customer")
    flow = await _flow(front, customer, p.get("flow_data"))
    sid = new_id("bps_")
    session = {"id": sid, "object": "billing_portal.session",
               "configuration": forms.as_str(p.get("configuration"), "configuration")
               or "bpc_local",
               "created": now(), "customer": customer, "customer_account": None,
               "flow": flow, "livemode": False,
               "locale": forms.as_str(p.get("locale"), "locale") or None,
               "on_behalf_of": p.get("on_behalf_of") or None,
               "return_url": forms.as_str(p.get("return_url"), "return_url") or None,
               "url": front.base_url + "/portal/" + sid}
    front.portal_sessions[sid] = session
    return json_response(session)


async def cancel_subscription(front, session, sub_id, at_period_end):
    """Cancel like the portal does: at period end (an update) or now (localstripe's DELETE)."""
    await _subscription_of(front, session["customer"], sub_id, "subscription")
    if at_period_end:
        sub = front.patch(await front.upstream.call(
            "POST", "/v1/subscriptions/" + sub_id, {"cancel_at_period_end": "true"}))
        # localstripe sends no customer.subscription.updated: the front does.
        front.webhooks.emit("customer.subscription.updated", copy.deepcopy(sub),
                            previous_attributes={"cancel_at_period_end": False})
        return sub
    return front.patch(await front.upstream.call("DELETE", "/v1/subscriptions/" + sub_id))


async def test_cancel_subscription(request):
    front = request.app["front"]
    sid = request.match_info["id"]
    session = front.portal_sessions.get(sid)
    if session is None:
        raise no_such("billing_portal.session", sid)
    p = forms.parse_body(await request.read())
    flow_sub = ((session["flow"] or {}).get("subscription_cancel") or {}).get("subscription")
    sub_id = p.get("subscription") or flow_sub
    if not sub_id:
        raise StripeError(400, "Missing required param: subscription.", param="subscription")
    at_period_end = forms.as_bool(p.get("at_period_end", "false"), "at_period_end")
    return json_response(await cancel_subscription(front, session, sub_id, at_period_end))


def setup(app):
    app.router.add_post("/v1/billing_portal/sessions", create_portal_session)
    app.router.add_post("/_test/portal/sessions/{id}/cancel_subscription",
                        test_cancel_subscription)
