"""moto's server, made durable across restarts like the AWS services it stands in for.

On SIGTERM or SIGINT it stops accepting connections, lets the requests in flight finish, and
writes every service's state to --state; on start it loads that file when present. A restart
therefore loses nothing that was acknowledged, and the soak can restart "AWS" mid-run. Without
--state it is plain `moto_server` plus the additions below.

DynamoDB's TransactWriteItems is all or nothing under concurrent requests too, and costs what
it touches (moto's own copies every table per item, and its rollback can undo other requests'
writes): see install_atomic_transactions. A Query on a table's key costs its partition, not
the table (moto's sorts the whole table each time): see install_partition_queries.

API Gateway's GetUsage, which moto lacks, answers from calls recorded per (usage plan, API key,
UTC day) through the test endpoint /_test/usage (POST adds, GET lists, DELETE clears); they are
saved and loaded with the rest of the state. GET /_local/calls counts the calls received.

API Gateway's limits on API keys, which moto lacks, are enforced on CreateApiKey: a rate (a token
bucket per account, MOTO_APIGW_KEY_RATE keys per second, default 5 as AWS documents, burst
MOTO_APIGW_KEY_BURST) answered 429 TooManyRequestsException with Retry-After, and a quota of keys
per account and region (MOTO_APIGW_KEY_QUOTA, default none) answered LimitExceededException.
GET /_test/apigateway/limits shows them and what they refused, POST changes them at run time,
DELETE clears the counts.

With MOTO_KEEP_ALIVE=1 a connection stays open after a response, as AWS's endpoints keep
them (werkzeug's server closes every one, so each call of a client would open a new one): the
request's body is read whole before moto sees it, so the next request starts where it should;
a chunked body or `Expect: 100-continue` still closes. `make bench` sets it.

    python local/moto_durable.py --port 5000 --state local/.run/moto-state.pickle
"""

import argparse
import base64
import binascii
import copy
import copyreg
from collections import defaultdict, deque
from datetime import date, datetime, timedelta, timezone
import io
import json
import math
import os
import pickle
import re
import signal
import threading
import time
from urllib.parse import parse_qs, unquote

from moto.apigateway import urls as apigateway_urls
from moto.apigateway.exceptions import BadRequestException
from moto.apigateway.responses import APIGatewayResponse
from moto.backends import get_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

# What the functions, the bootstrap and CloudFormation's stacks use.
SERVICES = (
    "apigateway",
    "cloudformation",
    "dynamodb",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
)
# Within local/lib.sh's STOP_TIMEOUT (10 s), which ends in SIGKILL.
DRAIN_SECONDS = 5.0
CALLS_PATH = "/_local/calls"
TEST_USAGE_PATH = "/_test/usage"
# The usage's entry in the state file, beside the services' backends.
USAGE_STATE_KEY = "_apigateway_usage"
TEST_KEY_LIMITS_PATH = "/_test/apigateway/limits"


class Calls:
    """Calls received, by the caller's User-Agent product and the signed service (the benchmark
    counts a lifecycle's calls at the emulator): GET /_local/calls, DELETE clears.
    GET /_local/calls?operations lists the last OPERATIONS_KEPT calls in order, each with its
    operation (the X-Amz-Target's, else the method and path), so a count can be explained."""

    OPERATIONS_KEPT = 1000

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.operations: deque[str] = deque(maxlen=self.OPERATIONS_KEPT)
        self.lock = threading.Lock()

    def count(self, environ) -> None:
        caller = environ.get("HTTP_USER_AGENT", "").split("/", 1)[0] or "unknown"
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        key = f"{caller} {scope.group(1) if scope else 'unsigned'}"
        target = environ.get("HTTP_X_AMZ_TARGET", "").rsplit(".", 1)[-1]
        operation = target or f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.operations.append(f"{key} {operation}")

    def answer(self, environ, start_response):
        with self.lock:
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.counts.clear()
                self.operations.clear()
            if environ.get("QUERY_STRING") == "operations":
                body = json.dumps(list(self.operations)).encode()
            else:
                body = json.dumps(dict(sorted(self.counts.items()))).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


class InFlight:
    """Counts requests being served, so a shutdown can wait for them; once closed, answers 503
    (which the SDKs retry), also on kept-alive connections, so nothing is acknowledged after the
    state is saved."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.closed = False
        self.idle = threading.Condition()
        self.calls = Calls()

    def close(self) -> None:
        with self.idle:
            self.closed = True

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        if path == CALLS_PATH:
            return self.calls.answer(environ, start_response)
        # The test endpoints change the state: they are drained and refused like the AWS calls on
        # shutdown, but not counted as one.
        handler = TEST_ENDPOINTS.get(path, self.app)
        if path not in TEST_ENDPOINTS:
            self.calls.count(environ)
        with self.idle:
            if self.closed:
                start_response(
                    "503 Service Unavailable",
                    [("Content-Type", "text/plain"), ("Connection", "close")],
                )
                return [b"moto is restarting"]
            self.count += 1
        try:
            # moto answers with a list or a short iterator: consume it inside the count.
            return list(handler(environ, start_response))
        finally:
            with self.idle:
                self.count -= 1
                self.idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self.idle:
            return self.idle.wait_for(lambda: self.count == 0, timeout)


# --- API Gateway usage: GetUsage and the test endpoint that records calls -----------------------
#
# GetUsage as documented in https://docs.aws.amazon.com/apigateway/latest/api/API_GetUsage.html
# and in botocore's model (apigateway 2015-07-09, shapes GetUsageRequest and Usage):
# - the per-key map travels as "values" on the wire (the SDKs expose it as `items`), keyed by API
#   key id, one [used, remaining] pair per day of startDate..endDate inclusive;
# - `limit` defaults to 25, at most 500; `position` is absent on the last page.

USAGE_URL = "{0}/usageplans/(?P<usage_plan_id>[^/]+)/usage$"
USAGE_PATH = re.compile(r"/usageplans/[^/]+/usage")
DEFAULT_USAGE_PAGE = 25
MAX_USAGE_PAGE = 500
# The longest period accepted, startDate and endDate included. Neither the API reference nor
# botocore's model states a limit: 90 days is the figure we work to, not verified against AWS.
MAX_USAGE_DAYS = 90
# What a plan without a quota reports as remaining: undocumented, so 0 (a Long the SDKs accept).
NO_QUOTA_REMAINING = 0
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
# Quota periods are UTC. Where a WEEK starts is undocumented: ISO weeks (Monday) here. The
# quota's `offset` (subtracted in the plan's first period only) is ignored: moto keeps no
# creation date to tell the first period.
PERIOD_STARTS = {
    "DAY": lambda day: day,
    "WEEK": lambda day: day - timedelta(days=day.weekday()),
    "MONTH": lambda day: day.replace(day=1),
}


class UsageCounts:
    """Calls per (usage plan id, API key id, UTC day), the data behind GetUsage."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, date], int] = {}
        # UpdateUsage: what a key's quota limit is moved by in one quota period, keyed by
        # (usage plan id, key id, the period's first day).
        self.extensions: dict[tuple[str, str, date], int] = {}
        self.lock = threading.Lock()

    def add(self, plan_id: str, key_id: str, day: date, calls: int) -> int:
        slot = (plan_id, key_id, day)
        with self.lock:
            self.calls[slot] = self.calls.get(slot, 0) + calls
            return self.calls[slot]

    def of_plan(self, plan_id: str) -> dict[tuple[str, date], int]:
        """A copy of one plan's counts by (key id, day)."""
        with self.lock:
            return {(key, day): n for (plan, key, day), n in self.calls.items() if plan == plan_id}

    def extensions_of(self, plan_id: str) -> dict[tuple[str, date], int]:
        """A copy of one plan's quota extensions by (key id, period start)."""
        with self.lock:
            return {(key, start): n for (plan, key, start), n in self.extensions.items()
                    if plan == plan_id}

    def extend(self, plan_id: str, key_id: str, period_start: date, by: int) -> None:
        with self.lock:
            slot = (plan_id, key_id, period_start)
            self.extensions[slot] = self.extensions.get(slot, 0) + by

    def records(self) -> list[dict]:
        with self.lock:
            slots = sorted(self.calls.items())
        return [
            {"usagePlanId": plan, "keyId": key, "day": day.isoformat(), "calls": calls}
            for (plan, key, day), calls in slots
        ]

    def clear(self) -> int:
        with self.lock:
            cleared = len(self.calls)
            self.calls.clear()
            self.extensions.clear()
            return cleared

    def snapshot(self) -> dict:
        with self.lock:
            return {"calls": dict(self.calls), "extensions": dict(self.extensions)}

    def restore(self, saved: dict) -> None:
        with self.lock:
            self.calls = dict(saved.get("calls", {}))
            self.extensions = dict(saved.get("extensions", {}))


USAGE = UsageCounts()


class UsageRequestError(Exception):
    """A refused /_test/usage request: 400 with {"message": ...}."""


def parse_day(value, name: str, error: type[Exception]) -> date:
    if not isinstance(value, str) or not DAY_PATTERN.fullmatch(value):
        raise error(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise error(f"{name} is not a valid date: {value!r}") from None


def days_between(first: date, last: date):
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


# GetUsage's request.

def query_value(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def usage_period(query: dict[str, list[str]]) -> tuple[date, date]:
    start = parse_day(query_value(query, "startDate"), "startDate", BadRequestException)
    end = parse_day(query_value(query, "endDate"), "endDate", BadRequestException)
    if end < start:
        raise BadRequestException("endDate must not be before startDate")
    if (end - start).days + 1 > MAX_USAGE_DAYS:
        raise BadRequestException(f"The usage data period cannot exceed {MAX_USAGE_DAYS} days")
    return start, end


def page_size(query: dict[str, list[str]]) -> int:
    raw = query_value(query, "limit")
    if raw is None:
        return DEFAULT_USAGE_PAGE
    if not re.fullmatch(r"\d+", raw) or not 1 <= int(raw) <= MAX_USAGE_PAGE:
        raise BadRequestException(f"limit must be an integer from 1 to {MAX_USAGE_PAGE}")
    return int(raw)


# moto's API Gateway pages nothing, so the position is ours: the last key id of the page given,
# opaque to the caller.
def encode_position(last_key_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_key_id}).encode()).decode()


def decode_position(position: str | None) -> str | None:
    if position is None:
        return None
    try:
        after = json.loads(base64.urlsafe_b64decode(position.encode()))["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise BadRequestException("Invalid position") from None
    if not isinstance(after, str):
        raise BadRequestException("Invalid position")
    return after


# GetUsage's answer.

def usage_key_ids(backend, plan_id: str, counts: dict, start: date, end: date) -> list[str]:
    """The keys attached to the plan now, and those with calls recorded on it in the period
    (a key detached since still has its usage)."""
    attached = set(backend.usage_plan_keys.get(plan_id, {}))
    used = {key for key, day in counts if start <= day <= end}
    return sorted(attached | used)


def quota_of(plan) -> tuple[int, str] | None:
    """(limit, period), or None when the plan has no complete quota."""
    quota = plan.quota or {}
    if quota.get("limit") is None or quota.get("period") not in PERIOD_STARTS:
        return None
    return int(quota["limit"]), quota["period"]


def daily_usage(counts: dict, key_id: str, start: date, end: date, quota,
                extensions: dict | None = None) -> list[list[int]]:
    """[used, remaining] for each day of start..end. remaining is the quota's limit (moved by
    UpdateUsage in that period, see update_usage) minus the calls of the quota period up to and
    including that day (days before `start` in the same period count), never below 0;
    NO_QUOTA_REMAINING when the plan has no quota."""
    if quota is None:
        return [[counts.get((key_id, day), 0), NO_QUOTA_REMAINING] for day in days_between(start, end)]
    limit, period = quota
    period_start = PERIOD_STARTS[period]
    extensions = extensions or {}
    pairs, used_in_period = [], 0
    for day in days_between(period_start(start), end):
        if period_start(day) == day:
            used_in_period = 0
        used = counts.get((key_id, day), 0)
        used_in_period += used
        if day >= start:
            moved = extensions.get((key_id, period_start(day)), 0)
            pairs.append([used, max(limit + moved - used_in_period, 0)])
    return pairs


def get_usage(self: APIGatewayResponse):
    """GET /usageplans/{usagePlanId}/usage, answered as API Gateway does."""
    query = parse_qs(self.parsed_url.query, keep_blank_values=True)
    start, end = usage_period(query)
    limit = page_size(query)
    after = decode_position(query_value(query, "position"))
    key_filter = query_value(query, "keyId")
    plan_id = unquote(self.path.split("/")[2])
    plan = self.backend.get_usage_plan(plan_id)  # 404 NotFoundException when unknown

    counts = USAGE.of_plan(plan_id)
    extensions = USAGE.extensions_of(plan_id)
    key_ids = [
        key for key in usage_key_ids(self.backend, plan_id, counts, start, end)
        if (key_filter is None or key == key_filter) and (after is None or key > after)
    ]
    page = key_ids[:limit]
    quota = quota_of(plan)
    body = {
        "usagePlanId": plan_id,
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "values": {key: daily_usage(counts, key, start, end, quota, extensions) for key in page},
    }
    if len(key_ids) > limit:
        body["position"] = encode_position(page[-1])
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


UPDATE_USAGE_URL = "{0}/usageplans/(?P<usage_plan_id>[^/]+)/keys/(?P<key_id>[^/]+)/usage$"


def update_usage(self: APIGatewayResponse):
    """PATCH /usageplans/{usagePlanId}/keys/{keyId}/usage (UpdateUsage): `replace /remaining`
    sets what the key has left of the plan's quota in the current period (UTC today); later
    calls in the period count against it, the next period starts from the plan's limit. Answers
    the key's usage today, as API Gateway answers a Usage."""
    parts = self.path.split("/")
    plan_id, key_id = unquote(parts[2]), unquote(parts[4])
    plan = self.backend.get_usage_plan(plan_id)  # 404 NotFoundException when unknown
    if key_id not in self.backend.usage_plan_keys.get(plan_id, {}):
        raise BadRequestException(f"API key {key_id} is not in usage plan {plan_id}")
    quota = quota_of(plan)
    if quota is None:
        raise BadRequestException("Usage plan has no quota")
    operations = json.loads(self.body or "{}").get("patchOperations") or []
    today = datetime.now(timezone.utc).date()
    for operation in operations:
        if operation.get("op") != "replace" or operation.get("path") != "/remaining":
            raise BadRequestException(f"Invalid patch operation {operation!r}")
        value = operation.get("value")
        if not isinstance(value, str) or not value.isdigit():
            raise BadRequestException("remaining must be a non-negative integer")
        counts = USAGE.of_plan(plan_id)
        [[_, remaining]] = daily_usage(counts, key_id, today, today, quota, USAGE.extensions_of(plan_id))
        USAGE.extend(plan_id, key_id, PERIOD_STARTS[quota[1]](today), int(value) - remaining)
    values = daily_usage(USAGE.of_plan(plan_id), key_id, today, today, quota, USAGE.extensions_of(plan_id))
    body = {"usagePlanId": plan_id, "startDate": today.isoformat(), "endDate": today.isoformat(),
            "values": {key_id: values}}
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB models: `deepcopy` of a whole
    table (moto's transaction snapshot) returns the table itself; anything else is copied."""

    @staticmethod
    def deepcopy(value, memo=None):
        from moto.dynamodb.models.table import Table

        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


# One DynamoDB write at a time, transactions included (reentrant: a batch write puts items).
DYNAMODB_WRITES = threading.RLock()


def install_atomic_transactions() -> None:
    """DynamoDB's TransactWriteItems as DynamoDB does it, all or nothing also under concurrent
    requests, at the cost of the items it touches. moto applies a transaction's items one by
    one and, on a failure, puts back a deep copy of every table it took before: a copy made per
    item, in proportion to the table (seconds per transaction on a soak's table), and, as the
    server is threaded, one that can put back another request's half-applied transaction or
    drop its writes (a claim and a lease that nobody holds, a lost write). Here writes take one
    lock, and a failed transaction puts back the items it touched, as they were."""
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    dynamodb_models.copy = _TablesNotCopied()
    transact = DynamoDBBackend.transact_write_items

    def keys_of(backend, transact_items):
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table_name = op.get("TableName")
            if table_name not in backend.tables:
                continue
            table = backend.get_table(table_name)
            if "Key" in op:
                key = op["Key"]
            else:
                attrs = op.get("Item", {})
                key = {name: attrs[name] for name in (table.hash_key_attr, table.range_key_attr)
                       if name and name in attrs}
            yield table_name, key

    def atomic_transact(self, transact_items):
        with DYNAMODB_WRITES:
            touched = []
            for table_name, key in keys_of(self, transact_items):
                try:
                    before = self.get_item(table_name, key)
                except Exception:  # a malformed key: moto's own call answers for it
                    continue
                touched.append((table_name, key, before.to_json()["Attributes"] if before else None))
            try:
                return transact(self, transact_items)
            except Exception:
                # Canceled, or refused half-way (two operations on one item): nothing stays.
                for table_name, key, before in reversed(touched):
                    if before is None:
                        self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, before)
                raise

    DynamoDBBackend.transact_write_items = atomic_transact
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _holding(DYNAMODB_WRITES, getattr(DynamoDBBackend, name)))


def install_partition_queries() -> None:
    """DynamoDB's Query on a table's own key reads that key's partition. moto's lists and sorts
    every item of the table for each query, then keeps the partition's: a cost in proportion to
    the table, which the event log and every customer's items grow through a run (37% of
    moto's CPU in a short soak, sampled with py-spy). Here such a query starts from the
    partition's items; what moto does with them after (order, pages, filters, projections) is
    unchanged. Queries on an index are moto's own."""
    import inspect

    from moto.dynamodb.models.table import Table

    asked = threading.local()
    all_items, query = Table.all_items, Table.query
    parameters = inspect.signature(query)

    def partition_or_all_items(self):
        table_and_key = getattr(asked, "partition", None)
        if table_and_key is None or table_and_key[0] is not self:
            return all_items(self)
        partition = self.items.get(table_and_key[1])  # .get: items is a defaultdict
        if partition is None:
            return []
        return list(partition.values()) if self.range_key_attr else [partition]

    def partition_query(self, hash_key, *args, **kwargs):
        if hash_key is None or parameters.bind(self, hash_key, *args, **kwargs).arguments.get("index_name"):
            return query(self, hash_key, *args, **kwargs)
        asked.partition = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            asked.partition = None

    Table.all_items = partition_or_all_items
    Table.query = partition_query


def _holding(lock, method):
    def held(*args, **kwargs):
        with lock:
            return method(*args, **kwargs)
    held.__name__ = method.__name__
    return held


def install_get_usage() -> None:
    """Routes GetUsage to get_usage and UpdateUsage to update_usage: moto finds a REST
    operation's handler by its name in snake case on the service's response class, among the
    paths of the service's urls module."""
    for name in ("get_usage", "update_usage"):
        if hasattr(APIGatewayResponse, name):
            raise RuntimeError(f"moto implements {name} now: drop ours from moto_durable.py")
    APIGatewayResponse.get_usage = get_usage
    APIGatewayResponse.update_usage = update_usage
    APIGatewayResponse._get_action = get_action_or_get_usage(APIGatewayResponse._get_action)
    apigateway_urls.url_paths[USAGE_URL] = APIGatewayResponse.dispatch
    apigateway_urls.url_paths[UPDATE_USAGE_URL] = APIGatewayResponse.dispatch


def get_action_or_get_usage(get_action):
    """moto names the operation only when the request has the operation's required query
    arguments: GetUsage without a date would answer a bare 404 instead of API Gateway's 400."""

    def named(self: APIGatewayResponse) -> str:
        action = get_action(self)
        if not action and self.method == "GET" and USAGE_PATH.fullmatch(self.path):
            return "GetUsage"
        return action

    return named


# The test endpoint.

def apigateway_backends_with_key(key_id: str) -> list:
    """The API Gateway backends (any account, any region already in use) holding the key."""
    return [
        backend
        for account in dict.values(get_backend("apigateway"))  # plain dict reads create nothing
        for backend in dict.values(account)
        if key_id in backend.keys
    ]


def usage_slot(body) -> tuple[str, str, date, int]:
    """(usage plan id, key id, day, calls) of a POST /_test/usage body, checked against the
    keys and usage plans moto holds."""
    if not isinstance(body, dict):
        raise UsageRequestError("the body must be a JSON object")
    key_id = body.get("keyId")
    if not isinstance(key_id, str):
        raise UsageRequestError("keyId must be a string")
    backends = apigateway_backends_with_key(key_id)
    if not backends:
        raise UsageRequestError(f"unknown API key {key_id}")
    if len(backends) > 1:
        raise UsageRequestError(f"API key {key_id} is in several accounts or regions")
    plan_id = usage_plan_of(backends[0], key_id, body.get("usagePlanId"))
    day = parse_day(body.get("day"), "day", UsageRequestError)
    calls = body.get("calls")
    if not isinstance(calls, int) or isinstance(calls, bool) or calls < 0:
        raise UsageRequestError(f"calls must be an integer >= 0, got {calls!r}")
    return plan_id, key_id, day, calls


def usage_plan_of(backend, key_id: str, plan_id) -> str:
    """The usage plan given, to which the key must be attached, or else the one plan the key is
    attached to now."""
    if plan_id is None:
        plans = [plan.id for plan in backend.get_usage_plans(api_key_id=key_id)]
        if len(plans) != 1:
            raise UsageRequestError(
                f"API key {key_id} is attached to {len(plans)} usage plans {plans}: give usagePlanId"
            )
        return plans[0]
    if not isinstance(plan_id, str) or plan_id not in backend.usage_plans:
        raise UsageRequestError(f"unknown usage plan {plan_id!r}")
    if key_id not in backend.usage_plan_keys.get(plan_id, {}):
        raise UsageRequestError(f"API key {key_id} is not attached to usage plan {plan_id}")
    return plan_id


def read_json_body(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        return json.loads(environ["wsgi.input"].read(length) or b"null")
    except ValueError:
        raise UsageRequestError("the body is not JSON") from None


def answer_test_usage(environ, start_response):
    """POST /_test/usage records calls, GET lists them all, DELETE clears them."""
    method = environ.get("REQUEST_METHOD")
    if method == "GET":
        return json_answer(start_response, "200 OK", {"usage": USAGE.records()})
    if method == "DELETE":
        return json_answer(start_response, "200 OK", {"cleared": USAGE.clear()})
    if method != "POST":
        return json_answer(start_response, "405 Method Not Allowed", {"message": f"{method} not allowed"})
    try:
        plan_id, key_id, day, calls = usage_slot(read_json_body(environ))
    except UsageRequestError as refused:
        return json_answer(start_response, "400 Bad Request", {"message": str(refused)})
    total = USAGE.add(plan_id, key_id, day, calls)
    recorded = {"usagePlanId": plan_id, "keyId": key_id, "day": day.isoformat(), "calls": total}
    return json_answer(start_response, "200 OK", recorded)


def json_answer(start_response, status: str, body) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


# --- API Gateway's limits on API keys: CreateApiKey's rate and the account's key quota ----------
#
# Documented (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html and
# .../api-gateway-execution-service-limits-table.html): CreateApiKey, 5 requests per second per
# account, not adjustable; API keys per account per Region, 10,000, not adjustable. No burst is
# documented for CreateApiKey: the bucket here holds MOTO_APIGW_KEY_BURST tokens, by default one
# second's worth.
#
# The wire shape is API Gateway's (REST-JSON, botocore's model apigateway 2015-07-09): the error
# code in the header x-amzn-ErrorType, the body {"message": ...}. Both TooManyRequestsException
# and LimitExceededException are modelled with httpStatusCode 429 and a retryAfterSeconds member
# bound to the header Retry-After. The SDKs read the code from the header, not from the status,
# and retry both codes as throttling (botocore's standard mode and the Rust SDK's
# THROTTLING_ERRORS list both name them). Which code and status AWS answers when the account's
# key quota is full is not documented: the modelled LimitExceededException at 429 is the choice
# here, without Retry-After (waiting does not free a key) and with a message naming the quota.

DEFAULT_KEY_RATE = 5.0
KEY_LIMIT_VARIABLES = ("MOTO_APIGW_KEY_RATE", "MOTO_APIGW_KEY_BURST", "MOTO_APIGW_KEY_QUOTA")
UNLIMITED_WORDS = ("", "none", "off", "unlimited")


class LimitsError(Exception):
    """A refused limit setting (environment or test endpoint)."""


def positive_rate(value, name: str) -> float | None:
    """Keys per second, or None for no rate limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise LimitsError(f"{name} must be a number of keys per second above 0 or null, got {value!r}")
    return float(value)


def count_at_least(value, name: str, least: int, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        allowed = " or null" if nullable else ""
        raise LimitsError(f"{name} must be an integer >= {least}{allowed}, got {value!r}")
    return value


def default_burst(rate: float | None) -> int:
    return max(1, math.ceil(rate)) if rate is not None else 1


def limits_from_environment(environ) -> dict:
    """{key_rate, key_burst, key_quota} from MOTO_APIGW_KEY_*: the rate defaults to 5 keys per
    second (none, off or unlimited: no rate limit), the burst to one second's worth, the quota to
    none."""

    def word(name: str) -> str | None:
        value = environ.get(name)
        return None if value is None else value.strip()

    def number(name: str, text: str):
        try:
            return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
        except ValueError:
            raise LimitsError(f"{name} must be a number, got {text!r}") from None

    rate_text, burst_text, quota_text = (word(name) for name in KEY_LIMIT_VARIABLES)
    if rate_text is None:
        rate = DEFAULT_KEY_RATE
    elif rate_text.lower() in UNLIMITED_WORDS:
        rate = None
    else:
        rate = positive_rate(number("MOTO_APIGW_KEY_RATE", rate_text), "MOTO_APIGW_KEY_RATE")
    burst = default_burst(rate) if not burst_text else count_at_least(
        number("MOTO_APIGW_KEY_BURST", burst_text), "MOTO_APIGW_KEY_BURST", 1, nullable=False)
    quota = None if quota_text is None or quota_text.lower() in UNLIMITED_WORDS else count_at_least(
        number("MOTO_APIGW_KEY_QUOTA", quota_text), "MOTO_APIGW_KEY_QUOTA", 0, nullable=False)
    return {"key_rate": rate, "key_burst": burst, "key_quota": quota}


class KeyLimits:
    """The rate (a token bucket per account) and the quota (keys per account and region) of
    CreateApiKey, with counts of what they refused. One lock covers the check and the creation,
    so concurrent creations cannot pass the quota together."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rate: float | None = DEFAULT_KEY_RATE
        self.burst = default_burst(DEFAULT_KEY_RATE)
        self.quota: int | None = None
        self.buckets: dict[str, tuple[float, float]] = {}  # account -> (tokens, at)
        self.counts = {"created": 0, "throttled": 0, "refused_by_quota": 0}

    def configure(self, changes: dict) -> None:
        """Sets the given limits (key_rate, key_burst, key_quota; null: none) and refills the
        buckets."""
        if not isinstance(changes, dict):
            raise LimitsError("the body must be a JSON object")
        unknown = sorted(set(changes) - {"key_rate", "key_burst", "key_quota"})
        if unknown:
            raise LimitsError(f"unknown settings {unknown}: key_rate, key_burst, key_quota")
        rate = positive_rate(changes["key_rate"], "key_rate") if "key_rate" in changes else self.rate
        burst = (count_at_least(changes["key_burst"], "key_burst", 1, nullable=False)
                 if "key_burst" in changes else self.burst)
        quota = (count_at_least(changes["key_quota"], "key_quota", 0, nullable=True)
                 if "key_quota" in changes else self.quota)
        with self.lock:
            self.rate, self.burst, self.quota = rate, burst, quota
            self.buckets.clear()

    def clear_counts(self) -> None:
        with self.lock:
            self.counts = dict.fromkeys(self.counts, 0)
            self.buckets.clear()

    def describe(self) -> dict:
        with self.lock:
            return {"key_rate": self.rate, "key_burst": self.burst, "key_quota": self.quota,
                    **self.counts}

    def take_token(self, account: str, now: float) -> float:
        """Takes one token of the account's bucket: 0.0 when taken, else the seconds until one
        is there. Call with the lock held."""
        if self.rate is None:
            return 0.0
        tokens, at = self.buckets.get(account, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self.buckets[account] = (tokens - 1.0, now)
            return 0.0
        self.buckets[account] = (tokens, now)
        return (1.0 - tokens) / self.rate


KEY_LIMITS = KeyLimits()


def api_gateway_error(status: int, code: str, message: str, **headers: str):
    """An API Gateway error as moto's REST responses return it (the status travels in the
    headers' "status")."""
    return status, {"status": status, "Content-Type": "application/json",
                    "x-amzn-ErrorType": code, **headers}, json.dumps({"message": message})


def create_api_key_within_limits(create_api_key):
    """CreateApiKey, refused 429 TooManyRequestsException over the rate, and
    LimitExceededException once the account holds the quota's number of keys in the region."""

    def create(self: APIGatewayResponse):
        backend = self.backend
        with KEY_LIMITS.lock:
            wait = KEY_LIMITS.take_token(backend.account_id, time.monotonic())
            if wait > 0:
                KEY_LIMITS.counts["throttled"] += 1
                return api_gateway_error(429, "TooManyRequestsException", "Too Many Requests",
                                         **{"Retry-After": str(max(1, math.ceil(wait)))})
            quota, held = KEY_LIMITS.quota, len(backend.keys)
            if quota is not None and held >= quota:
                KEY_LIMITS.counts["refused_by_quota"] += 1
                print(f"moto: CreateApiKey refused, LimitExceededException: account "
                      f"{backend.account_id} holds {held} API keys in {backend.region_name}, "
                      f"its quota (MOTO_APIGW_KEY_QUOTA) is {quota}", flush=True)
                return api_gateway_error(
                    429, "LimitExceededException",
                    f"API key quota reached: {held} API keys in this account and Region, "
                    f"the most it may hold is {quota}")
            answer = create_api_key(self)
            KEY_LIMITS.counts["created"] += 1
            return answer

    return create


def install_key_limits(environ) -> None:
    KEY_LIMITS.configure(limits_from_environment(environ))
    APIGatewayResponse.create_api_key = create_api_key_within_limits(APIGatewayResponse.create_api_key)


def answer_test_key_limits(environ, start_response):
    """GET: the limits and what they refused; POST {key_rate, key_burst, key_quota} changes
    them (null: no limit); DELETE clears the counts and refills the buckets."""
    method = environ.get("REQUEST_METHOD")
    if method == "DELETE":
        KEY_LIMITS.clear_counts()
    elif method == "POST":
        try:
            KEY_LIMITS.configure(read_json_body(environ))
        except (LimitsError, UsageRequestError) as refused:
            return json_answer(start_response, "400 Bad Request", {"message": str(refused)})
        print(f"moto: API key limits now {KEY_LIMITS.describe()}", flush=True)
    elif method != "GET":
        return json_answer(start_response, "405 Method Not Allowed", {"message": f"{method} not allowed"})
    return json_answer(start_response, "200 OK", KEY_LIMITS.describe())


TEST_ENDPOINTS = {TEST_USAGE_PATH: answer_test_usage, TEST_KEY_LIMITS_PATH: answer_test_key_limits}


def _tag_dict(items: dict) -> defaultdict:
    """SSM's resource tags as moto builds them: defaultdict(lambda: defaultdict(dict))."""
    restored = defaultdict(lambda: defaultdict(dict))
    restored.update(items)
    return restored


def _subclass_dict(cls: type, default_factory, attributes: dict, items: dict) -> defaultdict:
    """A defaultdict subclass whose __init__ takes other arguments (SSM's ParameterDict)."""
    restored = cls.__new__(cls)
    defaultdict.__init__(restored, default_factory)
    restored.__dict__.update(attributes)
    restored.update(items)
    return restored


def _reduce_defaultdict(value: defaultdict):
    # A lambda default factory cannot be pickled; moto's only one (SSM's tags) is rebuilt.
    if getattr(value.default_factory, "__name__", "") == "<lambda>":
        return (_tag_dict, (dict(value),))
    return value.__reduce__()


def _reduce_defaultdict_subclass(value: defaultdict):
    return (_subclass_dict, (type(value), value.default_factory, dict(value.__dict__), dict(value)))


def dump_state(path: str) -> None:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # Backends hold locks; a restored backend gets fresh ones.
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    pickler.dispatch_table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    pickler.dispatch_table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    pickler.dispatch_table[defaultdict] = _reduce_defaultdict
    # dispatch_table matches exact types: register moto's defaultdict subclasses too.
    from moto.ssm.models import ParameterDict
    pickler.dispatch_table[ParameterDict] = _reduce_defaultdict_subclass
    state = {name: dict(get_backend(name)) for name in SERVICES}
    state[USAGE_STATE_KEY] = USAGE.snapshot()
    pickler.dump(state)
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as file:
        file.write(buffer.getvalue())
    os.replace(temporary, path)


def load_state(path: str) -> None:
    with open(path, "rb") as file:
        state = pickle.load(file)
    # A state saved before usage was recorded has none.
    USAGE.restore(state.pop(USAGE_STATE_KEY, {}))
    for name, accounts in state.items():
        backend = get_backend(name)
        backend.clear()
        backend.update(accounts)


class KeepAliveRequestHandler(MotoRequestHandler):
    """MotoRequestHandler that keeps the connection open after a response (MOTO_KEEP_ALIVE=1).

    werkzeug closes every connection, and after a response reads whatever the socket holds
    (the next request, on a kept connection). Here the body is read whole first and werkzeug
    reads it from memory, so nothing of the next request is touched."""

    kept = False
    # An answer goes out in two writes (headers, body): with Nagle's algorithm the second waits
    # for the client's delayed ACK of the first, 40 ms a request on a kept connection.
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        self.kept = (
            "Transfer-Encoding" not in self.headers
            and "Expect" not in self.headers
            and length.isdigit()
        )
        if not self.kept:
            return super().run_wsgi()
        connection_file = self.rfile
        self.rfile = io.BufferedReader(io.BytesIO(connection_file.read(int(length))))
        try:
            return super().run_wsgi()
        finally:
            self.rfile = connection_file

    def send_header(self, keyword, value):
        if self.kept and keyword.lower() == "connection" and value.lower() == "close":
            return
        super().send_header(keyword, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--state", help="file the state is saved to on stop and loaded from on start")
    args = parser.parse_args()
    install_get_usage()
    install_atomic_transactions()
    install_partition_queries()
    try:
        install_key_limits(os.environ)
    except LimitsError as refused:
        parser.error(str(refused))
    print(f"moto: API key limits {KEY_LIMITS.describe()}", flush=True)

    if args.state and os.path.exists(args.state):
        started = time.monotonic()
        load_state(args.state)
        print(f"moto: state loaded from {args.state} in {time.monotonic() - started:.2f}s", flush=True)

    app = InFlight(DomainDispatcherApplication(create_backend_app))
    keep_alive = os.environ.get("MOTO_KEEP_ALIVE") == "1"
    handler = KeepAliveRequestHandler if keep_alive else MotoRequestHandler
    server = make_server(args.host, args.port, app, threaded=True, request_handler=handler)
    stopping = threading.Event()

    def stop(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            print(f"moto: signal {signum}, stopping", flush=True)
            app.close()
            # shutdown() waits for serve_forever to return, so it runs off the serving thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"moto: serving on http://{args.host}:{args.port}"
          f"{' (keep-alive)' if keep_alive else ''}", flush=True)
    server.serve_forever()
    server.server_close()
    if not app.wait_idle(DRAIN_SECONDS):
        print(f"moto: {app.count} requests still in flight after {DRAIN_SECONDS}s", flush=True)
    if args.state:
        started = time.monotonic()
        dump_state(args.state)
        print(f"moto: state saved to {args.state} in {time.monotonic() - started:.2f}s", flush=True)
    # Handler threads stuck in moto must not hold the exit once the state is safe.
    os._exit(0)


if __name__ == "__main__":
    main()
