"""TransactWriteItems in local/moto_durable.py: all or nothing under concurrent requests, and
costing what it touches, not the table's size."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

import moto_wrapper

TABLE = "transactions"


@pytest.fixture(scope="module")
def dynamodb(tmp_path_factory):
    with moto_wrapper.dynamodb_table(tmp_path_factory.mktemp("moto"), TABLE) as client:
        yield client


def put(pk: str, sk: str = "A", condition: str | None = None) -> dict:
    operation = {"TableName": TABLE, "Item": {"pk": {"S": pk}, "sk": {"S": sk}}}
    if condition:
        operation["ConditionExpression"] = condition
    return {"Put": operation}


def exists(client, pk: str, sk: str = "A") -> bool:
    return "Item" in client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}})


def test_a_canceled_transaction_leaves_nothing_it_wrote(dynamodb):
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "taken"}, "sk": {"S": "A"}, "v": {"S": "old"}})
    with pytest.raises(ClientError) as canceled:
        dynamodb.transact_write_items(TransactItems=[
            put("fresh"),
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "taken"}, "sk": {"S": "B"}, "v": {"S": "new"}}}},
            put("other"),
            {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "taken"}, "sk": {"S": "A"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert canceled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert not exists(dynamodb, "fresh") and not exists(dynamodb, "other")
    assert not exists(dynamodb, "taken", "B")
    kept = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "taken"}, "sk": {"S": "A"}})["Item"]
    assert kept["v"]["S"] == "old"


def test_concurrent_transactions_and_writes_all_stay(dynamodb):
    """Canceled transactions racing successful ones and plain writes undo none of them."""
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "blocker"}, "sk": {"S": "A"}})
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                dynamodb.transact_write_items(TransactItems=[put(f"ok-{n}-{i}"), put(f"ok-{n}-{i}", "B")])
                dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": f"plain-{n}-{i}"}, "sk": {"S": "A"}})
                try:
                    dynamodb.transact_write_items(TransactItems=[
                        put(f"never-{n}-{i}"), put("blocker", "A", "attribute_not_exists(pk)")])
                except ClientError:
                    pass
        except BaseException as failure:  # noqa: BLE001 reported below
            failures.append(failure)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    for n in range(6):
        for i in range(15):
            assert exists(dynamodb, f"ok-{n}-{i}") and exists(dynamodb, f"ok-{n}-{i}", "B")
            assert exists(dynamodb, f"plain-{n}-{i}")
            assert not exists(dynamodb, f"never-{n}-{i}")


def test_a_transaction_costs_what_it_touches(dynamodb):
    for i in range(2000):
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": f"fill-{i}"}, "sk": {"S": "A"}, "doc": {"S": "x" * 200}})
    started = time.monotonic()
    for i in range(20):
        dynamodb.transact_write_items(TransactItems=[put(f"cost-{i}"), put(f"cost-{i}", "B"), put(f"cost-{i}", "C")])
    # moto's own copies the table per item: about 0.5 s a transaction at this size here.
    assert (time.monotonic() - started) / 20 < 0.1
