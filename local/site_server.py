"""The example site's dev server (local/up.sh starts it), on 127.0.0.1:$SITE_PORT, the site's
origin SITE_ORIGIN. It stands in for what a deployment puts in front of the site:

- the static host: web/ with clean URLs (/account is web/account.html), and /config.json made
  from local/.run/env (re-read when that file changes, e.g. a new user pool after up.sh);
- the billing HTTP API of template.yaml (BillingApi): its routes, its CORS for SITE_ORIGIN and its
  JWT authorizer (Cognito ID or access token in `Authorization`, checked against cognito-local's
  JWKS: RS256 signature, iss, aud or client_id, exp, nbf, iat), then the HTTP API 2.0 event
  invoked on the function under cargo lambda watch, as local/demo.py's api() builds it;
- the product API: GET /hello with `x-api-key`, checked against moto's API keys and usage plans,
  each call recorded through moto's POST /_test/usage. Beside AWS's answer it reports the
  key's quota (limit and what remains this period): a real API Gateway does not;
- GET /_local/confirmation-code?username=U: the sign-up code cognito-local stored (a local-only
  convenience; in AWS the code arrives by e-mail).

The functions link back to an API served on 127.0.0.1 over plain http (Checkout's success
return), so no certificate is needed.

The log names method, path and status, never a query string (the success return carries a
one-time key), a token or an API key.

    local/.venv/bin/python local/site_server.py --port 3000
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import mimetypes
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

LOCAL_DIR = Path(__file__).resolve().parent
ROOT_DIR = LOCAL_DIR.parent
REGION = "us-east-1"

# A function's first invocation under cargo lambda watch may build it: minutes, not API
# Gateway's 30 s.
INVOKE_TIMEOUT = 900
MAX_BODY_BYTES = 1024 * 1024
# Keep-alive connections and slow clients hold a thread each for at most this long.
CONNECTION_TIMEOUT = 30


LOG_LOCK = threading.Lock()


def say(message: str) -> None:
    with LOG_LOCK:  # one line at a time from the handler threads
        sys.stderr.write(f"site: {message}\n")
        sys.stderr.flush()


# --- the billing API's routes (template.yaml: BillingApi, the functions' Events) ----------------

@dataclass(frozen=True)
class Route:
    function: str
    authorized: bool


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/checkout"): Route("checkout", authorized=True),
    # Stripe's redirect after payment carries no token: the one-time key in the URL is the proof.
    ("GET", "/checkout/complete"): Route("checkout", authorized=False),
    ("GET", "/plans"): Route("checkout", authorized=False),
    ("POST", "/portal"): Route("portal", authorized=True),
    ("GET", "/me"): Route("portal", authorized=True),
    ("DELETE", "/me"): Route("portal", authorized=True),
    ("POST", "/me/api-key"): Route("portal", authorized=True),
    ("POST", "/me/api-key/rotate"): Route("portal", authorized=True),
}

# BillingApi's CorsConfiguration.
CORS_METHODS = "DELETE,GET,POST"
CORS_HEADERS = "authorization,content-type"
CORS_MAX_AGE = "600"

HELLO_PATH = "/hello"
CONFIG_PATH = "/config.json"
CONFIRMATION_CODE_PATH = "/_local/confirmation-code"


def route_of(method: str, path: str) -> Route | None:
    """The route of a request, matched exactly as HTTP API routes are (no trailing slash)."""
    return ROUTES.get((method, path))


def api_paths() -> set[str]:
    return {path for _, path in ROUTES}


# --- the JWT authorizer -----------------------------------------------------------------------

class Unauthorized(Exception):
    """A request the JWT authorizer refuses: 401. The reason goes in `www-authenticate`, as
    API Gateway puts it there, never in the log with the token."""


def b64url_decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise Unauthorized("the token is not base64url") from None


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization` header: `Bearer <jwt>` or the bare JWT (API Gateway takes
    both)."""
    if not authorization or not authorization.strip():
        raise Unauthorized("no Authorization header")
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else value


def decode_token(token: str) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signature, signed bytes) of a compact JWS."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("the token is not a JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        raise Unauthorized("the token is not a JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthorized("the token is not a JWT")
    return header, claims, b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode()


# DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017, 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int

    @classmethod
    def from_jwk(cls, jwk: dict) -> "RsaKey":
        return cls(n=int.from_bytes(b64url_decode(jwk["n"]), "big"),
                   e=int.from_bytes(b64url_decode(jwk["e"]), "big"))

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RS256). The whole encoded message is rebuilt and
        compared, rather than parsed out of the signature."""
        size = (self.n.bit_length() + 7) // 8
        if len(signature) != size:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        encoded = pow(s, self.e, self.n).to_bytes(size, "big")
        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        padding = size - len(digest_info) - 3
        if padding < 8:
            return False
        expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info
        return hmac.compare_digest(encoded, expected)


def check_claims(claims: dict, issuer: str, audience: str, now: float) -> None:
    """The checks of an HTTP API JWT authorizer beside the signature: iss, aud or client_id
    (ID tokens carry aud, access tokens client_id), exp, and nbf and iat when present."""
    if claims.get("iss") != issuer:
        raise Unauthorized("the token's issuer is not the user pool")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences and claims.get("client_id") != audience:
        raise Unauthorized("the token is not for this app client")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise Unauthorized("the token has no expiry")
    if exp <= now:
        raise Unauthorized("the token has expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, (int, float)) or value > now):
            raise Unauthorized(f"the token's {name} is in the future")


def verify_token(token: str, keys: dict[str, RsaKey], issuer: str, audience: str,
                 now: float) -> dict:
    """The claims of a token signed by one of `keys` (by kid) and meant for `audience`."""
    header, claims, signature, signed = decode_token(token)
    if header.get("alg") != "RS256":
        raise Unauthorized("the token is not signed with RS256")
    key = keys.get(header.get("kid"))
    if key is None:
        raise Unauthorized("the token's signing key is not in the user pool's JWKS")
    if not key.verifies(signed, signature):
        raise Unauthorized("the token's signature does not verify")
    check_claims(claims, issuer, audience, now)
    return claims


def authorizer_claims(claims: dict) -> dict[str, str]:
    """Claims as an HTTP API hands them to the function: every value a string; lists as
    `[a b]`."""
    def text(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(text(v) for v in value) + "]"
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value, separators=(",", ":"))

    return {name: text(value) for name, value in claims.items()}


class Jwks:
    """The user pool's signing keys, fetched on first use and again for an unknown kid (at most
    once a minute, so bad tokens cannot hammer cognito-local)."""

    REFRESH_SECONDS = 60

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: dict[str, RsaKey] = {}
        self.fetched_at = 0.0
        self.lock = threading.Lock()

    def current(self, kid: str | None) -> dict[str, RsaKey]:
        with self.lock:
            stale = time.monotonic() - self.fetched_at > self.REFRESH_SECONDS
            if kid not in self.keys and (stale or not self.keys):
                self.keys = self.fetch()
                self.fetched_at = time.monotonic()
            return dict(self.keys)

    def fetch(self) -> dict[str, RsaKey]:
        try:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                document = json.load(response)
        except (OSError, ValueError) as e:
            say(f"cannot read the user pool's JWKS at {self.url}: {e}")
            raise Unauthorized("the user pool's signing keys are unavailable") from None
        keys = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid"):
                keys[jwk["kid"]] = RsaKey.from_jwk(jwk)
        return keys


# --- the HTTP API 2.0 event and the function's answer --------------------------------------------

@dataclass
class ApiRequest:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    source_ip: str


def http_api_event(request: ApiRequest, claims: dict[str, str] | None, now_ms: int,
                   request_id: str) -> dict:
    """The event an HTTP API (payload format 2.0) sends a Lambda integration."""
    domain = request.headers.get("host", "127.0.0.1")
    route_key = f"{request.method} {request.path}"
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route_key, "rawPath": request.path,
        "rawQueryString": request.raw_query,
        "headers": {name: value for name, value in request.headers.items() if name != "cookie"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": request.method, "path": request.path, "protocol": "HTTP/1.1",
                     "sourceIp": request.source_ip,
                     "userAgent": request.headers.get("user-agent", "")},
            "requestId": request_id, "routeKey": route_key, "stage": "$default",
            "time": datetime.fromtimestamp(now_ms / 1000, timezone.utc)
            .strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": now_ms},
        "isBase64Encoded": False}
    if "cookie" in request.headers:
        event["cookies"] = [c.strip() for c in request.headers["cookie"].split(";") if c.strip()]
    if request.raw_query:
        query: dict[str, list[str]] = {}
        for name, value in urllib.parse.parse_qsl(request.raw_query, keep_blank_values=True):
            query.setdefault(name, []).append(value)
        # Repeated parameters arrive joined by commas.
        event["queryStringParameters"] = {name: ",".join(v) for name, v in query.items()}
    if request.body:
        try:
            event["body"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims}}
    return event


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_answer(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Answer:
    return Answer(status, [("Content-Type", "application/json"), *(headers or [])],
                  json.dumps(body).encode())


def function_answer(answer: Any) -> Answer:
    """The HTTP answer for what the function returned (payload format 2.0); a function error or
    a malformed answer is API Gateway's 500."""
    if not isinstance(answer, dict) or "errorType" in answer or "errorMessage" in answer:
        return json_answer(500, {"message": "Internal Server Error"})
    if "statusCode" not in answer:  # 2.0: a JSON object without statusCode is the body itself
        return json_answer(200, answer)
    status = answer["statusCode"]
    if not isinstance(status, int) or not 100 <= status <= 599:
        return json_answer(500, {"message": "Internal Server Error"})
    headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        if name.lower() not in {k.lower() for k, _ in headers}:
            headers += [(str(name), str(v)) for v in values]
    headers += [("Set-Cookie", str(c)) for c in answer.get("cookies") or []]
    body = answer.get("body") or ""
    if answer.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body)
        except (binascii.Error, ValueError):
            return json_answer(500, {"message": "Internal Server Error"})
    else:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return Answer(status, headers, data)


class FunctionUnavailable(Exception):
    """cargo lambda watch did not answer."""


def invoke(lambda_url: str, function: str, event: dict) -> Any:
    url = f"{lambda_url}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT) as response:
            text = response.read()
    except urllib.error.HTTPError as e:  # the Invoke API's own errors carry an error object too
        text = e.read()
    except (OSError, TimeoutError) as e:
        raise FunctionUnavailable(f"{function} at {lambda_url}: {e}") from None
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- the product API: GET /hello with an API key ------------------------------------------------

@dataclass(frozen=True)
class Quota:
    limit: int
    period: str
    remaining: int


class ProductApi:
    """GET /hello as API Gateway answers it for a method with ApiKeyRequired: 403 for a key it
    does not know, that is disabled or on no usage plan, 429 once the plan's quota is spent
    (throttling is not emulated), else the mock integration's answer. moto checks nothing of
    this on its own."""

    MESSAGE = "hello from the product API"

    def __init__(self, apigateway, test_usage_url: str) -> None:
        self.apigateway = apigateway
        self.test_usage_url = test_usage_url
        self.lock = threading.Lock()  # a quota check and its recorded call go together

    def key_by_value(self, value: str) -> dict | None:
        paginator = self.apigateway.get_paginator("get_api_keys")
        for page in paginator.paginate(includeValues=True):
            for key in page.get("items", []):
                if hmac.compare_digest(key.get("value", "").encode(), value.encode()):
                    return key
        return None

    def quota(self, plan: dict, key_id: str, day: date) -> Quota | None:
        quota = plan.get("quota") or {}
        if quota.get("limit") is None:
            return None
        usage = self.apigateway.get_usage(usagePlanId=plan["id"], keyId=key_id,
                                          startDate=day.isoformat(), endDate=day.isoformat())
        pairs = usage.get("items", {}).get(key_id) or [[0, quota["limit"]]]
        return Quota(limit=quota["limit"], period=quota.get("period", ""), remaining=pairs[-1][1])

    def record_call(self, plan_id: str, key_id: str, day: date) -> None:
        body = {"keyId": key_id, "usagePlanId": plan_id, "day": day.isoformat(), "calls": 1}
        request = urllib.request.Request(self.test_usage_url, data=json.dumps(body).encode(),
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def hello(self, api_key: str | None, day: date) -> Answer:
        forbidden = json_answer(403, {"message": "Forbidden"})
        if not api_key:
            return forbidden
        key = self.key_by_value(api_key)
        if key is None or not key.get("enabled"):
            return forbidden
        plans = sorted(self.apigateway.get_usage_plans(keyId=key["id"]).get("items", []),
                       key=lambda p: p["id"])
        if not plans:
            return forbidden
        # The functions keep a key on one usage plan; API Gateway would take the plan of this
        # API's stage, which moto's plans do not name.
        plan = plans[0]
        with self.lock:
            quota = self.quota(plan, key["id"], day)
            if quota is not None and quota.remaining <= 0:
                return json_answer(429, {"message": "Limit Exceeded"})
            self.record_call(plan["id"], key["id"], day)
        body: dict[str, Any] = {"message": self.MESSAGE}
        if quota is not None:
            body["quota"] = {"limit": quota.limit, "period": quota.period,
                             "remaining": quota.remaining - 1}
        return json_answer(200, body)


# --- local-only: the confirmation code cognito-local stored --------------------------------------

def confirmation_code(data_dir: Path, pool_id: str, username: str) -> str | None:
    """Users.<username>.ConfirmationCode of cognito-local's pool file (usernames are matched
    without case, as the deployed pool does); None while there is none."""
    try:
        users = json.loads((data_dir / f"{pool_id}.json").read_text()).get("Users", {})
    except (OSError, ValueError):
        return None
    user = users.get(username) or next(
        (u for name, u in users.items() if name.lower() == username.lower()), None)
    return (user or {}).get("ConfirmationCode") or None


# --- settings: local/.run/env -----------------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name and not name.startswith("#"):
            values[name.strip()] = value.strip().strip('"')
    return values


@dataclass(frozen=True)
class Settings:
    site_origin: str
    user_pool_id: str
    client_id: str
    region: str
    cognito_url: str
    lambda_url: str
    apigateway_url: str
    cognito_data_dir: Path

    REQUIRED = ("USER_POOL_ID", "USER_POOL_CLIENT_ID", "COGNITO_PORT", "LAMBDA_ENDPOINT",
                "AWS_ENDPOINT_URL_API_GATEWAY", "COGNITO_LOCAL_DATA_DIR", "SITE_ORIGIN")

    @classmethod
    def of(cls, env: dict[str, str]) -> "Settings":
        missing = [name for name in cls.REQUIRED if not env.get(name)]
        if missing:
            raise ValueError(f"local/.run/env lacks {', '.join(missing)}: run local/up.sh")
        return cls(site_origin=env["SITE_ORIGIN"].rstrip("/"),
                   user_pool_id=env["USER_POOL_ID"], client_id=env["USER_POOL_CLIENT_ID"],
                   region=env.get("AWS_REGION", REGION),
                   cognito_url=f"http://127.0.0.1:{env['COGNITO_PORT']}",
                   lambda_url=env["LAMBDA_ENDPOINT"].rstrip("/"),
                   apigateway_url=env["AWS_ENDPOINT_URL_API_GATEWAY"].rstrip("/"),
                   cognito_data_dir=Path(env["COGNITO_LOCAL_DATA_DIR"]))

    @property
    def issuer(self) -> str:
        # local/cognito/config.json.template: TokenConfig.IssuerDomain.
        return f"{self.cognito_url}/{self.user_pool_id}"

    def site_config(self) -> dict:
        """/config.json: what a deployment's config.json holds (from the stack's outputs),
        plus the local endpoints."""
        return {
            "region": self.region,
            "userPoolId": self.user_pool_id,
            "userPoolClientId": self.client_id,
            "cognitoEndpoint": f"{self.cognito_url}/",
            "apiUrl": self.site_origin,
            "productApiHelloUrl": f"{self.site_origin}{HELLO_PATH}",
            "localConfirmationCodeUrl": f"{self.site_origin}{CONFIRMATION_CODE_PATH}",
        }


class App:
    """What the handlers share: the settings (re-read when local/.run/env changes) and the
    clients built from them."""

    def __init__(self, env_file: Path, web_dir: Path) -> None:
        self.env_file = env_file
        self.web_dir = web_dir.resolve()
        self.lock = threading.Lock()
        self.loaded_mtime: float | None = None
        self.settings: Settings | None = None
        self.jwks: Jwks | None = None
        self.product_api: ProductApi | None = None

    def current(self) -> tuple[Settings, Jwks, ProductApi]:
        with self.lock:
            mtime = self.env_file.stat().st_mtime
            if mtime != self.loaded_mtime or self.settings is None:
                settings = Settings.of(read_env_file(self.env_file))
                apigateway = boto3.client(
                    "apigateway", endpoint_url=settings.apigateway_url, region_name=REGION,
                    aws_access_key_id="local", aws_secret_access_key="local")
                self.settings = settings
                self.jwks = Jwks(f"{settings.issuer}/.well-known/jwks.json")
                self.product_api = ProductApi(apigateway, f"{settings.apigateway_url}/_test/usage")
                self.loaded_mtime = mtime
                say(f"settings from {self.env_file}: user pool {settings.user_pool_id}")
            return self.settings, self.jwks, self.product_api


# --- static files -----------------------------------------------------------------------------

mimetypes.add_type("text/javascript", ".js")

# No third-party origin: scripts, styles and images from the site; fetch() to the site and the
# APIs (config.json names them: connect-src is widened per deployment by its host).
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]


def content_security_policy(settings: Settings) -> str:
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {settings.cognito_url}; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def static_file(web_dir: Path, path: str) -> Path | None:
    """The file of a URL path: / is index.html, /account is account.html, others as named;
    None when missing or outside web/."""
    relative = urllib.parse.unquote(path).lstrip("/")
    if "\x00" in relative or "\\" in relative:
        return None
    candidates = ["index.html"] if relative == "" else [relative, f"{relative}.html"]
    for candidate in candidates:
        file = (web_dir / candidate).resolve()
        if file.is_relative_to(web_dir) and file.is_file():
            return file
    return None


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, SiteHandler)

    def process_request_thread(self, request, client_address):
        """Like ThreadingMixIn's, with a timeout on each connection."""
        try:
            request.settimeout(CONNECTION_TIMEOUT)
            self.finish_request(request, client_address)
        except OSError:
            pass  # a client that went away
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


# --- the handler ----------------------------------------------------------------------------------

class SiteHandler(BaseHTTPRequestHandler):
    server: SiteServer
    protocol_version = "HTTP/1.1"
    server_version = "site-dev"
    timeout = CONNECTION_TIMEOUT

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        started = time.monotonic()
        # Read whatever the answer, so that the next request on the connection starts clean.
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            answer = json_answer(413, {"message": "Request Entity Too Large"})
        else:
            body = self.rfile.read(length) if length else b""
            try:
                settings, jwks, product_api = self.server.app.current()
                answer = self.answer(url.path, url.query, body, settings, jwks, product_api)
            except Exception as e:  # keep serving; the cause goes to the log
                say(f"{self.command} {url.path}: {type(e).__name__}: {e}")
                answer = json_answer(500, {"message": "Internal Server Error"})
        self.send(answer)
        say(f"{self.command} {url.path} {answer.status} ({time.monotonic() - started:.2f}s)")

    def log_request(self, code="-", size="-") -> None:
        pass  # dispatch logs each request without its query string

    def log_message(self, format: str, *args) -> None:
        if not format.startswith("Request timed out"):  # an idle keep-alive connection
            say(format % args)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def request_headers(self) -> dict[str, str]:
        """Header names in lower case; a repeated header's values joined by commas, as API
        Gateway passes them."""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        return headers

    def answer(self, path: str, query: str, body: bytes, settings: Settings, jwks: Jwks,
               product_api: ProductApi) -> Answer:
        method = self.command
        cors = self.cors_headers(settings)
        if method == "OPTIONS" and (path in api_paths() or path == HELLO_PATH):
            return self.preflight(settings, path)
        route = route_of(method, path)
        if route is not None:
            return self.billing_api(route, path, query, body, settings, jwks, cors)
        if path == HELLO_PATH:
            if method != "GET":
                return json_answer(403, {"message": "Missing Authentication Token"}, cors)
            return self.hello(product_api, cors)
        if path in api_paths():
            return json_answer(404, {"message": "Not Found"}, cors)
        if path == CONFIG_PATH and method in ("GET", "HEAD"):
            return json_answer(200, settings.site_config(), [("Cache-Control", "no-store")])
        if path == CONFIRMATION_CODE_PATH and method == "GET":
            return self.confirmation_code(query, settings)
        if method in ("GET", "HEAD"):
            return self.static(path, settings)
        return json_answer(404, {"message": "Not Found"})

    def cors_headers(self, settings: Settings) -> list[tuple[str, str]]:
        if self.header("Origin") != settings.site_origin:
            return []
        return [("Access-Control-Allow-Origin", settings.site_origin), ("Vary", "Origin")]

    def preflight(self, settings: Settings, path: str) -> Answer:
        headers = self.cors_headers(settings)
        if headers and self.header("Access-Control-Request-Method"):
            allowed = "x-api-key" if path == HELLO_PATH else CORS_HEADERS
            headers += [("Access-Control-Allow-Methods", "GET" if path == HELLO_PATH else CORS_METHODS),
                        ("Access-Control-Allow-Headers", allowed),
                        ("Access-Control-Max-Age", CORS_MAX_AGE)]
        return Answer(204, headers, b"")

    def billing_api(self, route: Route, path: str, query: str, body: bytes, settings: Settings,
                    jwks: Jwks, cors: list[tuple[str, str]]) -> Answer:
        request_id = secrets.token_hex(8)
        cors = [*cors, ("apigw-requestid", request_id)]
        claims = None
        if route.authorized:
            try:
                token = bearer_token(self.header("Authorization"))
                header, _, _, _ = decode_token(token)
                claims = authorizer_claims(verify_token(
                    token, jwks.current(header.get("kid")), settings.issuer, settings.client_id,
                    time.time()))
            except Unauthorized as refused:
                challenge = f'Bearer scope="" error="invalid_token" error_description="{refused}"'
                return json_answer(401, {"message": "Unauthorized"},
                                   [*cors, ("www-authenticate", challenge)])
        request = ApiRequest(method=self.command, path=path, raw_query=query,
                             headers=self.request_headers(), body=body,
                             source_ip=self.client_address[0])
        event = http_api_event(request, claims, int(time.time() * 1000), request_id)
        try:
            answer = function_answer(invoke(settings.lambda_url, route.function, event))
        except FunctionUnavailable as e:
            say(f"cargo lambda watch did not answer ({e}): is it running? (local/up.sh)")
            return json_answer(503, {"message": "Service Unavailable"}, cors)
        answer.headers += cors
        return answer

    def hello(self, product_api: ProductApi, cors: list[tuple[str, str]]) -> Answer:
        try:
            answer = product_api.hello(self.header("x-api-key"), datetime.now(timezone.utc).date())
        except (BotoCoreError, ClientError, OSError) as e:
            say(f"GET {HELLO_PATH}: moto: {type(e).__name__}: {e}")
            return json_answer(500, {"message": "Internal server error"}, cors)
        answer.headers += cors
        return answer

    def confirmation_code(self, query: str, settings: Settings) -> Answer:
        username = dict(urllib.parse.parse_qsl(query)).get("username", "")
        if not username:
            return json_answer(400, {"message": "username is required"})
        code = confirmation_code(settings.cognito_data_dir, settings.user_pool_id, username)
        if code is None:
            return json_answer(404, {"message": "no confirmation code for this user (yet)"},
                               [("Cache-Control", "no-store")])
        return json_answer(200, {"code": code, "local_only": True}, [("Cache-Control", "no-store")])

    def static(self, path: str, settings: Settings) -> Answer:
        file = static_file(self.server.app.web_dir, path)
        if file is None:
            not_found = static_file(self.server.app.web_dir, "/404")
            body = not_found.read_bytes() if not_found else b"Not Found"
            return Answer(404, [("Content-Type", "text/html; charset=utf-8")], body)
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type == "application/json":
            content_type += "; charset=utf-8"
        return Answer(200, [("Content-Type", content_type), ("Cache-Control", "no-cache"),
                            ("Content-Security-Policy", content_security_policy(settings)),
                            *SECURITY_HEADERS], file.read_bytes())

    def send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        names = {name.lower() for name, _ in answer.headers}
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if "content-type" not in names and answer.body:
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SITE_PORT", "3000")))
    parser.add_argument("--env-file", type=Path, default=LOCAL_DIR / ".run" / "env")
    parser.add_argument("--web", type=Path, default=ROOT_DIR / "web")
    args = parser.parse_args()
    if not args.env_file.is_file():
        sys.exit(f"site: {args.env_file} is missing: run local/up.sh")
    app = App(args.env_file, args.web)
    settings, _, _ = app.current()
    expected_origin = f"http://127.0.0.1:{args.port}"
    if settings.site_origin != expected_origin:
        say(f"warning: SITE_ORIGIN is {settings.site_origin}, this server is {expected_origin}: "
            "the functions' redirects and CORS name the other")
    server = SiteServer(("127.0.0.1", args.port), app)
    say(f"serving {args.web} and the local APIs on {expected_origin}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
