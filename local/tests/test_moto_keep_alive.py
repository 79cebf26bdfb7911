"""MOTO_KEEP_ALIVE=1 in local/moto_durable.py: requests one after another on one connection are
each answered for themselves (no request's bytes taken for another's), and without it every
answer closes the connection, as werkzeug's server does."""

from __future__ import annotations

import http.client
import json
import statistics
import time

import pytest

import moto_wrapper

TARGET = "DynamoDB_20120810."


def call(connection: http.client.HTTPConnection, action: str, body: dict) -> tuple[int, dict, str | None]:
    connection.request("POST", "/", body=json.dumps(body), headers={
        "X-Amz-Target": TARGET + action, "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"{}"), answer.getheader("Connection")


def table(name: str) -> dict:
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}


@pytest.fixture
def wrapper(tmp_path, request):
    running = moto_wrapper.Wrapper(tmp_path, request.param)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("wrapper", [{"MOTO_KEEP_ALIVE": "1"}], indirect=True)
def test_one_connection_carries_many_requests(wrapper):
    connection = http.client.HTTPConnection("127.0.0.1", wrapper.port, timeout=10)
    status, _, closing = call(connection, "CreateTable", table("kept"))
    assert (status, closing) == (200, None)
    local_port = connection.sock.getsockname()[1]
    # A body far larger than one read of the socket, then small ones right behind it.
    big = "x" * 200_000
    status, _, _ = call(connection, "PutItem", {"TableName": "kept", "Item": {
        "pk": {"S": "big"}, "value": {"S": big}}})
    assert status == 200
    for n in range(5):
        status, _, _ = call(connection, "PutItem", {"TableName": "kept", "Item": {"pk": {"S": f"item-{n}"}}})
        assert status == 200
    status, answer, _ = call(connection, "GetItem", {"TableName": "kept", "Key": {"pk": {"S": "big"}}})
    assert status == 200 and answer["Item"]["value"]["S"] == big
    status, answer, _ = call(connection, "Scan", {"TableName": "kept", "Select": "COUNT"})
    assert (status, answer["Count"]) == (200, 6)
    # Every request went over the first connection.
    assert connection.sock.getsockname()[1] == local_port
    # Without TCP_NODELAY an answer's second write waits for the client's delayed ACK: 40 ms
    # or more each, on a kept connection.
    took = []
    for _ in range(15):
        started = time.monotonic()
        status, _, _ = call(connection, "ListTables", {})
        took.append(time.monotonic() - started)
        assert status == 200
    assert statistics.median(took) < 0.03, took
    connection.close()


@pytest.mark.parametrize("wrapper", [{}], indirect=True)
def test_without_it_every_answer_closes(wrapper):
    connection = http.client.HTTPConnection("127.0.0.1", wrapper.port, timeout=10)
    status, _, closing = call(connection, "ListTables", {})
    assert (status, closing) == (200, "close")
    connection.close()
