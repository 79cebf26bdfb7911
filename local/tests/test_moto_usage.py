"""GetUsage in local/moto_durable.py: usage recorded through /_test/usage, read back with boto3
as API Gateway answers it, kept across a restart of the wrapper."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

import moto_wrapper


class Wrapper(moto_wrapper.Wrapper):
    """The wrapper with its test endpoint /_test/usage."""

    def test_usage(self, method: str, body=None) -> tuple[int, dict]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(f"{self.url}/_test/usage", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory):
    # These tests make keys as fast as they can to read usage: no CreateApiKey rate here (its
    # limits have their own tests, test_moto_key_limits.py).
    running = Wrapper(tmp_path_factory.mktemp("moto"), {"MOTO_APIGW_KEY_RATE": "off"})
    running.start()
    try:
        yield running
    finally:
        running.stop()


def client(wrapper: Wrapper, **config):
    return boto3.client(
        "apigateway", endpoint_url=wrapper.url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2}, **config),
    )


@pytest.fixture(scope="module")
def apigw(wrapper):
    return client(wrapper)


def new_plan(apigw, quota: dict | None = None) -> str:
    settings = {"quota": quota} if quota else {}
    return apigw.create_usage_plan(name="plan", **settings)["id"]


def new_key(apigw, *plan_ids: str) -> str:
    key_id = apigw.create_api_key(name="key", enabled=True)["id"]
    for plan_id in plan_ids:
        apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
    return key_id


def record(wrapper: Wrapper, key_id: str, day: str, calls: int, plan_id: str | None = None) -> dict:
    body = {"keyId": key_id, "day": day, "calls": calls}
    if plan_id is not None:
        body["usagePlanId"] = plan_id
    status, answer = wrapper.test_usage("POST", body)
    assert status == 200, answer
    return answer


def usage(apigw, plan_id: str, start: str, end: str, **more) -> dict:
    answer = apigw.get_usage(usagePlanId=plan_id, startDate=start, endDate=end, **more)
    answer.pop("ResponseMetadata")
    return answer


def test_usage_has_one_used_remaining_pair_per_day_zero_days_included(wrapper, apigw):
    plan = new_plan(apigw, {"limit": 100, "period": "MONTH"})
    key = new_key(apigw, plan)
    assert record(wrapper, key, "2024-03-02", 7) == {
        "usagePlanId": plan, "keyId": key, "day": "2024-03-02", "calls": 7}
    record(wrapper, key, "2024-03-04", 3, plan_id=plan)

    assert usage(apigw, plan, "2024-03-01", "2024-03-05") == {
        "usagePlanId": plan, "startDate": "2024-03-01", "endDate": "2024-03-05",
        "items": {key: [[0, 100], [7, 93], [0, 93], [3, 90], [0, 90]]},
    }


def test_the_per_key_map_travels_as_values_like_api_gateway(wrapper, apigw):
    plan = new_plan(apigw)
    key = new_key(apigw, plan)
    bodies = []
    apigw.meta.events.register(
        "after-call.apigateway.GetUsage",
        lambda http_response, **_: bodies.append(json.loads(http_response.content)),
    )
    try:
        usage(apigw, plan, "2024-03-01", "2024-03-01")
    finally:
        apigw.meta.events.unregister("after-call.apigateway.GetUsage")
    assert bodies == [{"usagePlanId": plan, "startDate": "2024-03-01", "endDate": "2024-03-01",
                       "values": {key: [[0, 0]]}}]


def test_remaining_counts_the_whole_quota_period_and_restarts_with_the_next(wrapper, apigw):
    monthly = new_plan(apigw, {"limit": 100, "period": "MONTH"})
    daily = new_plan(apigw, {"limit": 10, "period": "DAY"})
    weekly = new_plan(apigw, {"limit": 50, "period": "WEEK"})
    key = new_key(apigw, monthly, daily, weekly)
    for plan in (monthly, daily, weekly):
        # 2024-01-28 is a Sunday, 2024-01-29 a Monday.
        for day, calls in (("2024-01-28", 30), ("2024-01-30", 40), ("2024-02-01", 12)):
            record(wrapper, key, day, calls, plan_id=plan)

    # Days before startDate in the same period count; a new month starts afresh.
    assert usage(apigw, monthly, "2024-01-29", "2024-02-02")["items"][key] == [
        [0, 70], [40, 30], [0, 30], [12, 88], [0, 88]]
    # Use beyond the limit reports 0 remaining, never less.
    assert usage(apigw, daily, "2024-01-29", "2024-02-01")["items"][key] == [
        [0, 10], [40, 0], [0, 10], [12, 0]]
    # Weeks start on Monday (UTC).
    assert usage(apigw, weekly, "2024-01-28", "2024-01-30")["items"][key] == [
        [30, 20], [0, 50], [40, 10]]


def test_a_plan_without_quota_reports_0_remaining(wrapper, apigw):
    plan = new_plan(apigw)
    key = new_key(apigw, plan)
    record(wrapper, key, "2024-05-01", 5)
    assert usage(apigw, plan, "2024-05-01", "2024-05-02")["items"] == {key: [[5, 0], [0, 0]]}


def test_every_attached_key_appears_and_key_id_filters(wrapper, apigw):
    plan = new_plan(apigw, {"limit": 10, "period": "DAY"})
    idle, busy, gone = new_key(apigw, plan), new_key(apigw, plan), new_key(apigw, plan)
    record(wrapper, busy, "2024-06-01", 4)
    record(wrapper, gone, "2024-06-02", 2)
    apigw.delete_usage_plan_key(usagePlanId=plan, keyId=gone)

    assert usage(apigw, plan, "2024-06-01", "2024-06-02")["items"] == {
        idle: [[0, 10], [0, 10]],
        busy: [[4, 6], [0, 10]],
        gone: [[0, 10], [2, 8]],  # detached since, its usage stays
    }
    # Out of the period, a detached key is no longer listed.
    assert set(usage(apigw, plan, "2024-06-03", "2024-06-03")["items"]) == {idle, busy}
    assert usage(apigw, plan, "2024-06-01", "2024-06-02", keyId=busy)["items"] == {busy: [[4, 6], [0, 10]]}
    assert usage(apigw, plan, "2024-06-01", "2024-06-02", keyId="nosuchkey")["items"] == {}


def test_pages_follow_position_and_the_last_page_has_none(wrapper, apigw):
    plan = new_plan(apigw)
    keys = {new_key(apigw, plan) for _ in range(5)}
    pages, position = [], None
    while True:
        more = {"position": position} if position else {}
        page = usage(apigw, plan, "2024-07-01", "2024-07-01", limit=2, **more)
        pages.append(page["items"])
        position = page.get("position")
        if position is None:
            break
    assert [len(items) for items in pages] == [2, 2, 1]
    assert set().union(*pages) == keys
    # Without a limit: 25 keys a page, all five at once.
    assert "position" not in usage(apigw, plan, "2024-07-01", "2024-07-01")


def test_late_usage_adds_to_a_past_day(wrapper, apigw):
    plan = new_plan(apigw, {"limit": 1000, "period": "MONTH"})
    key = new_key(apigw, plan)
    record(wrapper, key, "2024-08-10", 5)
    record(wrapper, key, "2024-08-12", 1)
    assert record(wrapper, key, "2024-08-10", 3)["calls"] == 8
    record(wrapper, key, "2024-08-11", 0)
    assert usage(apigw, plan, "2024-08-10", "2024-08-12")["items"][key] == [
        [8, 992], [0, 992], [1, 991]]


def test_usage_survives_a_restart(wrapper, apigw):
    plan = new_plan(apigw, {"limit": 100, "period": "MONTH"})
    key = new_key(apigw, plan)
    record(wrapper, key, "2024-09-01", 11)
    before = usage(apigw, plan, "2024-09-01", "2024-09-02")
    recorded = wrapper.test_usage("GET")

    wrapper.restart()

    assert usage(apigw, plan, "2024-09-01", "2024-09-02") == before == {
        "usagePlanId": plan, "startDate": "2024-09-01", "endDate": "2024-09-02",
        "items": {key: [[11, 89], [0, 89]]},
    }
    assert wrapper.test_usage("GET") == recorded
    record(wrapper, key, "2024-09-02", 1)
    assert usage(apigw, plan, "2024-09-02", "2024-09-02")["items"][key] == [[1, 88]]


def test_the_test_endpoint_lists_and_clears(wrapper, apigw):
    plan = new_plan(apigw)
    key = new_key(apigw, plan)
    record(wrapper, key, "2024-10-01", 2)
    status, listed = wrapper.test_usage("GET")
    assert status == 200
    assert {"usagePlanId": plan, "keyId": key, "day": "2024-10-01", "calls": 2} in listed["usage"]

    status, cleared = wrapper.test_usage("DELETE")
    assert status == 200 and cleared["cleared"] >= 1
    assert wrapper.test_usage("GET") == (200, {"usage": []})
    assert usage(apigw, plan, "2024-10-01", "2024-10-01")["items"] == {key: [[0, 0]]}


@pytest.fixture(scope="module")
def recording_setup(apigw):
    plan, other_plan = new_plan(apigw), new_plan(apigw)
    return {
        "plan": plan,
        "other_plan": other_plan,
        "key": new_key(apigw, plan),
        "two_plans_key": new_key(apigw, plan, other_plan),
        "planless_key": new_key(apigw),
    }


@pytest.mark.parametrize("body, message", [
    ({"keyId": "{key}", "day": "2024-01-01", "calls": -1}, "calls must be an integer >= 0"),
    ({"keyId": "{key}", "day": "2024-01-01", "calls": 1.5}, "calls must be an integer >= 0"),
    ({"keyId": "{key}", "day": "2024-01-01", "calls": True}, "calls must be an integer >= 0"),
    ({"keyId": "{key}", "day": "2024-01-01"}, "calls must be an integer >= 0"),
    ({"keyId": "nosuchkey", "day": "2024-01-01", "calls": 1}, "unknown API key nosuchkey"),
    ({"day": "2024-01-01", "calls": 1}, "keyId must be a string"),
    ({"keyId": "{key}", "usagePlanId": "nosuchplan", "day": "2024-01-01", "calls": 1},
     "unknown usage plan 'nosuchplan'"),
    ({"keyId": "{key}", "usagePlanId": "{other_plan}", "day": "2024-01-01", "calls": 1},
     "is not attached to usage plan"),
    ({"keyId": "{two_plans_key}", "day": "2024-01-01", "calls": 1}, "is attached to 2 usage plans"),
    ({"keyId": "{planless_key}", "day": "2024-01-01", "calls": 1}, "is attached to 0 usage plans"),
    ({"keyId": "{key}", "day": "2024-1-01", "calls": 1}, "day must be a date as YYYY-MM-DD"),
    ({"keyId": "{key}", "day": "2024-02-30", "calls": 1}, "day is not a valid date"),
    ({"keyId": "{key}", "day": 20240101, "calls": 1}, "day must be a date as YYYY-MM-DD"),
    ([], "the body must be a JSON object"),
    (b"{not json", "the body is not JSON"),
])
def test_recording_refuses_with_a_400_message(wrapper, recording_setup, body, message):
    if isinstance(body, dict):
        body = {name: value.format(**recording_setup) if isinstance(value, str) else value
                for name, value in body.items()}
    status, answer = wrapper.test_usage("POST", body)
    assert status == 400
    assert message in answer["message"]


def test_recording_into_a_plan_the_key_is_attached_to_among_several(wrapper, apigw, recording_setup):
    key, plan = recording_setup["two_plans_key"], recording_setup["other_plan"]
    assert record(wrapper, key, "2024-01-01", 3, plan_id=plan)["calls"] == 3
    assert usage(apigw, plan, "2024-01-01", "2024-01-01", keyId=key)["items"] == {key: [[3, 0]]}


def api_error(call) -> tuple[int, str, str, str]:
    """(status, x-amzn-errortype header, error code the SDK read, message) of a failed call."""
    with pytest.raises(Exception) as failed:
        call()
    response = failed.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"],
            response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype"),
            response["Error"]["Code"], response["Error"]["Message"])


def test_an_unknown_usage_plan_is_not_found(apigw):
    status, header, code, message = api_error(
        lambda: apigw.get_usage(usagePlanId="nosuchplan", startDate="2024-01-01", endDate="2024-01-02"))
    assert (status, header, code) == (404, "NotFoundException", "NotFoundException")
    assert message == "Invalid Usage Plan ID specified"
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_usage(usagePlanId="nosuchplan", startDate="2024-01-01", endDate="2024-01-02")


ONE_DAY = {"startDate": "2024-01-01", "endDate": "2024-01-01"}


@pytest.mark.parametrize("params, message", [
    ({"startDate": "2024-1-01", "endDate": "2024-01-02"}, "startDate must be a date as YYYY-MM-DD"),
    ({"startDate": "2024-01-01", "endDate": "2024-13-01"}, "endDate is not a valid date"),
    ({"startDate": "2024-01-02", "endDate": "2024-01-01"}, "endDate must not be before startDate"),
    ({"startDate": "2024-01-01", "endDate": "2024-03-31"}, "cannot exceed 90 days"),
    ({**ONE_DAY, "limit": 0}, "limit must be an integer from 1 to 500"),
    ({**ONE_DAY, "limit": 501}, "limit must be an integer from 1 to 500"),
    ({**ONE_DAY, "position": "not-a-position"}, "Invalid position"),
])
def test_a_bad_request_is_refused(apigw, recording_setup, params, message):
    status, header, code, text = api_error(
        lambda: apigw.get_usage(usagePlanId=recording_setup["plan"], **params))
    assert (status, header, code) == (400, "BadRequestException", "BadRequestException")
    assert message in text


@pytest.mark.parametrize("params, message", [
    ({"endDate": "2024-01-01"}, "startDate must be a date"),
    ({"startDate": "2024-01-01"}, "endDate must be a date"),
    ({}, "startDate must be a date"),
])
def test_missing_dates_are_refused(wrapper, recording_setup, params, message):
    unchecked = client(wrapper, parameter_validation=False)  # boto3 would refuse to send these
    status, header, code, text = api_error(
        lambda: unchecked.get_usage(usagePlanId=recording_setup["plan"], **params))
    assert (status, header, code) == (400, "BadRequestException", "BadRequestException")
    assert message in text


def test_ninety_days_is_the_longest_period(apigw, recording_setup):
    key = recording_setup["key"]
    answer = usage(apigw, recording_setup["plan"], "2024-01-01", "2024-03-30", keyId=key)
    assert len(answer["items"][key]) == 90


def test_update_usage_sets_what_a_key_has_left_this_period(wrapper, apigw):
    from datetime import datetime, timezone
    today = datetime.now(timezone.utc).date().isoformat()
    plan = new_plan(apigw, {"limit": 100, "period": "MONTH"})
    old, new = new_key(apigw, plan), new_key(apigw, plan)
    record(wrapper, old, today, 30)
    record(wrapper, new, today, 5)
    answer = apigw.update_usage(usagePlanId=plan, keyId=new, patchOperations=[
        {"op": "replace", "path": "/remaining", "value": "70"}])
    assert answer["items"] == {new: [[5, 70]]}
    # Later calls count against what was set; the other key is untouched.
    record(wrapper, new, today, 10)
    assert usage(apigw, plan, today, today)["items"] == {old: [[30, 70]], new: [[15, 60]]}


def test_update_usage_refuses_a_plan_without_quota_and_a_key_not_on_it(wrapper, apigw):
    no_quota = new_plan(apigw)
    key = new_key(apigw, no_quota)
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.update_usage(usagePlanId=no_quota, keyId=key, patchOperations=[
            {"op": "replace", "path": "/remaining", "value": "1"}])
    with_quota = new_plan(apigw, {"limit": 10, "period": "DAY"})
    with pytest.raises(apigw.exceptions.BadRequestException):
        apigw.update_usage(usagePlanId=with_quota, keyId=key, patchOperations=[
            {"op": "replace", "path": "/remaining", "value": "1"}])
