"""Stripe's form encoding: `a[b][0][c]=v` <-> nested dicts and lists, plus value coercion."""
import re
from urllib.parse import parse_qsl, urlencode

from errors import StripeError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse(pairs):
    """[(key, value)] -> nested dict: `a[]` appends, `a[0]` indexes, index-only dicts -> lists."""
    root = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if not m:
            root[key] = value
            continue
        parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # a[] -> next free index
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = node[part] = {}
                node = nxt
    return _listify(root)


def _listify(node):
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


def parse_qsl_bytes(body: bytes):
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def parse_body(body: bytes):
    return parse(parse_qsl_bytes(body))


def parse_query(query):
    """aiohttp MultiDictProxy (request.query) -> nested dict."""
    return parse(list(query.items()))


def encode(data, prefix=None):
    """Nested dict/list -> urlencoded form string (None values are skipped)."""
    return urlencode(_pairs(data, prefix))


def _pairs(data, prefix):
    out = []
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return [(prefix, _scalar(data))] if data is not None else []
    for k, v in items:
        out += _pairs(v, "%s[%s]" % (prefix, k) if prefix else k)
    return out


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- coercion helpers: they raise Stripe-shaped 400s naming the param ------------------------

def as_int(value, param, minimum=None):
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise StripeError(400, "Invalid integer: %s" % value, param=param)
    if minimum is not None and n < minimum:
        raise StripeError(400, "This value must be greater than or equal to %d." % minimum,
                          param=param)
    return n


def as_bool(value, param):
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise StripeError(400, "Invalid boolean: %s" % value, param=param)


def as_str(value, param):
    if value is not None and not isinstance(value, str):
        raise StripeError(400, "Invalid string: %s" % (value,), param=param)
    return value


def as_enum(value, param, allowed):
    if value is not None and value not in allowed:
        raise StripeError(400, "Invalid %s: must be one of %s" % (param, ", ".join(allowed)),
                          param=param)
    return value


def as_metadata(value, param="metadata"):
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StripeError(400, "Invalid object", param=param)
    return dict(value)


def as_list(value, param):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise StripeError(400, "Invalid array", param=param)


def require(params, name, param=None):
    value = params.get(name)
    if value is None or value == "":
        raise StripeError(400, "Missing required param: %s." % (param or name), param=param or name)
    return value


def reject_unknown(params, known):
    for key in params:
        if key not in known:
            raise StripeError(400, "Received unknown parameter: %s" % key, param=key)


def merge_metadata(current, update):
    """Stripe semantics: a key set to "" is removed; metadata="" clears everything."""
    if update == "":
        return {}
    result = dict(current)
    for k, v in as_metadata(update).items():
        if v == "":
            result.pop(k, None)
        else:
            result[k] = v
    return result
