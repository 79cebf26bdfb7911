"""Customer search: Stripe's search query language over localstripe's customer list.

Supported: `email`, `name`, `phone`, `metadata['key']` with `:` (exact; case-insensitive except
metadata) and `~` (substring), `created`/`-` comparisons (`>`, `<`, `>=`, `<=`), `-` negation,
`null` for a missing metadata key, and clauses joined by spaces / AND, or by OR (not both).
"""
import re

import forms
from common import now, params
from errors import StripeError, json_response

_TOKEN = re.compile(r"""\s*(?:
    (?P<conj>AND|OR)\b
  | (?P<neg>-)?(?P<field>metadata\[(?P<mq>['"])(?P<mkey>(?:\\.|(?!(?P=mq)).)*)(?P=mq)\]|[a-z_]+)
    (?P<op>:|~|>=|<=|>|<)
    (?:(?P<q>['"])(?P<str>(?:\\.|(?!(?P=q)).)*)(?P=q)|(?P<bare>[^\s'"]+))
)""", re.X | re.I)
_STRING_FIELDS = ("email", "name", "phone")


def _unescape(s):
    return re.sub(r"\\(.)", r"\1", s)


def _bad(message):
    return StripeError(400, message, param="query")


def parse(query):
    """-> (conjunction, [clause]) where clause = (negated, field, metadata key, op, value)."""
    if not isinstance(query, str) or not query.strip():
        raise StripeError(400, "Missing required param: query.", param="query")
    pos, clauses, conjs = 0, [], set()
    expect_clause = True
    while pos < len(query.rstrip()):
        m = _TOKEN.match(query, pos)
        if not m:
            raise _bad("Invalid search query: unexpected input at position %d." % pos)
        pos = m.end()
        if m.group("conj"):
            if expect_clause:
                raise _bad("Invalid search query: misplaced %s." % m.group("conj"))
            conjs.add(m.group("conj").upper())
            expect_clause = True
            continue
        field = "metadata" if m.group("mkey") is not None else m.group("field").lower()
        if field not in _STRING_FIELDS + ("metadata", "created"):
            raise _bad("Field `%s` is an unsupported search field for customers." % field)
        value = _unescape(m.group("str")) if m.group("q") else m.group("bare")
        if not m.group("q") and field != "created":
            if value != "null":
                raise _bad("Invalid search query: values must be quoted.")
            value = None
        if not expect_clause:
            conjs.add("AND")  # a space joins with AND
        clauses.append((bool(m.group("neg")), field,
                        _unescape(m.group("mkey")) if m.group("mkey") is not None else None,
                        m.group("op"), value))
        expect_clause = False
    if expect_clause:
        raise _bad("Invalid search query: it ends with a conjunction.")
    if len(conjs) > 1:
        raise _bad("Invalid search query: AND and OR cannot be combined in one query.")
    if len(clauses) > 10:
        raise _bad("Invalid search query: at most 10 clauses are allowed.")
    return (conjs.pop() if conjs else "AND"), clauses


def _clause_matches(customer, clause):
    negated, field, key, op, value = clause
    if field == "created":
        try:
            bound = int(value)
        except ValueError:
            raise _bad("Invalid search query: `created` needs a number.")
        c = customer.get("created") or 0
        hit = {":": c == bound, ">": c > bound, "<": c < bound, ">=": c >= bound,
               "<=": c <= bound}.get(op, False)
    elif op not in (":", "~"):
        raise _bad("Invalid search query: `%s` only supports `:` and `~`." % field)
    elif field == "metadata":
        actual = (customer.get("metadata") or {}).get(key)
        if value is None:
            hit = actual is None
        else:
            hit = actual is not None and (actual == value if op == ":" else value in actual)
    else:
        actual = customer.get(field)
        if value is None:
            hit = actual is None
        elif actual is None:
            hit = False
        elif op == ":":
            hit = actual.lower() == value.lower()
        else:
            if len(value) < 3:
                raise _bad("Invalid search query: substring search needs 3 characters.")
            hit = value.lower() in actual.lower()
    return hit != negated


def matches(customer, conj, clauses):
    if customer.get("deleted"):
        return False
    results = (_clause_matches(customer, c) for c in clauses)
    return all(results) if conj == "AND" else any(results)


async def search_customers(request):
    front = request.app["front"]
    p = await params(request)
    conj, clauses = parse(p.get("query"))
    limit = forms.as_int(p.get("limit"), "limit", minimum=1) or 10
    if limit > 100:
        raise StripeError(400, "This value must be less than or equal to 100.", param="limit")
    customers = await front.upstream.list_all("/v1/customers", key=request["api_key"])
    found = [c for c in customers if matches(c, conj, clauses)]
    found.sort(key=lambda c: c.get("created") or now(), reverse=True)
    return json_response({"object": "search_result", "data": front.patch(found[:limit]),
                          "has_more": False, "next_page": None,
                          "url": "/v1/customers/search"})


def setup(app):
    app.router.add_get("/v1/customers/search", search_customers)
