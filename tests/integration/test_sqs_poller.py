"""The local event source mapping behaves like AWS': batches, partial failures, DLQ redrive."""

from __future__ import annotations

import json
import threading
import time
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from stratus.resources import QueueSpec
from stratus_local.sqs_poller import SqsPoller


@pytest.fixture
def sqs():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client("sqs", endpoint_url=f"http://{host}:{port}", region_name="eu-central-1")
    server.stop()


def make_queue(sqs, max_receive_count=2):
    # moto keeps state per process, not per server: every test gets its own names
    name = f"q-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq


def wait_until(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_batches_and_partial_failures_reach_the_dlq(sqs):
    url, arn, dlq = make_queue(sqs, max_receive_count=2)
    spec = QueueSpec("Q", visibility_timeout_s=30, max_receive_count=2, batch_size=5, max_batching_window_s=1,
                     consumer="x")
    delivered: list[list[str]] = []
    lock = threading.Lock()

    def handler(event, context):
        bodies = [r["body"] for r in event["Records"]]
        assert all(r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == arn for r in event["Records"])
        with lock:
            delivered.append(bodies)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                      if r["body"] == "poison"]}

    # Given 7 good messages and one that always fails
    for i in range(7):
        sqs.send_message(QueueUrl=url, MessageBody=f"ok-{i}")
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    poller = SqsPoller(sqs, url, arn, spec, handler, "consumer", retry_delay_s=0, poll_wait_s=1)
    poller.start()
    try:
        # Then every good message is handled exactly once, in batches of at most 5
        assert wait_until(lambda: sum(b.count("poison") for b in delivered) >= 2)
        assert wait_until(lambda: "poison" in [m["Body"] for m in sqs.receive_message(
            QueueUrl=dlq, WaitTimeSeconds=0, VisibilityTimeout=0).get("Messages", [])], timeout=10)
    finally:
        poller.stop()
    good = [b for batch in delivered for b in batch if b != "poison"]
    assert sorted(good) == sorted(f"ok-{i}" for i in range(7))
    assert max(len(batch) for batch in delivered) <= 5
    # And the failed one was tried max_receive_count times before being parked in the DLQ
    assert sum(batch.count("poison") for batch in delivered) == 2
    remaining = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert remaining["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_crashing_handler_fails_the_whole_batch(sqs):
    url, arn, dlq = make_queue(sqs, max_receive_count=5)
    spec = QueueSpec("Q", visibility_timeout_s=30, max_receive_count=5, batch_size=10, max_batching_window_s=0,
                     consumer="x")
    calls = []

    def handler(event, context):
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("cold start failed")
        return {"batchItemFailures": []}

    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    poller = SqsPoller(sqs, url, arn, spec, handler, "consumer", retry_delay_s=0, poll_wait_s=1)
    poller.start()
    try:
        assert wait_until(lambda: sum(calls[1:]) >= 3)
    finally:
        poller.stop()
    assert sum(calls[1:]) == 3  # redelivered after the crash, handled once
