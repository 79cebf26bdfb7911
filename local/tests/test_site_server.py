"""local/site_server.py: the JWT authorizer's checks, the HTTP API 2.0 event and the answer
mapping, the route table against template.yaml, the product API's key and quota checks, the
static files; and the server itself on a free port, with a fake JWKS and a fake Lambda Invoke
API in place of cognito-local and cargo lambda watch."""

from __future__ import annotations

import base64
import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

LOCAL_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(LOCAL_DIR))

import site_server  # noqa: E402  (local/ is not a package)
from site_server import ApiRequest, Route, RsaKey, Unauthorized  # noqa: E402

ISSUER = "http://127.0.0.1:9229/local_Pool1234"
CLIENT_ID = "client123"
NOW = 1_800_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def private_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys(private_key):
    numbers = private_key.public_key().public_numbers()
    return {"k1": RsaKey(n=numbers.n, e=numbers.e)}


def jwk_of(private_key, kid="k1") -> dict:
    numbers = private_key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes(3, "big"))}


def sign(private_key, claims: dict, header: dict | None = None) -> str:
    header = header or {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    signed = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = private_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{b64url(signature)}"


def id_claims(**changes) -> dict:
    claims = {"sub": "sub-1", "cognito:username": "ada@example.com", "email": "ada@example.com",
              "email_verified": True, "iss": ISSUER, "aud": CLIENT_ID, "token_use": "id",
              "iat": NOW - 10, "auth_time": NOW - 10, "exp": NOW + 3600,
              "custom:stripe_customer_id": "cus_1"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


# --- the JWT authorizer -----------------------------------------------------------------------

def test_when_the_id_token_is_valid_should_return_its_claims(private_key, keys):
    claims = site_server.verify_token(sign(private_key, id_claims()), keys, ISSUER, CLIENT_ID, NOW)
    assert claims["sub"] == "sub-1"


def test_when_an_access_token_names_the_client_in_client_id_should_accept_it(private_key, keys):
    token = sign(private_key, id_claims(aud=None, client_id=CLIENT_ID, token_use="access"))
    assert site_server.verify_token(token, keys, ISSUER, CLIENT_ID, NOW)["token_use"] == "access"


@pytest.mark.parametrize("changes, reason", [
    ({"exp": NOW}, "expired"),
    ({"exp": NOW - 1}, "expired"),
    ({"exp": None}, "no expiry"),
    ({"aud": "another-client"}, "not for this app client"),
    ({"aud": None}, "not for this app client"),
    ({"iss": "http://127.0.0.1:9229/local_Other"}, "issuer"),
    ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/local_Pool1234"}, "issuer"),
    ({"nbf": NOW + 60}, "nbf"),
    ({"iat": NOW + 60}, "iat"),
])
def test_when_a_claim_is_wrong_should_refuse_the_token(private_key, keys, changes, reason):
    with pytest.raises(Unauthorized, match=reason):
        site_server.verify_token(sign(private_key, id_claims(**changes)), keys, ISSUER, CLIENT_ID, NOW)


def test_when_the_payload_was_changed_should_refuse_the_signature(private_key, keys):
    header, _, signature = sign(private_key, id_claims()).split(".")
    forged = b64url(json.dumps(id_claims(sub="someone-else")).encode())
    with pytest.raises(Unauthorized, match="signature"):
        site_server.verify_token(f"{header}.{forged}.{signature}", keys, ISSUER, CLIENT_ID, NOW)


def test_when_another_key_signed_it_should_refuse_the_signature(keys):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized, match="signature"):
        site_server.verify_token(sign(other, id_claims()), keys, ISSUER, CLIENT_ID, NOW)


@pytest.mark.parametrize("header, reason", [
    ({"alg": "none", "kid": "k1"}, "RS256"),
    ({"alg": "HS256", "kid": "k1"}, "RS256"),
    ({"alg": "RS256", "kid": "unknown"}, "JWKS"),
])
def test_when_the_header_is_not_ours_should_refuse_the_token(private_key, keys, header, reason):
    with pytest.raises(Unauthorized, match=reason):
        site_server.verify_token(sign(private_key, id_claims(), header), keys, ISSUER, CLIENT_ID, NOW)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!.??.**"])
def test_when_the_token_is_not_a_jwt_should_refuse_it(keys, token):
    with pytest.raises(Unauthorized):
        site_server.verify_token(token, keys, ISSUER, CLIENT_ID, NOW)


@pytest.mark.parametrize("header, token", [
    ("Bearer abc.def.ghi", "abc.def.ghi"),
    ("bearer   abc.def.ghi ", "abc.def.ghi"),
    ("abc.def.ghi", "abc.def.ghi"),
])
def test_when_the_authorization_header_has_a_token_should_take_it(header, token):
    assert site_server.bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "   "])
def test_when_there_is_no_authorization_header_should_refuse(header):
    with pytest.raises(Unauthorized, match="no Authorization"):
        site_server.bearer_token(header)


def test_when_claims_reach_the_function_should_be_strings_as_api_gateway_makes_them():
    claims = site_server.authorizer_claims(
        {"sub": "s", "email_verified": True, "exp": 1800000000, "cognito:groups": ["a", "b"],
         "nested": {"x": 1}})
    assert claims == {"sub": "s", "email_verified": "true", "exp": "1800000000",
                      "cognito:groups": "[a b]", "nested": '{"x":1}'}


def test_when_the_rsa_key_comes_from_a_jwk_should_verify_what_it_signed(private_key):
    key = RsaKey.from_jwk(jwk_of(private_key))
    message = b"header.payload"
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert key.verifies(message, signature)
    assert not key.verifies(b"header.payload2", signature)
    assert not key.verifies(message, signature[:-1])


# --- the event and the answer -------------------------------------------------------------------

def api_request(**changes) -> ApiRequest:
    values = dict(method="POST", path="/checkout", raw_query="a=1&b=2&a=3",
                  headers={"host": "127.0.0.1:3000", "content-type": "application/json",
                           "cookie": "x=1; y=2", "user-agent": "test"},
                  body=b'{"lookup_key":"pro_monthly"}', source_ip="127.0.0.1")
    values.update(changes)
    return ApiRequest(**values)


def test_when_building_the_event_should_match_an_http_api_2_0_event():
    event = site_server.http_api_event(api_request(), {"sub": "s"}, 1_800_000_000_123, "req1")
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /checkout"
    assert event["rawPath"] == "/checkout"
    assert event["rawQueryString"] == "a=1&b=2&a=3"
    assert event["queryStringParameters"] == {"a": "1,3", "b": "2"}
    assert event["cookies"] == ["x=1", "y=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["content-type"] == "application/json"
    assert event["body"] == '{"lookup_key":"pro_monthly"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["domainName"] == "127.0.0.1:3000"
    assert context["http"] == {"method": "POST", "path": "/checkout", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "test"}
    assert context["requestId"] == "req1" and context["stage"] == "$default"
    assert context["timeEpoch"] == 1_800_000_000_123
    assert context["authorizer"] == {"jwt": {"claims": {"sub": "s"}}}


def test_when_the_route_needs_no_token_should_leave_out_the_authorizer():
    event = site_server.http_api_event(api_request(method="GET", path="/plans", raw_query="",
                                                   body=b""), None, 0, "r")
    assert "authorizer" not in event["requestContext"]
    assert "body" not in event and "queryStringParameters" not in event


def test_when_the_body_is_not_utf8_should_send_it_in_base64():
    event = site_server.http_api_event(api_request(body=b"\xff\x00"), None, 0, "r")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\x00"


def test_when_the_function_answers_should_pass_status_headers_cookies_and_body():
    answer = site_server.function_answer({
        "statusCode": 303, "headers": {"location": "http://127.0.0.1:3000/billing/success"},
        "cookies": ["a=1"], "body": "", "isBase64Encoded": False})
    assert answer.status == 303
    assert ("location", "http://127.0.0.1:3000/billing/success") in answer.headers
    assert ("Set-Cookie", "a=1") in answer.headers
    encoded = site_server.function_answer({"statusCode": 200, "isBase64Encoded": True,
                                           "body": base64.b64encode(b"\x01\x02").decode()})
    assert encoded.body == b"\x01\x02"


@pytest.mark.parametrize("returned", [
    {"errorType": "Runtime.ExitError", "errorMessage": "boom"},
    {"statusCode": "200"},
    {"statusCode": 99},
    None,
    ["not", "an", "object"],
])
def test_when_the_function_fails_or_answers_badly_should_be_a_500(returned):
    answer = site_server.function_answer(returned)
    assert answer.status == 500 and json.loads(answer.body) == {"message": "Internal Server Error"}


def test_when_the_function_returns_json_without_status_should_be_its_body():
    answer = site_server.function_answer({"plans": []})
    assert answer.status == 200 and json.loads(answer.body) == {"plans": []}


# --- the routes ---------------------------------------------------------------------------------

def template_routes() -> dict[tuple[str, str], Route]:
    """The billing API's routes of the checkout and portal functions in template.yaml."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((LOCAL_DIR.parent / "template.yaml").read_text(), Loader=Loader)
    routes = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if binary not in ("checkout", "portal"):
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            properties = event["Properties"]
            authorizer = (properties.get("Auth") or {}).get("Authorizer")
            routes[(properties["Method"].upper(), properties["Path"])] = Route(
                binary, authorized=authorizer != "NONE")
    return routes


def test_when_compared_with_template_yaml_should_have_the_same_routes_and_auth():
    assert site_server.ROUTES == template_routes()


@pytest.mark.parametrize("method, path, expected", [
    ("POST", "/checkout", Route("checkout", True)),
    ("GET", "/checkout/complete", Route("checkout", False)),
    ("GET", "/plans", Route("checkout", False)),
    ("GET", "/me", Route("portal", True)),
    ("DELETE", "/me", Route("portal", True)),
    ("POST", "/portal", Route("portal", True)),
    ("GET", "/checkout", None),
    ("GET", "/me/", None),
    ("PUT", "/me", None),
])
def test_when_a_request_comes_should_find_its_route_exactly(method, path, expected):
    assert site_server.route_of(method, path) == expected


# --- the product API ------------------------------------------------------------------------------

class FakeApiGateway:
    """What ProductApi asks of API Gateway, over a few keys and plans."""

    def __init__(self, keys, plans_of_key, usage):
        self.keys, self.plans_of_key, self.usage = keys, plans_of_key, usage

    def get_paginator(self, name):
        assert name == "get_api_keys"
        keys = self.keys

        class Pages:
            def paginate(self, includeValues):
                assert includeValues is True
                return [{"items": keys[:1]}, {"items": keys[1:]}]

        return Pages()

    def get_usage_plans(self, keyId):
        return {"items": self.plans_of_key.get(keyId, [])}

    def get_usage(self, usagePlanId, keyId, startDate, endDate):
        return {"items": {keyId: [[0, self.usage[keyId]]]}} if keyId in self.usage else {"items": {}}


PRO = {"id": "plan-pro", "quota": {"limit": 10000, "period": "MONTH"}}


def product_api(keys, plans_of_key, usage):
    api = site_server.ProductApi(FakeApiGateway(keys, plans_of_key, usage), "unused")
    api.recorded = []
    api.record_call = lambda plan_id, key_id, day: api.recorded.append((plan_id, key_id, day))
    return api


@pytest.mark.parametrize("value", [None, "", "unknown-value", "disabled-value", "lonely-value"])
def test_when_the_key_is_missing_unknown_disabled_or_on_no_plan_should_be_forbidden(value):
    api = product_api(
        [{"id": "k-disabled", "value": "disabled-value", "enabled": False},
         {"id": "k-lonely", "value": "lonely-value", "enabled": True}],
        {"k-disabled": [PRO]}, {})
    answer = api.hello(value, date(2026, 12, 2))
    assert (answer.status, json.loads(answer.body)) == (403, {"message": "Forbidden"})
    assert api.recorded == []


def test_when_the_key_is_good_should_answer_record_the_call_and_report_the_quota():
    api = product_api([{"id": "k-other", "value": "other", "enabled": True},
                       {"id": "k1", "value": "good-value", "enabled": True}],
                      {"k1": [PRO]}, {"k1": 9990})
    answer = api.hello("good-value", date(2026, 12, 2))
    assert answer.status == 200
    assert json.loads(answer.body) == {"message": "hello from the product API",
                                       "quota": {"limit": 10000, "period": "MONTH", "remaining": 9989}}
    assert api.recorded == [("plan-pro", "k1", date(2026, 12, 2))]


def test_when_the_quota_is_spent_should_be_429_and_record_nothing():
    api = product_api([{"id": "k1", "value": "good-value", "enabled": True}], {"k1": [PRO]}, {"k1": 0})
    answer = api.hello("good-value", date(2026, 12, 2))
    assert (answer.status, json.loads(answer.body)) == (429, {"message": "Limit Exceeded"})
    assert api.recorded == []


def test_when_the_plan_has_no_quota_should_answer_without_one():
    api = product_api([{"id": "k1", "value": "v", "enabled": True}],
                      {"k1": [{"id": "plan-free"}]}, {})
    answer = api.hello("v", date(2026, 12, 2))
    assert answer.status == 200 and "quota" not in json.loads(answer.body)
    assert api.recorded == [("plan-free", "k1", date(2026, 12, 2))]


# --- static files, the confirmation code, the settings --------------------------------------

@pytest.fixture
def web(tmp_path):
    web = tmp_path / "web"
    (web / "billing").mkdir(parents=True)
    (web / "css").mkdir()
    for name in ("index.html", "account.html", "billing/success.html", "css/site.css"):
        (web / name).write_text(name)
    (tmp_path / "secret.txt").write_text("outside")
    return web.resolve()


@pytest.mark.parametrize("path, expected", [
    ("/", "index.html"),
    ("/account", "account.html"),
    ("/account.html", "account.html"),
    ("/billing/success", "billing/success.html"),
    ("/css/site.css", "css/site.css"),
    ("/pricing", None),
    ("/../secret.txt", None),
    ("/%2e%2e/secret.txt", None),
    ("/..%2fsecret.txt", None),
    ("/css", None),
])
def test_when_a_page_is_asked_for_should_serve_only_files_of_web(web, path, expected):
    found = site_server.static_file(web, path)
    assert (found.relative_to(web).as_posix() if found else None) == expected


def test_when_cognito_local_stored_a_code_should_find_it_by_username_in_any_case(tmp_path):
    (tmp_path / "local_Pool1234.json").write_text(json.dumps({"Users": {
        "Ada@Example.com": {"ConfirmationCode": "123456"}, "bob": {}}}))
    assert site_server.confirmation_code(tmp_path, "local_Pool1234", "Ada@Example.com") == "123456"
    assert site_server.confirmation_code(tmp_path, "local_Pool1234", "ada@example.com") == "123456"
    assert site_server.confirmation_code(tmp_path, "local_Pool1234", "bob") is None
    assert site_server.confirmation_code(tmp_path, "local_Pool1234", "carol") is None
    assert site_server.confirmation_code(tmp_path, "local_Other", "bob") is None


def test_when_local_run_env_lacks_a_value_should_name_it():
    with pytest.raises(ValueError, match="USER_POOL_CLIENT_ID"):
        site_server.Settings.of({"USER_POOL_ID": "local_Pool1234"})


# --- the server on a port ----------------------------------------------------------------------

class FakeUpstream:
    """cognito-local's JWKS and cargo lambda watch's Invoke API on one port: the events the
    functions would get are kept, and each answers 200 with the event's route."""

    def __init__(self, jwk: dict) -> None:
        self.events: list[tuple[str, dict]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                assert self.path.endswith("/.well-known/jwks.json")
                self.reply(200, {"keys": [jwk]})

            def do_POST(self):
                function = self.path.split("/")[3]
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                upstream.events.append((function, event))
                self.reply(200, {"statusCode": 200, "headers": {"content-type": "application/json"},
                                 "body": json.dumps({"route": event["routeKey"]})})

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def logged(monkeypatch) -> list[str]:
    """What the server logs, kept instead of printed."""
    lines: list[str] = []
    monkeypatch.setattr(site_server, "say", lines.append)
    return lines


@pytest.fixture
def served(tmp_path, web, private_key, logged):
    upstream = FakeUpstream(jwk_of(private_key))
    server = site_server.SiteServer(("127.0.0.1", 0), site_server.App(tmp_path / "env", web))
    port = server.server_address[1]
    origin = f"http://127.0.0.1:{port}"
    (tmp_path / "env").write_text("\n".join([
        "USER_POOL_ID=local_Pool1234", f"USER_POOL_CLIENT_ID={CLIENT_ID}",
        f"COGNITO_PORT={upstream.port}", f"LAMBDA_ENDPOINT=http://127.0.0.1:{upstream.port}",
        "AWS_ENDPOINT_URL_API_GATEWAY=http://127.0.0.1:9", f"COGNITO_LOCAL_DATA_DIR={tmp_path}",
        f"SITE_ORIGIN={origin}", 'PLANS="free=,pro=x"']) + "\n")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{upstream.port}/local_Pool1234"
    yield origin, issuer, upstream
    server.shutdown()
    server.server_close()
    upstream.server.shutdown()


def call(url: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def token_for(private_key, issuer: str, **changes) -> str:
    now = int(time.time())
    return sign(private_key, id_claims(**{"iss": issuer, "iat": now - 5, "exp": now + 600, **changes}))


@pytest.mark.parametrize("changes", [
    {"exp": 1},
    {"aud": "another-client"},
    {"iss": "http://127.0.0.1:1/local_Pool1234"},
])
def test_when_the_token_is_expired_or_not_ours_should_answer_401_and_not_invoke(served, private_key, changes):
    origin, issuer, upstream = served
    token = token_for(private_key, issuer, **changes)
    status, headers, body = call(f"{origin}/me", headers={"Authorization": f"Bearer {token}"})
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert 'error="invalid_token"' in headers["www-authenticate"]
    assert upstream.events == []


def test_when_no_token_is_sent_should_answer_401(served):
    origin, _, upstream = served
    status, _, body = call(f"{origin}/checkout", "POST", body=b"{}")
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert upstream.events == []


def test_when_the_token_is_valid_should_invoke_the_function_with_its_claims(served, private_key):
    origin, issuer, upstream = served
    status, headers, body = call(
        f"{origin}/checkout", "POST", body=b'{"lookup_key":"pro_monthly"}',
        headers={"Authorization": f"Bearer {token_for(private_key, issuer)}",
                 "Content-Type": "application/json", "Origin": origin})
    assert (status, json.loads(body)) == (200, {"route": "POST /checkout"})
    assert headers["Access-Control-Allow-Origin"] == origin
    [(function, event)] = upstream.events
    assert function == "checkout"
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "sub-1" and claims["email_verified"] == "true"
    assert event["body"] == '{"lookup_key":"pro_monthly"}'
    assert "authorization" in event["headers"]


def test_when_the_route_is_public_should_invoke_without_a_token(served):
    origin, _, upstream = served
    status, _, body = call(f"{origin}/plans")
    assert (status, json.loads(body)) == (200, {"route": "GET /plans"})
    assert upstream.events[0][0] == "checkout"
    assert "authorizer" not in upstream.events[0][1]["requestContext"]


def test_when_the_site_asks_before_a_call_should_answer_the_preflight(served):
    origin, _, upstream = served
    status, headers, _ = call(f"{origin}/me", "OPTIONS", headers={
        "Origin": origin, "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "authorization"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Methods"] == "DELETE,GET,POST"
    assert headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    status, headers, _ = call(f"{origin}/me", "OPTIONS", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE"})
    assert status == 204 and "Access-Control-Allow-Origin" not in headers
    assert upstream.events == []


def test_when_serving_should_give_pages_config_and_codes(served, tmp_path):
    origin, _, _ = served
    status, headers, body = call(f"{origin}/account")
    assert (status, body) == (200, b"account.html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, _, body = call(f"{origin}/config.json")
    config = json.loads(body)
    assert status == 200 and config["apiUrl"] == origin and config["userPoolClientId"] == CLIENT_ID
    assert call(f"{origin}/nothing-here")[0] == 404
    (tmp_path / "local_Pool1234.json").write_text(json.dumps({"Users": {"ada": {"ConfirmationCode": "654321"}}}))
    status, _, body = call(f"{origin}/_local/confirmation-code?username=ada")
    assert (status, json.loads(body)["code"]) == (200, "654321")
    assert call(f"{origin}/_local/confirmation-code?username=bob")[0] == 404


def test_when_logging_requests_should_leave_out_tokens_and_query_strings(served, private_key, logged):
    origin, issuer, _ = served
    token = token_for(private_key, issuer)
    call(f"{origin}/checkout/complete?session_id=cs_test_1&key=one-time-secret")
    call(f"{origin}/me", headers={"Authorization": f"Bearer {token}"})
    call(f"{origin}/me", headers={"Authorization": f"Bearer {token_for(private_key, issuer, exp=1)}"})
    call(f"{origin}/hello", headers={"x-api-key": "key-value-secret"})
    deadline = time.monotonic() + 5
    while len([line for line in logged if line.startswith(("GET ", "POST "))]) < 4:
        assert time.monotonic() < deadline, logged
        time.sleep(0.05)
    text = "\n".join(logged)
    assert "GET /checkout/complete 200" in text and "GET /me 401" in text
    for secret in ("one-time-secret", "session_id", token.split(".")[1], "key-value-secret"):
        assert secret not in text


def test_when_a_refused_request_had_a_body_should_keep_the_connection_usable(served):
    origin, _, upstream = served
    connection = http.client.HTTPConnection(origin.removeprefix("http://"), timeout=10)
    connection.request("POST", "/checkout", body=b'{"lookup_key":"pro_monthly"}',
                       headers={"Content-Type": "application/json"})
    first = connection.getresponse()
    assert (first.status, json.loads(first.read())) == (401, {"message": "Unauthorized"})
    connection.request("GET", "/plans")  # the same connection: the body above was read
    second = connection.getresponse()
    assert (second.status, json.loads(second.read())) == (200, {"route": "GET /plans"})
    connection.close()
