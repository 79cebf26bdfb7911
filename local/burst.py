#!/usr/bin/env python3
"""A burst of sign-ups and checkouts against API Gateway's key limits, on the local emulators.

USERS people sign up at once (Cognito: SignUp, then confirmation, which runs the post-confirmation
trigger), BUYERS of them buy pro as a browser would: POST /checkout (the checkout function), the
payment in the Stripe emulator (its webhooks reach the webhook function), the success return
GET /checkout/complete (the checkout function provisions too). All of it from a thread pool, while
the moto wrapper holds API Gateway's CreateApiKey rate (--key-rate, default 5 a second as AWS
documents) and, with --key-quota N, room for only N more API keys in the account.

Then it waits, bounded, until the state converges, running `billing-admin reconcile` now and then
as the scheduled reconciler would (the Stripe emulator gives a failing delivery up after 5
attempts in ~7.5 s; Stripe would retry for three days), and checks:
  - every user is linked to a Stripe customer (none lost), or else the trigger logged that it
    gave up on it (the designed fallback: checkout makes the customer; counted, not a loss);
  - every paying user has exactly one enabled API key, on the pro usage plan only, and
    custom:plan_type=pro; no user has two keys;
  - with --key-quota: the buyers left without a key are no more than the quota refused, moto
    refused CreateApiKey for the quota, and the functions' logs (local/.run/logs/lambda.log,
    soak-functions.log) say so (ApiKeyQuotaReached or LimitExceededException); those buyers are
    counted, not lost.
The Stripe emulator's webhook deliveries go to --webhook-processes webhook processes polling
bench-harness's Runtime API for the run, as in the soak (Lambda runs invocations concurrently;
cargo lambda watch runs one at a time, and stops answering under this load); the trigger and
checkout run under cargo lambda watch.
It prints a summary table and exits 1 on a real loss (a user unlinked without a logged trigger
failure, a payer without a key the quota does not explain, a user with two keys, a step that
failed for good).

    local/burst.py                                  # 500 users, 250 buyers, in about a minute
    local/burst.py --users 40 --buyers 20           # the short run
    local/burst.py --users 100 --buyers 60 --key-quota 40

Needs local/up.sh, local/build-functions.sh (billing-admin) and `set -a; . local/.run/env; set +a`
(local/with-env.sh does all three). The key limits it sets are put back at the end.
"""

from __future__ import annotations

import argparse
import base64
import collections
import concurrent.futures
import json
import os
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import boto3
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402  (the demo's Stripe, HTTP-event and billing-admin helpers)
import soak  # noqa: E402  (its webhook processes behind bench-harness's Runtime API)

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "local" / ".run" / "logs"
# cargo lambda watch's log (post-confirmation, checkout, billing-admin's own log apart) and the
# webhook processes' (soak.Functions writes there).
FUNCTION_LOGS = (LOG_DIR / "lambda.log", LOG_DIR / "soak-functions.log")
PASSWORD = "Burst-Passw0rd!"
REGION = "us-east-1"
LIMITS_PATH = "/_test/apigateway/limits"
# A step a person would retry (an answer 5xx or 429, a connection refused) is retried this often.
STEP_ATTEMPTS = 3
QUOTA_LOG_MARKERS = ("ApiKeyQuotaReached", "LimitExceededException")
# What the trigger logs when it gives up within Cognito's 5 s: the sign-up goes on, unlinked, and
# checkout makes the customer (README: the trigger never blocks a sign-up).
TRIGGER_GAVE_UP = re.compile(r"could not ensure the stripe customer.*?\bsub=([0-9a-f-]{36})")


@dataclass
class User:
    index: int
    username: str
    buyer: bool
    sub: str = ""
    session_id: str = ""
    paid: bool = False
    failed: str = ""  # the step that failed for good, and why
    retried: int = 0


@dataclass
class Timing:
    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, name: str) -> None:
        with self.lock:
            self.marks[name] = time.monotonic() - self.started


class WebhookPool:
    """The Stripe emulator's deliveries, sent for the run to PROCESSES webhook processes polling
    bench-harness's Runtime API (soak.Functions), as Lambda runs concurrent invocations, instead
    of to cargo lambda watch, which runs one invocation of a function at a time: deliveries queue
    there past the emulator's 10 s timeout, and cargo lambda watch stops answering once enough
    callers have given up (seen here). A forwarder on 127.0.0.1 takes the emulator's POSTs; the
    emulator's endpoint is pointed at it and back to cargo lambda watch at the end."""

    def __init__(self, shared: demo.Demo, processes: int) -> None:
        self.shared = shared
        self.functions = soak.Functions(processes)
        functions = self.functions

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, answer = functions.post(body, self.headers.get("Stripe-Signature", ""))
                except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as error:
                    status, answer = 502, str(error).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the emulator gave up waiting (10 s): it retries, as Stripe does

            def log_message(self, *_args) -> None:
                pass

        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
            self.server.daemon_threads = True
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
            self.secret = demo.env("STRIPE_WEBHOOK_SECRETS").split(",")[0].strip()
            self.point(f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook")
        except BaseException:
            self.functions.stop()
            raise

    def point(self, url: str) -> None:
        """The emulator's endpoint `lambda` (local/bootstrap.py's) now posts to this URL."""
        request = urllib.request.Request(
            f"{self.shared.stripe_base}/_config/webhooks/lambda", method="POST",
            data=urllib.parse.urlencode({"url": url, "secret": self.secret}).encode(),
            headers={"Authorization": f"Bearer {self.shared.stripe_key}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def close(self) -> None:
        try:
            self.point(f"{self.shared.lambda_base}/lambda-url/webhook/stripe/webhook")
        finally:
            self.server.shutdown()
            self.functions.stop()


class Burst:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.shared = demo.Demo()  # Stripe and billing-admin helpers, the env's settings
        config = boto3.session.Config(retries={"mode": "standard", "max_attempts": 10},
                                      max_pool_connections=64)
        creds = {"region_name": os.environ.get("AWS_REGION", REGION),
                 "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                 "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "local")}
        self.cognito = boto3.client("cognito-idp", config=config, **creds,
                                    endpoint_url=demo.env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"))
        self.dynamodb = boto3.client("dynamodb", config=config, **creds,
                                     endpoint_url=demo.env("AWS_ENDPOINT_URL_DYNAMODB"))
        self.moto_url = demo.env("AWS_ENDPOINT_URL_API_GATEWAY").rstrip("/")
        self.apigateway = boto3.client("apigateway", config=config, **creds, endpoint_url=self.moto_url)
        plans = dict(e.split("=", 1) for e in demo.env("PLANS").split(","))
        self.pro_plan, self.free_plan = plans["pro"], plans.get("free", "")
        self.timing = Timing()

    # --- moto's key limits ------------------------------------------------------------------

    def limits(self, changes: dict | None = None) -> dict:
        data = None if changes is None else json.dumps(changes).encode()
        request = urllib.request.Request(f"{self.moto_url}{LIMITS_PATH}", data=data,
                                         method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as refused:
            sys.exit(f"burst: {LIMITS_PATH} answered {refused.code}: {refused.read()[:300]!r} "
                     "(is the moto wrapper of this branch running? local/down.sh && local/up.sh)")

    def clear_limit_counts(self) -> None:
        request = urllib.request.Request(f"{self.moto_url}{LIMITS_PATH}", method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def keys_by_name(self) -> dict[str, list[dict]]:
        keys: dict[str, list[dict]] = collections.defaultdict(list)
        for page in self.apigateway.get_paginator("get_api_keys").paginate(PaginationConfig={"PageSize": 500}):
            for key in page["items"]:
                keys[key.get("name", "")].append(key)
        return keys

    # --- one person -------------------------------------------------------------------------

    def step(self, user: User, name: str, action):
        """Runs one step as a person would: again after a moment when the answer was 5xx, 429 or
        no answer; the last failure marks the user failed at that step."""
        for attempt in range(1, STEP_ATTEMPTS + 1):
            try:
                return action()
            except (demo.Failed, urllib.error.URLError, ConnectionError, TimeoutError,
                    ClientError) as error:
                transient = retryable(error)
                if attempt == STEP_ATTEMPTS or not transient:
                    user.failed = f"{name}: {type(error).__name__}: {str(error)[:300]}"
                    raise StepFailed from error
                user.retried += 1
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def person(self, user: User) -> User:
        try:
            self.sign_up(user)
            if user.buyer:
                self.buy(user)
        except StepFailed:
            pass
        return user

    def sign_up(self, user: User) -> None:
        answer = self.step(user, "SignUp", lambda: self.cognito.sign_up(
            ClientId=self.shared.client_id, Username=user.username, Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": f"{user.username}@example.com"}]))
        user.sub = answer["UserSub"]
        # cognito-local runs the post-confirmation trigger before it answers.
        self.step(user, "AdminConfirmSignUp", lambda: self.cognito.admin_confirm_sign_up(
            UserPoolId=self.shared.pool_id, Username=user.username))

    def buy(self, user: User) -> None:
        # What demo.api needs of the demo: where the functions answer, and the claims of the
        # user's ID token (signed in with the password), as the HTTP API's JWT authorizer passes.
        caller = SimpleNamespace(lambda_base=self.shared.lambda_base, facts={})
        caller.facts["claims"] = self.step(user, "InitiateAuth", lambda: self.id_token_claims(user))

        def checkout() -> dict:
            status, body, _ = demo.api(caller, "checkout", "POST", "/checkout", {"lookup_key": "pro_monthly"})
            if status != 200:
                raise demo.Failed(f"POST /checkout answered {status}: {body}")
            return body

        user.session_id = self.step(user, "POST /checkout", checkout)["id"]

        def pay() -> dict:
            self.shared.stripe("POST", f"/_test/checkout/sessions/{user.session_id}/complete")
            session = self.shared.stripe("GET", f"/v1/checkout/sessions/{user.session_id}")
            if session.get("payment_status") != "paid":
                raise demo.Failed(f"session {user.session_id} payment_status {session.get('payment_status')}")
            return session

        session = self.step(user, "payment", pay)
        user.paid = True
        if self.args.no_success_return:
            return
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(session["success_url"]).query))

        def success_return() -> str:
            status, body, headers = demo.api(caller, "checkout", "GET", "/checkout/complete",
                                             query=query, signed_in=False)
            location = headers.get("location", "")
            if status >= 500:
                raise demo.Failed(f"GET /checkout/complete answered {status}: {body}")
            return location

        # The browser follows the redirect; a 5xx there (provisioning failed for now, e.g. a key
        # throttled past the SDK's retries) is no loss: the webhook provisions too. Counted.
        try:
            location = self.step(user, "GET /checkout/complete", success_return)
            landed = location.rsplit("/", 1)[-1] or "?"
        except StepFailed:
            user.failed, landed = "", "5xx"
        with self.timing.lock:
            self.returns[landed] += 1

    def id_token_claims(self, user: User) -> dict[str, str]:
        auth = self.cognito.initiate_auth(
            ClientId=self.shared.client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user.username, "PASSWORD": PASSWORD})
        payload = auth["AuthenticationResult"]["IdToken"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        before = self.limits()
        keys_before = sum(len(k) for k in self.keys_by_name().values())
        quota = None if args.key_quota is None else keys_before + args.key_quota
        self.limits({"key_rate": args.key_rate, "key_burst": args.key_burst or max(1, round(args.key_rate or 1)),
                     "key_quota": quota})
        self.clear_limit_counts()
        log_offsets = {log: log.stat().st_size if log.exists() else 0 for log in FUNCTION_LOGS}
        run = f"{int(time.time()) % 10**6:06d}{secrets.randbelow(1000):03d}"
        users = [User(i, f"burst-{run}-{i}", buyer=i < args.buyers) for i in range(args.users)]
        # Buyers spread among the sign-ups, not all first.
        order = sorted(users, key=lambda u: (u.index * 7919) % len(users))
        self.returns = collections.Counter()
        limits_now = self.limits()
        print(f"burst {run}: {args.users} sign-ups, {args.buyers} of them buy pro, {args.concurrency} "
              f"at a time; CreateApiKey {fmt_rate(limits_now)}; key quota "
              f"{'none' if quota is None else f'{quota} ({keys_before} keys before, room for {args.key_quota})'}",
              flush=True)
        webhooks = WebhookPool(self.shared, args.webhook_processes) if args.webhook_processes else None
        try:
            with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(self.person, order))
            self.timing.mark("requests")
            print(f"  requests done in {self.timing.marks['requests']:.1f}s: "
                  f"{sum(1 for u in users if u.sub)} signed up, {sum(u.paid for u in users)} paid, "
                  f"{sum(bool(u.failed) for u in users)} failed steps, {sum(u.retried for u in users)} "
                  f"steps retried; success returns landed on {dict(self.returns)}", flush=True)
            state, reconciles = self.converge(users, quota is not None, log_offsets)
            self.timing.mark("converged")
            return self.report(users, state, reconciles, log_offsets, quota, keys_before)
        finally:
            try:
                if webhooks is not None:
                    webhooks.close()
            finally:
                self.limits({k: before[k] for k in ("key_rate", "key_burst", "key_quota")})

    def state(self, users: list[User]) -> dict:
        """Links, keys (per user: enabled, usage plans) and plan attributes, read in bulk."""
        keys = self.keys_by_name()
        on_plan = {plan: {k["id"] for page in self.apigateway.get_paginator("get_usage_plan_keys").paginate(
            usagePlanId=plan) for k in page["items"]} for plan in (self.pro_plan, self.free_plan) if plan}
        attributes = {}
        for page in self.cognito.get_paginator("list_users").paginate(UserPoolId=self.shared.pool_id):
            for found in page["Users"]:
                attributes[found["Username"]] = {a["Name"]: a["Value"] for a in found.get("Attributes", [])}
        per_user = {}
        for user in users:
            if not user.sub:
                continue
            link = self.dynamodb.get_item(TableName=self.shared.table, ConsistentRead=True, Key={
                "pk": {"S": f"USER#{user.sub}"}, "sk": {"S": "CUSTOMER"}}).get("Item")
            mine = keys.get(f"billing-user-{user.sub}", [])
            per_user[user.username] = {
                "linked": link is not None,
                "keys": [{"enabled": k.get("enabled"), "plans": sorted(p for p, ids in on_plan.items() if k["id"] in ids)}
                         for k in mine],
                "plan": attributes.get(user.username, {}).get("custom:plan_type"),
            }
        return per_user

    def good_key(self, state: dict) -> bool:
        return (len(state["keys"]) == 1 and state["keys"][0]["enabled"] is True
                and state["keys"][0]["plans"] == [self.pro_plan] and state["plan"] == "pro")

    def converge(self, users: list[User], quota_set: bool, log_offsets: dict) -> tuple[dict, int]:
        """Waits until every payer has its key and every user is linked (but those the trigger
        gave up on, which only a checkout links), or, with a quota, until the keys stop coming;
        at most --converge-seconds, with a reconciler run every --reconcile-every seconds."""
        deadline = time.monotonic() + self.args.converge_seconds
        next_reconcile = time.monotonic() + self.args.reconcile_every
        reconciles, last_good, still_since = 0, -1, time.monotonic()
        payers = [u for u in users if u.paid]
        while True:
            state = self.state(users)
            good = sum(self.good_key(state.get(u.username, {"keys": [], "plan": None})) for u in payers)
            gave_up = set(TRIGGER_GAVE_UP.findall(function_logs(log_offsets)))
            unlinked = sum(not state[u.username]["linked"] and u.sub not in gave_up
                           for u in users if u.username in state)
            if good != last_good:
                last_good, still_since = good, time.monotonic()
                print(f"  converging: {good}/{len(payers)} payers with their key, {unlinked} users "
                      f"unlinked (besides those the trigger gave up on), "
                      f"{time.monotonic() - self.timing.started:.0f}s", flush=True)
            done = good == len(payers) and unlinked == 0
            # With a quota, keys stop at the quota: settled once nothing moved for two reconciler
            # periods and a reconciler run has seen it.
            settled = quota_set and reconciles >= 1 and time.monotonic() - still_since > 2 * self.args.reconcile_every
            if done or settled or time.monotonic() > deadline:
                return state, reconciles
            if time.monotonic() >= next_reconcile:
                report = self.reconcile()
                reconciles += 1
                print(f"  billing-admin reconcile: {json.dumps(report)[:300]}", flush=True)
                next_reconcile = time.monotonic() + self.args.reconcile_every
            time.sleep(2)

    def reconcile(self) -> dict:
        try:
            return demo.billing_admin("reconcile")
        except demo.Failed as failed:  # an event that still fails stops a run: not fatal here
            return {"failed": str(failed)[-300:]}

    def report(self, users: list[User], state: dict, reconciles: int, log_offsets: dict,
               quota: int | None, keys_before: int) -> int:
        payers = [u for u in users if u.paid]
        without_key = [u for u in payers if not self.good_key(state.get(u.username, {"keys": [], "plan": None}))]
        two_keys = [name for name, s in state.items() if len(s["keys"]) > 1]
        unlinked = [u for u in users if u.sub and not state.get(u.username, {}).get("linked")]
        failed = [u for u in users if u.failed]
        moto = self.limits()
        log = function_logs(log_offsets)
        quota_lines = [line for line in log.splitlines() if any(m in line for m in QUOTA_LOG_MARKERS)]
        keys_now = sum(len(k) for k in self.keys_by_name().values())
        refused_for_quota = 0
        losses: list[str] = []
        if quota is not None and without_key:
            room = max(0, quota - keys_before)
            explained = max(0, len(payers) - room)
            refused_for_quota = min(len(without_key), explained)
            if len(without_key) > explained:
                losses.append(f"{len(without_key) - explained} payers without a key beyond what the "
                              f"quota explains (room for {room} keys, {len(payers)} payers)")
            if not moto["refused_by_quota"]:
                losses.append("payers without a key, yet moto refused no CreateApiKey for the quota")
            if not quota_lines:
                losses.append("the quota was hit, but the functions' logs (lambda.log, "
                              f"soak-functions.log) name neither {' nor '.join(QUOTA_LOG_MARKERS)} "
                              "since the run started")
        elif without_key:
            losses.append(f"{len(without_key)} payers without exactly one enabled key on pro (and "
                          f"plan pro), e.g. {[(u.username, state.get(u.username)) for u in without_key[:3]]}")
        if two_keys:
            losses.append(f"{len(two_keys)} users with two or more keys, e.g. "
                          f"{[(name, state[name]['keys']) for name in two_keys[:3]]}")
        trigger_gave_up = set(TRIGGER_GAVE_UP.findall(log))
        unexplained = [u for u in unlinked if u.sub not in trigger_gave_up]
        if unexplained:
            losses.append(f"{len(unexplained)} users not linked to a Stripe customer without a "
                          f"logged trigger failure, e.g. {[u.username for u in unexplained[:3]]}")
        if failed:
            losses.append(f"{len(failed)} users whose request failed for good, e.g. "
                          f"{[(u.username, u.failed) for u in failed[:3]]}")

        marks = self.timing.marks
        rows = [
            ("users signed up", f"{sum(1 for u in users if u.sub)} / {len(users)}"),
            ("linked to a Stripe customer", f"{len(users) - len(unlinked) - sum(1 for u in users if not u.sub)}"),
            ("unlinked, the trigger gave up", f"{len(unlinked) - len(unexplained)} (logged; checkout "
                                              "links them when they buy)"),
            ("buyers who paid", f"{len(payers)} / {sum(u.buyer for u in users)}"),
            ("payers with one key on pro", f"{len(payers) - len(without_key)}"),
            ("payers refused by the key quota", f"{refused_for_quota}" if quota is not None else "- (no quota)"),
            ("users with two keys", f"{len(two_keys)}"),
            ("requests failed for good", f"{len(failed)} ({sum(u.retried for u in users)} steps retried)"),
            ("CreateApiKey (moto)", f"{moto['created']} created, {moto['throttled']} throttled (429), "
                                    f"{moto['refused_by_quota']} refused for the quota"),
            ("API keys in the account", f"{keys_before} before, {keys_now} after"
                                        + (f", quota {quota}" if quota is not None else "")),
            ("quota lines in the functions' logs", f"{len(quota_lines)}"),
            ("reconciler runs", f"{reconciles}"),
            ("requests sent in", f"{marks.get('requests', 0):.1f} s"),
            ("converged in", f"{marks.get('converged', 0):.1f} s after the start"),
        ]
        width = max(len(name) for name, _ in rows)
        print()
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        if quota_lines:
            line = next((l for l in quota_lines if "LimitExceededException" in l), quota_lines[0])
            at = max(line.find(m) for m in QUOTA_LOG_MARKERS)
            print(f"  e.g. ...{line[max(0, at - 100):at + 160]}...")
        print()
        if losses:
            for loss in losses:
                print(f"[FAIL] {loss}", flush=True)
            return 1
        print("[ OK ] burst: every payer has one key (or the quota refused it, and said so), no "
              "user has two, none lost", flush=True)
        return 0


class StepFailed(Exception):
    """A person's step that failed for good (recorded on the user)."""


def function_logs(offsets: dict) -> str:
    """What the functions logged since the run started."""
    return "".join(path.read_bytes()[offset:].decode(errors="replace")
                   for path, offset in offsets.items() if path.exists())


def retryable(error: Exception) -> bool:
    text = str(error)
    if isinstance(error, (urllib.error.URLError, ConnectionError, TimeoutError)):
        return not isinstance(error, urllib.error.HTTPError) or error.code >= 500 or error.code == 429
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or status == 429
    return any(f"answered {code}" in text for code in ("500", "502", "503", "504", "429"))


def fmt_rate(limits: dict) -> str:
    if limits["key_rate"] is None:
        return "without a rate limit"
    return f"{limits['key_rate']:g} a second, burst {limits['key_burst']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--buyers", type=int, default=None, help="default: half the users")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--key-rate", type=float, default=5.0,
                        help="CreateApiKey per second in moto (AWS: 5 per account); 0 for none")
    parser.add_argument("--key-burst", type=int, default=None, help="default: one second's worth")
    parser.add_argument("--key-quota", type=int, default=None,
                        help="room for this many more API keys in the account (default: no quota)")
    parser.add_argument("--webhook-processes", type=int, default=16,
                        help="webhook processes the Stripe emulator's deliveries go to (Lambda's "
                             "concurrency); 0 leaves them to cargo lambda watch")
    parser.add_argument("--no-success-return", action="store_true",
                        help="leave provisioning to the webhook (no GET /checkout/complete)")
    parser.add_argument("--converge-seconds", type=float, default=300.0)
    parser.add_argument("--reconcile-every", type=float, default=30.0,
                        help="seconds between billing-admin reconcile runs while converging")
    args = parser.parse_args()
    if args.buyers is None:
        args.buyers = args.users // 2
    if not 0 <= args.buyers <= args.users or args.users < 1 or args.concurrency < 1:
        parser.error("need 1 <= users, 0 <= buyers <= users, concurrency >= 1")
    if args.key_quota is not None and args.key_quota < 0:
        parser.error("--key-quota must be >= 0")
    args.key_rate = None if not args.key_rate else args.key_rate
    return Burst(args).run()


if __name__ == "__main__":
    sys.exit(main())
