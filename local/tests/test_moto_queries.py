"""Query in local/moto_durable.py: a query on a table's key answers what moto's answers (order,
pages, conditions, filters; an index's queries untouched) at the cost of its partition, not
the table's size."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

import moto_wrapper

TABLE = "queries"


@pytest.fixture(scope="module")
def dynamodb(tmp_path_factory):
    gsi1 = {"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"},
                          {"AttributeName": "gsk", "KeyType": "RANGE"}]}
    with moto_wrapper.dynamodb_table(tmp_path_factory.mktemp("moto"), TABLE, ("gpk", "gsk"),
                                     GlobalSecondaryIndexes=[gsi1]) as client:
        fill = [{"PutRequest": {"Item": {"pk": {"S": f"fill-{i}"}, "sk": {"S": "A"},
                                         "doc": {"S": "x" * 200}}}} for i in range(3000)]
        for start in range(0, len(fill), 25):
            client.batch_write_item(RequestItems={TABLE: fill[start:start + 25]})
        for sk in ("b", "d", "a", "e", "c"):
            client.put_item(TableName=TABLE, Item={
                "pk": {"S": "customer"}, "sk": {"S": sk}, "n": {"N": str(ord(sk))},
                "gpk": {"S": "REVIEW"}, "gsk": {"S": f"due-{sk}"}})
        yield client


def sks(answer: dict) -> list[str]:
    return [item["sk"]["S"] for item in answer["Items"]]


def query(client, **extra) -> dict:
    return client.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                        ExpressionAttributeValues={":pk": {"S": "customer"},
                                                   **extra.pop("values", {})}, **extra)


def test_a_query_answers_its_partition_in_order_with_pages_conditions_and_filters(dynamodb):
    assert sks(query(dynamodb)) == ["a", "b", "c", "d", "e"]
    assert sks(query(dynamodb, ScanIndexForward=False)) == ["e", "d", "c", "b", "a"]

    first = query(dynamodb, Limit=2)
    assert sks(first) == ["a", "b"]
    second = query(dynamodb, Limit=2, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert sks(second) == ["c", "d"]

    between = dynamodb.query(
        TableName=TABLE, KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues={":pk": {"S": "customer"}, ":from": {"S": "b"}, ":to": {"S": "d"}})
    assert sks(between) == ["b", "c", "d"]
    filtered = query(dynamodb, FilterExpression="n > :n", values={":n": {"N": str(ord("c"))}})
    assert sks(filtered) == ["d", "e"]
    projected = query(dynamodb, ProjectionExpression="sk", Limit=1)
    assert projected["Items"] == [{"sk": {"S": "a"}}]

    nobody = dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues={":pk": {"S": "nobody"}})
    assert nobody["Items"] == [] and nobody["Count"] == 0
    assert dynamodb.describe_table(TableName=TABLE)["Table"]["ItemCount"] == 3005, \
        "asking for a partition that does not exist made none"


def test_an_index_query_still_sees_the_whole_table(dynamodb):
    answer = dynamodb.query(TableName=TABLE, IndexName="gsi1",
                            KeyConditionExpression="gpk = :review AND gsk < :until",
                            ExpressionAttributeValues={":review": {"S": "REVIEW"},
                                                       ":until": {"S": "due-c"}})
    assert sks(answer) == ["a", "b"]


def test_a_query_costs_its_partition_not_the_table(dynamodb):
    query(dynamodb)
    started = time.monotonic()
    for _ in range(20):
        assert len(query(dynamodb)["Items"]) == 5
    # moto's own sorts the table's 3,005 items for each query: about 0.05 s a query here.
    assert (time.monotonic() - started) / 20 < 0.02


def test_the_calls_endpoint_names_each_calls_operation_in_order(dynamodb):
    calls = f"{dynamodb.meta.endpoint_url}/_local/calls"
    urllib.request.urlopen(urllib.request.Request(calls, method="DELETE"), timeout=5).close()
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "customer"}, "sk": {"S": "a"}})
    query(dynamodb, Limit=1)
    operations = json.loads(urllib.request.urlopen(f"{calls}?operations", timeout=5).read())
    assert operations == ["Boto3 dynamodb GetItem", "Boto3 dynamodb Query"]
    assert json.loads(urllib.request.urlopen(calls, timeout=5).read()) == {"Boto3 dynamodb": 2}
