"""The user-jobs index holds what a job list shows, not every job's process graph (`USER_JOBS_LISTED_ATTRIBUTES`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import boto3

from stratus.domain.jobs import Job
from stratus.events import JobStatus, utcnow
from stratus.store.jobs import DynamoJobRepository
from stratus.store.models import JOB_ATTRIBUTES_NOT_LISTED, JobModel

GRAPH = {"process_graph": {"load": {"process_id": "load_collection", "arguments": {"id": "S2"}, "result": True}}}


def test_listed_jobs_carry_every_shown_field_but_no_process_graph(tables):
    # Given two jobs of alice, one with every optional field set
    repository = DynamoJobRepository()
    now = utcnow().replace(microsecond=0)
    full = Job(job_id="j-full", user_id="alice", process=GRAPH, status=JobStatus.FINISHED, run_id="r1",
               title="t", description="d", plan="free", budget=5.0, progress=100.0, reason="done",
               error_code=None, usage={"cpu": {"value": 1, "unit": "cpu-seconds"}}, costs=0.5,
               job_options={"memory": "2GB"}, created=now, updated=now, queued=now, started=now, finished=now)
    plain = Job(job_id="j-plain", user_id="alice", process=GRAPH, created=now + timedelta(seconds=1),
                updated=now + timedelta(seconds=1))
    repository.add(full)
    repository.add(plain)

    # When alice's jobs are listed
    listed, next_token = repository.list_for_user("alice", limit=10, after=None)

    # Then they come newest first with every field a list shows, and without what only the job's page shows
    assert next_token is None
    unlisted = {name: None for name in JOB_ATTRIBUTES_NOT_LISTED}
    assert listed == [replace(plain, **unlisted), replace(full, **unlisted)]
    # and the index itself holds no process graph (the read does not pay for it)
    items = boto3.client("dynamodb", region_name="eu-central-1").query(
        TableName=tables.jobs_table, IndexName=JobModel.user_jobs.Meta.index_name,
        KeyConditionExpression="user_id = :u", ExpressionAttributeValues={":u": {"S": "alice"}})["Items"]
    assert len(items) == 2 and not any("process" in item or "job_options" in item for item in items)
    # while the job itself keeps them
    assert repository.get("j-full") == full
