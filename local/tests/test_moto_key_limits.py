"""API Gateway's limits on API keys in local/moto_durable.py: CreateApiKey's rate (429
TooManyRequestsException with Retry-After) and the account's key quota (LimitExceededException),
as boto3 reads them, set from the environment or at run time through /_test/apigateway/limits."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

import moto_wrapper

sys.path.insert(0, str(moto_wrapper.LOCAL_DIR))
import moto_durable  # noqa: E402  (local/, beside the tests' folder)

LIMITS_PATH = "/_test/apigateway/limits"


class Wrapper(moto_wrapper.Wrapper):
    """The wrapper with its test endpoint /_test/apigateway/limits."""

    def limits(self, method: str = "GET", body=None) -> tuple[int, dict]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(f"{self.url}{LIMITS_PATH}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    def set_limits(self, **limits) -> dict:
        status, answer = self.limits("POST", limits)
        assert status == 200, answer
        return answer


def started(tmp_path_factory, settings: dict[str, str] | None = None) -> Wrapper:
    running = Wrapper(tmp_path_factory.mktemp("moto"), settings)
    running.start()
    return running


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory):
    """One wrapper with its defaults; each test sets the limits it needs."""
    running = started(tmp_path_factory)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def limits(wrapper):
    """The wrapper with no limit and counts at 0, and no key left by another test (the quota
    counts every key of the account and Region); its defaults back afterwards."""
    apigw = client(wrapper)
    wrapper.set_limits(key_rate=None, key_burst=5, key_quota=None)
    for key in apigw.get_api_keys(limit=500)["items"]:
        apigw.delete_api_key(apiKey=key["id"])
    wrapper.limits("DELETE")
    yield wrapper
    wrapper.set_limits(key_rate=moto_durable.DEFAULT_KEY_RATE, key_burst=5, key_quota=None)


def client(wrapper: Wrapper, attempts: int = 1):
    """boto3's API Gateway client; attempts=1: no retry, the first answer is the error."""
    return boto3.client(
        "apigateway", endpoint_url=wrapper.url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def refused(call) -> dict:
    """What boto3 read from a refused call: status, the error header, Retry-After, its error code
    and message, and the raw body."""
    with pytest.raises(Exception) as failed:
        call()
    response = failed.value.response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return {"status": response["ResponseMetadata"]["HTTPStatusCode"],
            "x-amzn-errortype": headers.get("x-amzn-errortype"),
            "retry-after": headers.get("retry-after"),
            "code": response["Error"]["Code"], "message": response["Error"]["Message"],
            "retryAfterSeconds": response.get("retryAfterSeconds")}


def raw_body_of_next_error(apigw) -> list[dict]:
    bodies: list[dict] = []
    apigw.meta.events.register(
        "after-call.apigateway.CreateApiKey",
        lambda http_response, **_: bodies.append(json.loads(http_response.content)))
    return bodies


# --- settings from the environment ------------------------------------------------------------

@pytest.mark.parametrize("environment, expected", [
    ({}, {"key_rate": 5.0, "key_burst": 5, "key_quota": None}),
    ({"MOTO_APIGW_KEY_RATE": "off"}, {"key_rate": None, "key_burst": 1, "key_quota": None}),
    ({"MOTO_APIGW_KEY_RATE": "none"}, {"key_rate": None, "key_burst": 1, "key_quota": None}),
    ({"MOTO_APIGW_KEY_RATE": "2.5"}, {"key_rate": 2.5, "key_burst": 3, "key_quota": None}),
    ({"MOTO_APIGW_KEY_RATE": "20", "MOTO_APIGW_KEY_BURST": "40"},
     {"key_rate": 20.0, "key_burst": 40, "key_quota": None}),
    ({"MOTO_APIGW_KEY_QUOTA": "10"}, {"key_rate": 5.0, "key_burst": 5, "key_quota": 10}),
    ({"MOTO_APIGW_KEY_QUOTA": "0"}, {"key_rate": 5.0, "key_burst": 5, "key_quota": 0}),
    ({"MOTO_APIGW_KEY_QUOTA": "unlimited"}, {"key_rate": 5.0, "key_burst": 5, "key_quota": None}),
])
def test_limits_come_from_the_environment_with_api_gateways_rate_by_default(environment, expected):
    assert moto_durable.limits_from_environment(environment) == expected


@pytest.mark.parametrize("environment, message", [
    ({"MOTO_APIGW_KEY_RATE": "0"}, "MOTO_APIGW_KEY_RATE must be a number of keys per second above 0"),
    ({"MOTO_APIGW_KEY_RATE": "-1"}, "MOTO_APIGW_KEY_RATE must be a number of keys per second above 0"),
    ({"MOTO_APIGW_KEY_RATE": "fast"}, "MOTO_APIGW_KEY_RATE must be a number"),
    ({"MOTO_APIGW_KEY_RATE": "nan"}, "MOTO_APIGW_KEY_RATE must be a number of keys per second above 0"),
    ({"MOTO_APIGW_KEY_BURST": "0"}, "MOTO_APIGW_KEY_BURST must be an integer >= 1"),
    ({"MOTO_APIGW_KEY_BURST": "1.5"}, "MOTO_APIGW_KEY_BURST must be an integer >= 1"),
    ({"MOTO_APIGW_KEY_QUOTA": "-1"}, "MOTO_APIGW_KEY_QUOTA must be an integer >= 0"),
    ({"MOTO_APIGW_KEY_QUOTA": "many"}, "MOTO_APIGW_KEY_QUOTA must be a number"),
])
def test_a_bad_setting_is_refused_by_name(environment, message):
    with pytest.raises(moto_durable.LimitsError, match=message):
        moto_durable.limits_from_environment(environment)


def test_the_wrapper_does_not_start_with_a_bad_setting(tmp_path):
    wrapper = Wrapper(tmp_path, {"MOTO_APIGW_KEY_QUOTA": "-3"})
    done = subprocess.run(
        [sys.executable, str(moto_wrapper.LOCAL_DIR / "moto_durable.py"), "--port", str(wrapper.port)],
        env=wrapper.environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "MOTO_APIGW_KEY_QUOTA must be an integer >= 0" in done.stderr


# --- the token bucket -------------------------------------------------------------------------

def test_the_bucket_allows_its_burst_then_one_key_per_period():
    limits = moto_durable.KeyLimits()
    limits.configure({"key_rate": 2.0, "key_burst": 3})
    taken = [limits.take_token("111111111111", 100.0) for _ in range(4)]
    assert taken == [0.0, 0.0, 0.0, 0.5]  # the fourth waits half a second at 2 keys per second
    assert limits.take_token("111111111111", 100.25) == pytest.approx(0.25)
    assert limits.take_token("111111111111", 100.5) == 0.0
    # Another account has its own bucket; a long pause refills to the burst, not beyond.
    assert limits.take_token("222222222222", 100.5) == 0.0
    assert [limits.take_token("111111111111", 200.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]


def test_without_a_rate_every_key_is_allowed():
    limits = moto_durable.KeyLimits()
    limits.configure({"key_rate": None})
    assert {limits.take_token("111111111111", 0.0) for _ in range(1000)} == {0.0}


# --- CreateApiKey as boto3 sees it ------------------------------------------------------------

def test_the_defaults_are_api_gateways_rate_and_no_quota(tmp_path_factory):
    running = started(tmp_path_factory)
    try:
        assert running.limits() == (200, {
            "key_rate": 5.0, "key_burst": 5, "key_quota": None,
            "created": 0, "throttled": 0, "refused_by_quota": 0})
        apigw = client(running)
        # One second's worth at once, then one every 0.2 s: never refused.
        keys = [apigw.create_api_key(name=f"k{n}")["id"] for n in range(5)]
        for n in range(3):
            time.sleep(0.25)
            keys.append(apigw.create_api_key(name=f"later{n}")["id"])
        assert len(set(keys)) == 8
        assert running.limits()[1]["throttled"] == 0
    finally:
        running.stop()


def test_over_the_rate_api_gateway_answers_429_too_many_requests_with_retry_after(limits):
    limits.set_limits(key_rate=2, key_burst=2)
    apigw = client(limits)
    apigw.create_api_key(name="first")
    apigw.create_api_key(name="second")
    bodies = raw_body_of_next_error(apigw)

    error = refused(lambda: apigw.create_api_key(name="third"))

    assert error == {"status": 429, "x-amzn-errortype": "TooManyRequestsException",
                     "retry-after": "1", "code": "TooManyRequestsException",
                     "message": "Too Many Requests", "retryAfterSeconds": "1"}
    assert bodies == [{"message": "Too Many Requests"}]
    with pytest.raises(apigw.exceptions.TooManyRequestsException):
        apigw.create_api_key(name="third")
    time.sleep(1.0)  # what Retry-After asked
    assert apigw.create_api_key(name="third")["name"] == "third"
    assert limits.limits()[1] == {"key_rate": 2.0, "key_burst": 2, "key_quota": None,
                                       "created": 3, "throttled": 2, "refused_by_quota": 0}


def test_the_sdks_retries_absorb_the_rate(limits):
    """botocore's standard mode retries TooManyRequestsException with backoff, as the Rust SDK's
    standard mode does: a burst of creations over the rate all succeed, later."""
    limits.set_limits(key_rate=4, key_burst=1)
    apigw = client(limits, attempts=10)
    started_at = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda n: apigw.create_api_key(name=f"burst{n}")["name"], range(8)))
    assert sorted(names) == sorted(f"burst{n}" for n in range(8))
    counts = limits.limits()[1]
    assert counts["created"] == 8 and counts["throttled"] >= 1
    # 8 keys at 4 a second, one at once: at least 1.75 s.
    assert time.monotonic() - started_at >= 1.75


def test_at_the_quota_api_gateway_answers_limit_exceeded_until_a_key_goes(limits):
    limits.set_limits(key_quota=3)
    apigw = client(limits)
    keys = [apigw.create_api_key(name=f"q{n}")["id"] for n in range(3)]
    bodies = raw_body_of_next_error(apigw)

    error = refused(lambda: apigw.create_api_key(name="fourth"))

    assert error == {
        "status": 429, "x-amzn-errortype": "LimitExceededException", "retry-after": None,
        "code": "LimitExceededException", "retryAfterSeconds": None,
        "message": "API key quota reached: 3 API keys in this account and Region, "
                   "the most it may hold is 3"}
    assert bodies == [{"message": error["message"]}]
    with pytest.raises(apigw.exceptions.LimitExceededException):
        apigw.create_api_key(name="fourth")
    assert len(apigw.get_api_keys(limit=500)["items"]) == 3
    assert "moto: CreateApiKey refused, LimitExceededException" in limits.log.read_text()

    apigw.delete_api_key(apiKey=keys[0])
    assert apigw.create_api_key(name="fourth")["name"] == "fourth"
    counts = limits.limits()[1]
    assert (counts["created"], counts["refused_by_quota"]) == (4, 2)


def test_concurrent_creations_never_pass_the_quota(limits):
    limits.set_limits(key_quota=5)
    apigw = client(limits)

    def create(n: int) -> str:
        try:
            apigw.create_api_key(name=f"c{n}")
            return "created"
        except apigw.exceptions.LimitExceededException:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(create, range(30)))
    assert (outcomes.count("created"), outcomes.count("refused")) == (5, 25)
    assert len(apigw.get_api_keys(limit=500)["items"]) == 5


def test_keys_restored_after_a_restart_count_for_the_quota(tmp_path_factory):
    running = started(tmp_path_factory, {"MOTO_APIGW_KEY_RATE": "off", "MOTO_APIGW_KEY_QUOTA": "2"})
    try:
        apigw = client(running)
        apigw.create_api_key(name="a")
        apigw.create_api_key(name="b")
        running.restart()
        assert running.limits()[1]["key_quota"] == 2
        assert refused(lambda: apigw.create_api_key(name="c"))["code"] == "LimitExceededException"
    finally:
        running.stop()


# --- the test endpoint ------------------------------------------------------------------------

def test_limits_change_at_run_time(limits):
    apigw = client(limits)
    apigw.create_api_key(name="before")
    assert limits.set_limits(key_quota=1) == {
        "key_rate": None, "key_burst": 5, "key_quota": 1,
        "created": 1, "throttled": 0, "refused_by_quota": 0}
    assert refused(lambda: apigw.create_api_key(name="over"))["code"] == "LimitExceededException"

    limits.set_limits(key_quota=None, key_rate=1, key_burst=1)
    apigw.create_api_key(name="one")
    assert refused(lambda: apigw.create_api_key(name="two"))["code"] == "TooManyRequestsException"

    status, cleared = limits.limits("DELETE")
    assert status == 200
    assert (cleared["created"], cleared["throttled"], cleared["refused_by_quota"]) == (0, 0, 0)
    # Clearing refills the bucket.
    apigw.create_api_key(name="two")


@pytest.mark.parametrize("body, message", [
    ({"key_rate": 0}, "key_rate must be a number of keys per second above 0 or null"),
    ({"key_rate": "5"}, "key_rate must be a number of keys per second above 0 or null"),
    ({"key_rate": True}, "key_rate must be a number of keys per second above 0 or null"),
    ({"key_burst": 0}, "key_burst must be an integer >= 1"),
    ({"key_burst": None}, "key_burst must be an integer >= 1"),
    ({"key_quota": -1}, "key_quota must be an integer >= 0 or null"),
    ({"key_quota": 2.5}, "key_quota must be an integer >= 0 or null"),
    ({"quota": 3}, "unknown settings ['quota']"),
    ([], "the body must be a JSON object"),
    (b"{not json", "the body is not JSON"),
])
def test_a_bad_change_is_refused_and_changes_nothing(limits, body, message):
    before = limits.limits()
    status, answer = limits.limits("POST", body)
    assert status == 400
    assert message in answer["message"]
    assert limits.limits() == before


def test_the_test_endpoint_is_not_counted_as_an_aws_call(limits):
    calls = json.loads(urllib.request.urlopen(f"{limits.url}/_local/calls", timeout=5).read())
    limits.limits()
    limits.set_limits(key_quota=None)
    assert json.loads(urllib.request.urlopen(f"{limits.url}/_local/calls", timeout=5).read()) == calls
