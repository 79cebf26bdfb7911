"""Stripe-shaped errors: {"error": {"type", "code"?, "message", "param"?}}, Stripe's statuses."""
import json

from aiohttp import web

_DEFAULT_TYPE = {402: "card_error", 500: "api_error"}


def json_response(body, status=200, headers=None):
    return web.Response(body=json.dumps(body, indent=2, sort_keys=True).encode() + b"\n",
                        status=status, headers=headers, content_type="application/json")


class StripeError(Exception):
    def __init__(self, status, message, type=None, code=None, param=None, **extra):
        super().__init__(message)
        self.status = status
        self.body = {"type": type or _DEFAULT_TYPE.get(status, "invalid_request_error"),
                     "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        self.body.update(extra)

    def response(self):
        return json_response({"error": self.body}, status=self.status)


def no_such(kind, id, param=None, status=None):
    """Stripe answers an unknown id in a parameter with 400, in the path with 404."""
    return StripeError(status or (400 if param else 404), "No such %s: '%s'" % (kind, id),
                       code="resource_missing", param=param)


def card_declined():
    return StripeError(402, "Your card was declined.", type="card_error", code="card_declined",
                       decline_code="generic_decline")
