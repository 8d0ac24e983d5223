"""The emulator's conditional writes are atomic (`moto_seams.install_dynamodb_atomic_writes`, installed for
every test in tests/conftest.py): of many parallel "create if absent" writes exactly one succeeds."""

from concurrent.futures import ThreadPoolExecutor

import boto3
from moto import mock_aws

from stratus_local import moto_seams


def test_parallel_conditional_writes_have_one_winner(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_seams.install_dynamodb_atomic_writes()
    assert moto_seams.missing_moto_internals("dynamodb_atomic_writes") == []
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")

        def start(worker: int) -> bool:
            """Shaped like a job start (`DynamoJobRepository.begin_run`): without the seam, 2 of 32 parallel
            writes won in about half of the rounds here."""
            try:
                ddb.update_item(
                    TableName="t", Key={"k": {"S": "job"}},
                    UpdateExpression="SET st = :q, run = :w, a1 = :w, a2 = :w, a3 = :w REMOVE r1, r2, r3, r4, r5",
                    ConditionExpression="(st = :c AND attribute_not_exists(run)) OR st IN (:f, :e)",
                    ExpressionAttributeValues={":w": {"N": str(worker)}, ":q": {"S": "queued"}, ":c": {"S": "created"},
                                               ":f": {"S": "finished"}, ":e": {"S": "error"}})
                return True
            except ddb.exceptions.ConditionalCheckFailedException:
                return False

        winners = []
        for _ in range(20):
            ddb.put_item(TableName="t", Item={"k": {"S": "job"}, "st": {"S": "created"}})
            with ThreadPoolExecutor(max_workers=16) as pool:
                winners.append(list(pool.map(start, range(32))).count(True))
        assert winners == [1] * 20
