"""An embedded moto server with the processing's buckets, queues and the demo collection, and a
way to run `python -m stratus_processing` against it as a subprocess (like AWS Batch would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from stratus.run_contract import RunConfig
from stratus.settings import ENV
from stratus_local.demo_data import generate_demo_collection

REGION = "eu-central-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}
PROCESSING_TIMEOUT_S = 120  # seconds; a run over the demo data takes a few


@dataclass
class ProcessingStack:
    endpoint_url: str
    s3: Any
    sqs: Any
    data_bucket: str
    results_bucket: str
    status_queue_url: str
    log_queue_url: str

    def run(self, process: dict[str, Any], job_id: str, run_id: str = "run-1",
            environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Store the process graph for the run and run the container entrypoint on it (with `environment`
        added to the container's)."""
        run = RunConfig.for_run(job_id, run_id)
        self.s3.put_object(Bucket=self.results_bucket, Key=run.graph_key, Body=json.dumps(process).encode())
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATUS_"))},
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            ENV["data_bucket"]: self.data_bucket,
            ENV["results_bucket"]: self.results_bucket,
            ENV["status_queue_url"]: self.status_queue_url,
            ENV["log_queue_url"]: self.log_queue_url,
            **run.to_env(),
            **(environment or {}),
        }
        return subprocess.run([sys.executable, "-m", "stratus_processing"], env=environment, capture_output=True,
                              text=True, timeout=PROCESSING_TIMEOUT_S, check=False)

    def events(self, queue_url: str, job_id: str) -> list[dict[str, Any]]:
        """All messages of a job on a queue (drained), in the order they were sent."""
        bodies = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted((b for b in bodies if b["job_id"] == job_id), key=lambda b: b["time"])

    def read(self, key: str, bucket: str | None = None) -> bytes:
        return self.s3.get_object(Bucket=bucket or self.results_bucket, Key=key)["Body"].read()

    def read_href(self, href: str) -> bytes:
        bucket, _, key = href.removeprefix("s3://").partition("/")
        return self.read(key, bucket)

    def keys(self, bucket: str, prefix: str) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


@contextmanager
def running_processing_stack() -> Iterator[ProcessingStack]:
    """A moto server with both buckets, both queues and the demo collection; stopped on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint_url = f"http://127.0.0.1:{server._server.server_port}"
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=REGION)
        s3 = session.client("s3", endpoint_url=endpoint_url)
        sqs = session.client("sqs", endpoint_url=endpoint_url)
        for bucket in ("stratus-data", "stratus-results"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        stack = ProcessingStack(
            endpoint_url=endpoint_url, s3=s3, sqs=sqs, data_bucket="stratus-data", results_bucket="stratus-results",
            status_queue_url=sqs.create_queue(QueueName="stratus-status")["QueueUrl"],
            log_queue_url=sqs.create_queue(QueueName="stratus-logs")["QueueUrl"])
        generate_demo_collection(s3, stack.data_bucket)
        yield stack
    finally:
        server.stop()
