"""A run's session policy for the results bucket (`stratus_processing.run_credentials`): exactly the run's folder,
read-only foreign keys, and the AssumeRole the processing makes with it (on moto).

moto enforces no session policy (its assumed-role credentials carry the role's policies only), so what a session
may touch is checked here on the policy document, with moto's IAM policy evaluator for the object actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, PermissionResult
from stratus.events import EventPublisher
from stratus.run_contract import RunConfig, RunSnapshot
from stratus.settings import Settings
from stratus_processing.io.cog import RasterReader
from stratus_processing.run_credentials import (
    REFRESH_BEFORE_S,
    SESSION_DURATION_S,
    AssumedRoleResults,
    ScopedResultsClient,
    SessionPolicyTooLarge,
    model_keys,
    packed,
    run_scope,
    session_name,
    session_policy,
)
from stratus_processing.runner import EXIT_OK, run_job

from tests.unit.processing.processing_testkit import RecordingSQS

BUCKET = "stratus-results"
RUN = RunConfig.for_run("j-1", "r-1")
OBJECTS = f"arn:aws:s3:::{BUCKET}/"


def allowed(policy: dict, action: str, key: str) -> bool:
    return IAMPolicy(json.dumps(policy)).is_action_permitted(action, f"{OBJECTS}{key}") == PermissionResult.PERMITTED


def test_a_run_owns_the_folder_of_its_snapshot_and_results() -> None:
    assert run_scope(RUN) == "jobs/j-1/runs/r-1/"
    assert run_scope(RunConfig.for_sync("u-1", "r-abc")) == "sync/u-1/r-abc/"
    # a configuration whose snapshot and results are not one run's folder has no scope
    with pytest.raises(ValueError):
        run_scope(RunConfig("j-1", "r-1", "jobs/j-1/runs/r-1/process_graph.json", "jobs/j-2/runs/r-1/results/"))


def test_the_session_reads_and_writes_exactly_the_runs_folder() -> None:
    policy = session_policy(BUCKET, run_scope(RUN))
    for key in (RUN.graph_key, f"{RUN.results_prefix}out.tif", f"{RUN.results_prefix}tiles/t-0-0/record.json",
                f"{RUN.results_prefix}plan.json", RUN.manifest_key):
        assert allowed(policy, "s3:GetObject", key) and allowed(policy, "s3:PutObject", key), key
    # and nothing beside it: other runs of the job, runs whose ids start alike, other jobs, the job's root, sync
    for key in ("jobs/j-1/runs/r-2/results/out.tif", "jobs/j-1/runs/r-10/results/out.tif",
                "jobs/j-10/runs/r-1/results/out.tif", "jobs/j-1/other.json", "sync/u/r/results/out.tif"):
        assert not allowed(policy, "s3:PutObject", key) and not allowed(policy, "s3:GetObject", key), key
    # and it deletes nothing, not even its own files
    assert not allowed(policy, "s3:DeleteObject", f"{RUN.results_prefix}out.tif")
    # Every object resource is the run's folder or a key named exactly; the only wildcard ends the folder
    resources = [r for s in policy["Statement"] for r in (s["Resource"] if isinstance(s["Resource"], list)
                                                           else [s["Resource"]])]
    assert resources == [f"{OBJECTS}jobs/j-1/runs/r-1/*", f"arn:aws:s3:::{BUCKET}"]
    (listing,) = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLikeIfExists": {"s3:prefix": ["jobs/j-1/runs/r-1/*"]}}


def test_models_and_a_previous_run_are_read_only_and_exact() -> None:
    model = "jobs/j-0/runs/r-9/results/model.json"
    previous = "jobs/j-1/runs/r-0/results/"
    policy = session_policy(BUCKET, run_scope(RUN), read_keys=[model], read_prefixes=[previous])
    assert allowed(policy, "s3:GetObject", model) and not allowed(policy, "s3:PutObject", model)
    assert not allowed(policy, "s3:GetObject", "jobs/j-0/runs/r-9/results/model.json.bak")
    assert not allowed(policy, "s3:GetObject", "jobs/j-0/runs/r-9/results/other.tif")
    assert allowed(policy, "s3:GetObject", f"{previous}tiles/t-0-0/record.json")
    assert not allowed(policy, "s3:PutObject", f"{previous}tiles/t-0-0/record.json")


@pytest.mark.parametrize("scope, keys, prefixes", [
    ("jobs/*/", (), ()), ("jobs/j-1/runs/r-1", (), ()),  # a wildcard, not a folder
    ("jobs/j-1/runs/r-1/", ("jobs/j-0/*",), ()), ("jobs/j-1/runs/r-1/", ("jobs/j-0/runs/r-?/m",), ()),
    ("jobs/j-1/runs/r-1/", (), ("jobs/j-0/runs/r-0",)), ("jobs/j-1/runs/r-1/", (), ("jobs/*/",)),
])
def test_no_wildcard_reaches_the_policy(scope, keys, prefixes) -> None:
    with pytest.raises(ValueError):
        session_policy(BUCKET, scope, read_keys=keys, read_prefixes=prefixes)


def test_model_keys_come_from_the_frozen_snapshot() -> None:
    snapshot = RunSnapshot({"process_graph": {}}, ml_models={
        "j-0": {"key": "jobs/j-0/runs/r-9/results/model.json"}, "bad": {"error": "not a model"},
        "https://x/jobs/j-0/results/model": {"key": "jobs/j-0/runs/r-9/results/model.json"}})
    assert model_keys(snapshot) == ("jobs/j-0/runs/r-9/results/model.json",)


def test_session_names_carry_the_job_id_as_sts_allows() -> None:
    assert session_name("j-1") == "stratus-j-1"
    assert session_name("r-0123456789abcdef0123456789abcdef") == "stratus-r-0123456789abcdef0123456789abcdef"
    assert session_name("a b/c" + "x" * 80) == ("stratus-a-b-c" + "x" * 80)[:64]


def test_a_policy_sts_cannot_take_is_refused() -> None:
    keys = [f"jobs/j-{i}/runs/r-0123456789abcdef/results/model.json" for i in range(40)]
    with pytest.raises(SessionPolicyTooLarge):
        packed(session_policy(BUCKET, run_scope(RUN), read_keys=keys))


def results_role() -> str:
    """The results bucket and role on moto (the test is `mock_aws`)."""
    boto3.client("s3", region_name="eu-central-1").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    return boto3.client("iam", region_name="eu-central-1").create_role(
        RoleName="results", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": "arn:aws:iam::123456789012:role/job"}}]}))["Role"]["Arn"]


@mock_aws
def test_a_run_that_loads_a_model_may_read_that_file_and_only_it(demo_s3) -> None:
    # Given a run whose frozen snapshot resolved a `load_ml_model` to another job's model file
    from moto.sts.models import sts_backends

    access = AssumedRoleResults(results_role(), BUCKET, sts=boto3.client("sts", region_name="eu-central-1"),
                                make_s3=lambda **keys: boto3.client("s3", region_name="eu-central-1", **keys))
    model = "jobs/j-0/runs/r-9/results/model.json"
    snapshot = RunSnapshot({"process_graph": {"sum": {"process_id": "add", "arguments": {"x": 1, "y": 2},
                                                      "result": True}}}, ml_models={"j-0": {"key": model}})
    boto3.client("s3", region_name="eu-central-1").put_object(Bucket=BUCKET, Key=RUN.graph_key,
                                                              Body=json.dumps(snapshot.to_json()).encode())
    # When the engine runs it (input data through the process's own client, results through the run's session)
    settings = Settings(data_bucket="demo-data", results_bucket=BUCKET, status_queue_url="s", log_queue_url="l")
    code = run_job(RUN, settings, s3=demo_s3, publisher=EventPublisher(RecordingSQS(), "s", "l"),
                   rasters=RasterReader(), results=access)
    # Then it wrote its results, in a second session that may also read the model file, exactly
    assert code == EXIT_OK
    assert boto3.client("s3", region_name="eu-central-1").get_object(Bucket=BUCKET, Key=RUN.manifest_key)
    first, second = [json.loads(a.policy) for a in sts_backends["123456789012"]["aws"].assumed_roles]
    assert first == session_policy(BUCKET, run_scope(RUN))
    assert second == session_policy(BUCKET, run_scope(RUN), read_keys=[model])
    assert not demo_s3.path(BUCKET, RUN.manifest_key).exists()  # nothing went through the data client


@mock_aws
def test_a_run_assumes_the_results_role_with_its_session_policy_and_writes_its_folder() -> None:
    # Given the results bucket and role on moto
    from moto.sts.models import sts_backends

    role_arn = results_role()
    s3 = boto3.client("s3", region_name="eu-central-1")
    made = []

    def make_s3(**keys):
        made.append(keys)
        return boto3.client("s3", region_name="eu-central-1", **keys)

    access = AssumedRoleResults(role_arn, BUCKET, sts=boto3.client("sts", region_name="eu-central-1"),
                                make_s3=make_s3)
    # When a run gets its client and writes its manifest
    client = access.client(RUN, read_keys=["jobs/j-0/runs/r-9/results/model.json"])
    client.put_object(Bucket=BUCKET, Key=RUN.manifest_key, Body=b"{}")
    # Then the role was assumed for the job with the run's policy, for 15 minutes
    (assumed,) = sts_backends["123456789012"]["aws"].assumed_roles
    assert assumed.role_arn == role_arn and assumed.session_name == "stratus-j-1"
    assert json.loads(assumed.policy) == session_policy(BUCKET, "jobs/j-1/runs/r-1/",
                                                        read_keys=["jobs/j-0/runs/r-9/results/model.json"])
    lasts = assumed.expiration - datetime.now(UTC).replace(tzinfo=None)
    assert abs(lasts.total_seconds() - SESSION_DURATION_S) < 60
    # and the client signs with the session's key
    assert [(k["aws_access_key_id"], k["aws_session_token"]) for k in made] == [
        (assumed.access_key_id, assumed.session_token)]
    assert s3.get_object(Bucket=BUCKET, Key=RUN.manifest_key)["Body"].read() == b"{}"


def test_a_long_run_assumes_again_before_its_session_expires() -> None:
    # Given a session that expires in SESSION_DURATION_S and a clock the test moves
    now = [datetime(2026, 1, 1, tzinfo=UTC).timestamp()]
    sessions = []

    def assume():
        sessions.append(f"client-{len(sessions)}")
        return type("Client", (), {"name": sessions[-1]})(), now[0] + SESSION_DURATION_S

    client = ScopedResultsClient(assume, clock=lambda: now[0])
    # When the run goes on: within the session, then close to its end
    assert client.name == "client-0"
    now[0] += SESSION_DURATION_S - REFRESH_BEFORE_S - 1
    assert client.name == "client-0"
    now[0] += timedelta(seconds=2).total_seconds()
    # Then the next call uses a new session
    assert client.name == "client-1" and len(sessions) == 2
