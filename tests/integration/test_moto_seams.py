"""The moto seams against a real (threaded, in-process) moto server, driven with boto3.

Run: PYTHONPATH=local .venv/bin/pytest tests/integration/test_moto_seams.py
"""

from __future__ import annotations

import io
import json
import os
import statistics
import threading
import time
import uuid
import zipfile
from typing import Any
from wsgiref.util import setup_testing_defaults

import boto3
import pytest
import requests
from botocore.config import Config

from stratus_local import moto_seams as ms

from tests.integration.seamed_moto import LocalBatch, clients_of, seamed_moto_server

REGION = "eu-central-1"
ACCOUNT = "123456789012"
FAST = Config(retries={"max_attempts": 1, "mode": "standard"})


# --------------------------------------------------------------------------------------
# Handlers the Lambda resolver hands out, and the Batch runner
# --------------------------------------------------------------------------------------


class ProcessingFailed(Exception):
    pass


def echo_handler(event: Any, context: Any) -> dict:
    return {
        "got": event,
        "greeting": os.environ.get("GREETING"),
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 30_000,
    }


def failing_handler(event: Any, context: Any) -> dict:
    raise ProcessingFailed(f"cannot process {event.get('what')}")


CALLBACK_ATTEMPTS: dict[str, int] = {}


def callback_handler(event: Any, context: Any) -> None:
    """Answers its own .waitForTaskToken task (inline, or from a thread after a delay):
    failure on the first attempt, success on the next."""
    sfn = boto3.client("stepfunctions")
    attempt = CALLBACK_ATTEMPTS[event["key"]] = CALLBACK_ATTEMPTS.get(event["key"], 0) + 1

    def answer() -> None:
        time.sleep(event["delay"])
        if attempt == 1:
            sfn.send_task_failure(taskToken=event["token"], error="Flaky", cause="first attempt")
        else:
            sfn.send_task_success(taskToken=event["token"], output=json.dumps({"attempt": attempt}))

    if event["delay"]:
        threading.Thread(target=answer, daemon=True).start()
    else:
        answer()


HANDLERS = {"app.echo": echo_handler, "app.fail": failing_handler, "app.callback": callback_handler}
RESOLVED: list[ms.LambdaFunctionInfo] = []


def resolve(info: ms.LambdaFunctionInfo):
    RESOLVED.append(info)
    return HANDLERS[info.handler]


BATCH = LocalBatch()
PROCS, SPECS = BATCH.procs, BATCH.specs


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url():
    with seamed_moto_server(resolve, BATCH, region=REGION, kill_grace_s=2.0) as url:
        yield url


@pytest.fixture
def aws(moto_url, monkeypatch):
    return clients_of(moto_url, monkeypatch, region=REGION, config=FAST)


@pytest.fixture(scope="module")
def role_arn(moto_url):
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_url)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"},
                                                       "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName="seams-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


@pytest.fixture(scope="module")
def batch_env(moto_url, role_arn):
    """Compute environment + queue + job definition created through the Batch API on moto."""
    batch = boto3.client("batch", region_name=REGION, endpoint_url=moto_url)
    ce = batch.create_compute_environment(computeEnvironmentName="seams-ce", type="UNMANAGED", serviceRole=role_arn)
    order = [{"order": 1, "computeEnvironment": ce["computeEnvironmentArn"]}]
    queue = batch.create_job_queue(jobQueueName="seams-q", priority=1, state="ENABLED", computeEnvironmentOrder=order)
    write_env = (
        "import json, os, sys; "
        "json.dump(dict(os.environ), open(os.environ['OUT_FILE'], 'w')); "
        "print('wrote', os.environ['OUT_FILE']); sys.exit(int(os.environ.get('EXIT_WITH', '0')))"
    )
    jd = batch.register_job_definition(
        jobDefinitionName="seams-jd",
        type="container",
        containerProperties={
            "image": "stratus/processing:local",
            "command": ["python", "-c", write_env],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": [{"name": "FROM_JD", "value": "jd"}, {"name": "BOTH", "value": "jd"}],
        },
    )
    return {"queue": queue["jobQueueArn"], "jd": jd["jobDefinitionArn"]}


def _create_function(lam, role_arn: str, name: str, handler: str, env: dict | None = None) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "# code runs in-process through the seam\n")
    return lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=role_arn, Handler=handler, Code={"ZipFile": buf.getvalue()},
        Timeout=30, MemorySize=256, Environment={"Variables": env or {}},
    )["FunctionArn"]


def _machine(sfn, definition: dict) -> str:
    return sfn.create_state_machine(
        name=f"m-{uuid.uuid4().hex[:10]}", definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
    )["stateMachineArn"]


def _run(sfn, machine_arn: str, payload: dict, timeout_s: float = 20.0) -> dict:
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name=f"e-{uuid.uuid4().hex}",
                                        input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError(f"execution still running after {timeout_s}s")


def _wait_job(batch, job_id: str, statuses: set[str], timeout_s: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if job["status"] in statuses:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not in {statuses}: {job['status']}")


def _sync_task(queue: str, jd: str, environment: list[dict] | None = None, command: list[str] | None = None) -> dict:
    overrides: dict[str, Any] = {}
    if environment is not None:
        overrides["Environment"] = environment
    if command is not None:
        overrides["Command"] = command
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": {"JobName.$": "$.job_name", "JobQueue": queue, "JobDefinition": jd,
                       "ContainerOverrides": overrides},
    }


# --------------------------------------------------------------------------------------
# (a) Lambda
# --------------------------------------------------------------------------------------


def test_lambda_invoke_task_runs_the_resolved_handler(aws, role_arn):
    lam, sfn = aws("lambda"), aws("stepfunctions")
    arn = _create_function(lam, role_arn, "seams-echo", "app.echo", {"GREETING": "hello"})
    machine = _machine(sfn, {
        "StartAt": "Echo",
        "States": {"Echo": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": arn, "Payload": {"x.$": "$.x"}},
            "ResultSelector": {"out.$": "$.Payload"}, "End": True,
        }},
    })
    assert "GREETING" not in os.environ
    result = _run(sfn, machine, {"x": 42})
    assert result["status"] == "SUCCEEDED", result
    out = json.loads(result["output"])["out"]
    assert out["got"] == {"x": 42}
    assert out["greeting"] == "hello"  # the function's environment was visible during the call
    assert out["function_name"] == "seams-echo" and out["memory"] == 256 and out["arn"] == arn
    assert out["remaining_ok"] is True and out["request_id"]
    assert "GREETING" not in os.environ  # ... and removed afterwards
    info = next(i for i in RESOLVED if i.function_name == "seams-echo")
    assert info.handler == "app.echo" and info.environment == {"GREETING": "hello"} and info.region == REGION

    # plain boto3 Invoke goes through the same seam
    direct = lam.invoke(FunctionName="seams-echo", Payload=json.dumps({"y": 1}))
    assert "FunctionError" not in direct
    assert json.loads(direct["Payload"].read())["got"] == {"y": 1}


def test_raising_handler_is_caught_by_its_class_name(aws, role_arn):
    lam, sfn = aws("lambda"), aws("stepfunctions")
    arn = _create_function(lam, role_arn, "seams-fail", "app.fail")
    machine = _machine(sfn, {
        "StartAt": "Fail",
        "States": {
            "Fail": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {"what.$": "$.what"}},
                "Catch": [{"ErrorEquals": ["ProcessingFailed"], "ResultPath": "$.error", "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    })
    result = _run(sfn, machine, {"what": "tile-7"})
    assert result["status"] == "SUCCEEDED", result
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "ProcessingFailed"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "ProcessingFailed"
    assert cause["errorMessage"] == "cannot process tile-7"
    assert any("failing_handler" in line for line in cause["stackTrace"])

    direct = lam.invoke(FunctionName="seams-fail", Payload=b"{}")
    assert direct["FunctionError"]
    assert json.loads(direct["Payload"].read())["errorType"] == "ProcessingFailed"


# --------------------------------------------------------------------------------------
# (b) Batch .sync
# --------------------------------------------------------------------------------------


def test_batch_sync_task_runs_the_process_with_merged_environment(aws, batch_env, tmp_path):
    sfn, batch = aws("stepfunctions"), aws("batch")
    out_file = tmp_path / "env.json"
    task = _sync_task(batch_env["queue"], batch_env["jd"], environment=[
        {"Name": "FROM_OVERRIDE", "Value": "ov"},
        {"Name": "BOTH", "Value": "ov"},
        {"Name": "OUT_FILE", "Value.$": "$.out"},
    ])
    task.update({"ResultSelector": {"job_id.$": "$.JobId", "status.$": "$.Status",
                                    "exit_code.$": "$.Container.ExitCode"}, "End": True})
    machine = _machine(sfn, {"StartAt": "Run", "States": {"Run": task}})

    result = _run(sfn, machine, {"job_name": "env-job", "out": str(out_file)})
    assert result["status"] == "SUCCEEDED", result
    out = json.loads(result["output"])
    assert out["status"] == "SUCCEEDED" and out["exit_code"] == 0

    env = json.loads(out_file.read_text())
    assert env["FROM_JD"] == "jd" and env["FROM_OVERRIDE"] == "ov" and env["BOTH"] == "ov"
    assert env["AWS_BATCH_JOB_ID"] == out["job_id"]
    assert env["MANAGED_BY_AWS"] == "STARTED_BY_STEP_FUNCTIONS"  # what SFN adds for .sync
    assert SPECS[out["job_id"]].job_name == "env-job"

    # The job was polled several times: each variable is still listed exactly once.
    for _ in range(3):
        job = batch.describe_jobs(jobs=[out["job_id"]])["jobs"][0]
    names = [e["name"] for e in job["container"]["environment"]]
    assert sorted(names) == sorted(set(names)), names
    assert {"FROM_JD", "FROM_OVERRIDE", "BOTH", "OUT_FILE", "AWS_BATCH_JOB_ID"} <= set(names)
    assert {e["name"]: e["value"] for e in job["container"]["environment"]}["BOTH"] == "ov"
    assert job["status"] == "SUCCEEDED" and job["container"]["exitCode"] == 0

    # piped output went to CloudWatch Logs like Batch's awslogs driver
    events = aws("logs").get_log_events(logGroupName="/aws/batch/job",
                                        logStreamName=job["container"]["logStreamName"])["events"]
    assert any("wrote" in e["message"] for e in events)


def test_batch_sync_task_wakes_when_its_job_stops(aws, batch_env, monkeypatch):
    # no fallback describe within the run: only the stop of the job can end the wait
    monkeypatch.setattr(ms, "BATCH_SYNC_FALLBACK_POLL_S", 600.0)
    sfn = aws("stepfunctions")
    task = _sync_task(batch_env["queue"], batch_env["jd"], command=["python", "-c", "import time; time.sleep(0.3)"])
    task.update({"ResultSelector": {"status.$": "$.Status"}, "End": True})
    machine = _machine(sfn, {"StartAt": "Run", "States": {"Run": task}})

    result = _run(sfn, machine, {"job_name": "wake-job"})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"status": "SUCCEEDED"}


def test_a_waiting_sync_task_wakes_for_its_own_jobs_stop_and_for_any_executions_end():
    signal = ms._StopSignal()
    seen = signal.seen("job-a")
    signal.notify("job-b")
    assert signal.seen("job-a") == seen  # another job's stop leaves job-a's waiter asleep
    waiter = threading.Thread(target=signal.wait_past, args=(seen, "job-a", 30.0))
    waiter.start()
    signal.notify("job-c")
    waiter.join(0.2)
    assert waiter.is_alive()
    signal.notify("job-a")
    waiter.join(5)
    assert not waiter.is_alive()
    seen = signal.seen("job-a")
    signal.notify()  # an execution stopped, failed or timed out: it may be the waiter's own
    assert signal.seen("job-a") != seen
    seen_any = signal.seen(None)  # a resolver whose job id is unknown wakes on every job's stop
    signal.notify("job-d")
    assert signal.seen(None) != seen_any


def test_the_stops_of_jobs_nobody_waits_for_are_not_kept_forever(monkeypatch):
    monkeypatch.setattr(ms, "_STOPS_KEPT", 3)
    signal = ms._StopSignal()
    for index in range(10):
        signal.notify(f"job-{index}")
    assert signal.seen("job-9")[1] == 1 and signal.seen("job-0")[1] == 0  # the oldest went first
    assert sum(signal.seen(f"job-{index}")[1] for index in range(10)) == 3


def test_the_sync_resolver_of_moto_describes_the_job_id_the_seam_waits_for():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
        StateTaskServiceBatch,
    )

    resolvers = [const for const in StateTaskServiceBatch._build_sync_resolver.__code__.co_consts
                 if getattr(const, "co_name", None) == "_sync_resolver"]
    assert resolvers and "job_id" in resolvers[0].co_freevars, "moto's resolver no longer closes over job_id"

    def built_like_moto(job_id: str):
        def _sync_resolver() -> str:
            return job_id
        return _sync_resolver

    assert ms._resolved_job_id(built_like_moto("b3a1-job")) == "b3a1-job"
    assert ms._resolved_job_id(lambda: None) is None


def test_failing_batch_process_takes_the_catch_path(aws, batch_env, tmp_path):
    sfn = aws("stepfunctions")
    task = _sync_task(batch_env["queue"], batch_env["jd"], environment=[
        {"Name": "OUT_FILE", "Value.$": "$.out"}, {"Name": "EXIT_WITH", "Value": "3"},
    ])
    task.update({"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkError"}],
                 "Next": "Done"})
    machine = _machine(sfn, {"StartAt": "Run", "States": {
        "Run": task,
        "Done": {"Type": "Succeed"},
        "MarkError": {"Type": "Pass", "Result": "error-marked", "ResultPath": "$.marked", "End": True},
    }})
    result = _run(sfn, machine, {"job_name": "exit-3", "out": str(tmp_path / "e.json")})
    assert result["status"] == "SUCCEEDED", result
    out = json.loads(result["output"])
    assert out["marked"] == "error-marked"
    assert out["error"]["Error"] == "States.TaskFailed"
    cause = json.loads(out["error"]["Cause"])
    assert cause["Status"] == "FAILED"
    assert cause["Container"]["ExitCode"] == 3
    assert cause["StatusReason"] == ms.REASON_EXITED
    assert "FAILED" in out["error"]["Cause"] and '"ExitCode":3' in out["error"]["Cause"].replace(" ", "")


# --------------------------------------------------------------------------------------
# (c) TerminateJob / attemptDurationSeconds
# --------------------------------------------------------------------------------------


def test_terminate_kills_a_running_job(aws, batch_env):
    batch = aws("batch")
    job_id = batch.submit_job(jobName="sleeper", jobQueue=batch_env["queue"], jobDefinition=batch_env["jd"],
                              containerOverrides={"command": ["python", "-c", "import time; time.sleep(60)"]})["jobId"]
    _wait_job(batch, job_id, {"RUNNING"})
    proc = PROCS[job_id]
    assert proc.poll() is None

    started = time.monotonic()
    batch.terminate_job(jobId=job_id, reason="user asked")
    job = _wait_job(batch, job_id, {"FAILED", "SUCCEEDED"})
    elapsed = time.monotonic() - started
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "user asked"
    assert job["container"]["exitCode"] == 128 + 15  # SIGTERM, reported like Docker
    assert proc.poll() is not None
    assert elapsed < 2.0, elapsed


def test_attempt_duration_timeout_fails_the_job(aws, batch_env):
    batch = aws("batch")
    job_id = batch.submit_job(jobName="too-slow", jobQueue=batch_env["queue"], jobDefinition=batch_env["jd"],
                              timeout={"attemptDurationSeconds": 1},
                              containerOverrides={"command": ["python", "-c", "import time; time.sleep(60)"]})["jobId"]
    job = _wait_job(batch, job_id, {"FAILED", "SUCCEEDED"}, timeout_s=6)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == ms.REASON_TIMEOUT
    assert PROCS[job_id].poll() is not None


def test_cancel_before_start_and_no_op_once_running(aws, batch_env):
    batch = aws("batch")
    # a job waiting on a dependency stays PENDING, so CancelJob applies (as on AWS)
    blocker = batch.submit_job(jobName="blocker", jobQueue=batch_env["queue"], jobDefinition=batch_env["jd"],
                               containerOverrides={"command": ["python", "-c", "import time; time.sleep(60)"]})["jobId"]
    waiting = batch.submit_job(jobName="waiting", jobQueue=batch_env["queue"], jobDefinition=batch_env["jd"],
                               dependsOn=[{"jobId": blocker}])["jobId"]
    assert _wait_job(batch, waiting, {"PENDING"})["status"] == "PENDING"
    batch.cancel_job(jobId=waiting, reason="not needed")
    job = _wait_job(batch, waiting, {"FAILED"}, timeout_s=5)
    assert job["statusReason"] == "not needed" and waiting not in PROCS

    _wait_job(batch, blocker, {"RUNNING"})
    batch.cancel_job(jobId=blocker, reason="too late")  # RUNNING jobs need TerminateJob
    time.sleep(0.2)
    assert batch.describe_jobs(jobs=[blocker])["jobs"][0]["status"] == "RUNNING"
    batch.terminate_job(jobId=blocker, reason="cleanup")
    _wait_job(batch, blocker, {"FAILED"})


# --------------------------------------------------------------------------------------
# (d) Retry of a .sync task
# --------------------------------------------------------------------------------------


def test_retry_of_a_sync_task_retries(aws, batch_env, tmp_path):
    sfn = aws("stepfunctions")
    marker = tmp_path / "first-attempt-done"
    fail_once = (
        "import os, pathlib, sys; p = pathlib.Path(os.environ['MARKER']); "
        "first = not p.exists(); p.touch(); sys.exit(7 if first else 0)"
    )
    task = _sync_task(batch_env["queue"], batch_env["jd"],
                      environment=[{"Name": "MARKER", "Value.$": "$.marker"}],
                      command=["python", "-c", fail_once])
    task.update({
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
        "ResultSelector": {"job_id.$": "$.JobId", "status.$": "$.Status"}, "End": True,
    })
    machine = _machine(sfn, {"StartAt": "Run", "States": {"Run": task}})
    result = _run(sfn, machine, {"job_name": "fail-once", "marker": str(marker)})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["status"] == "SUCCEEDED"

    history = sfn.get_execution_history(executionArn=result["executionArn"])["events"]
    failed = [e for e in history if e["type"] == "TaskFailed"]
    assert len(failed) == 1 and failed[0]["taskFailedEventDetails"]["error"] == "States.TaskFailed"
    assert sum(e["type"] == "TaskSubmitted" for e in history) == 2
    jobs = [s for s in SPECS.values() if s.job_name == "fail-once"]
    assert len(jobs) == 2


@pytest.mark.parametrize("delay", [0, 0.3], ids=["answer-inline", "answer-later"])
def test_retry_of_a_wait_for_task_token_task_gets_a_fresh_token(aws, role_arn, delay):
    # answer-later: without the fix the retry reuses the answered endpoint and fails at once.
    # answer-inline: the answer arrives before the interpreter waits; it must not be wiped.
    lam, sfn = aws("lambda"), aws("stepfunctions")
    name = f"seams-callback-{uuid.uuid4().hex[:6]}"
    arn = _create_function(lam, role_arn, name, "app.callback")
    machine = _machine(sfn, {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": arn,
                       "Payload": {"token.$": "$$.Task.Token", "key.$": "$.key", "delay.$": "$.delay"}},
        "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "TimeoutSeconds": 10, "End": True,
    }}})
    result = _run(sfn, machine, {"key": name, "delay": delay})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"attempt": 2}


def test_env_overlay_restores_and_nests(monkeypatch):
    monkeypatch.setenv("SEAM_A", "outer")
    monkeypatch.delenv("SEAM_B", raising=False)
    overlay = ms._EnvOverlay()
    with overlay.applied({"SEAM_A": "one", "SEAM_B": "one"}):
        with overlay.applied({"SEAM_B": "two"}):
            assert os.environ["SEAM_B"] == "two" and os.environ["SEAM_A"] == "one"
        assert os.environ["SEAM_B"] == "one"
    assert os.environ["SEAM_A"] == "outer" and "SEAM_B" not in os.environ


# --------------------------------------------------------------------------------------
# (e) Presigned URL expiry
# --------------------------------------------------------------------------------------


def test_presigned_get_expires(aws):
    s3 = aws("s3", config=Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="seams-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="seams-bucket", Key="a.txt", Body=b"hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "seams-bucket", "Key": "a.txt"}, ExpiresIn=1)
    assert "X-Amz-Expires=1" in url

    ok = requests.get(url, timeout=5)
    assert ok.status_code == 200 and ok.content == b"hello"

    time.sleep(2.1)  # X-Amz-Date has one-second resolution
    expired = requests.get(url, timeout=5)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text
    assert "<Message>Request has expired</Message>" in expired.text


def _moto_only(environ: dict, start_response) -> list[bytes]:
    start_response("599 Moto", [])
    return [b"moto"]


def _ranged_get(url: str, path: str, range_header: str, **headers: str) -> requests.Response:
    """A GET signed the way GDAL and boto3 sign for S3 (the middleware reads the credential scope only)."""
    auth = (f"AWS4-HMAC-SHA256 Credential=testing/20261204/{REGION}/s3/aws4_request, "
            "SignedHeaders=host;range, Signature=00")
    return requests.get(f"{url}{path}", headers={"Range": range_header, "Authorization": auth, **headers}, timeout=10)


def test_a_ranged_get_of_an_object_is_answered_as_moto_answers_it(aws, moto_url):
    s3 = aws("s3")
    s3.create_bucket(Bucket="seams-ranges", CreateBucketConfiguration={"LocationConstraint": REGION})
    body = os.urandom(3 << 20)
    s3.put_object(Bucket="seams-ranges", Key="data/t1/B04.tif", Body=body, ContentType="image/tiff; application=geotiff",
                  Metadata={"source": "seams"})
    served = _ranged_get(moto_url, "/seams-ranges/data/t1/B04.tif", "bytes=1000-17383")
    assert served.status_code == 206 and served.content == body[1000:17384]
    # the same request through moto's own app (the same store, in this process): the same status, bytes, headers
    from moto.moto_server.threaded_moto_server import create_backend_app
    from werkzeug.test import Client

    moto_app = Client(ms._caching_dispatcher_class()(create_backend_app))
    by_moto = moto_app.get("/seams-ranges/data/t1/B04.tif", headers={
        "Host": moto_url.split("//", 1)[1], "Range": "bytes=1000-17383",
        "Authorization": served.request.headers["Authorization"]})
    assert by_moto.status_code == 206 and by_moto.data == served.content
    transport = {"date", "server", "x-amzn-requestid", "access-control-allow-origin", "connection"}
    theirs = {k.lower(): v for k, v in by_moto.headers.items() if k.lower() not in transport}
    ours = {k.lower(): v for k, v in served.headers.items() if k.lower() not in transport}
    assert ours == theirs and ours["content-range"] == f"bytes 1000-17383/{len(body)}"
    # and it was the middleware that answered: in front of an app that is not moto, the object is still served
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/seams-ranges/data/t1/B04.tif", "QUERY_STRING": "",
               "HTTP_HOST": moto_url.split("//", 1)[1], "HTTP_RANGE": "bytes=1000-17383",
               "HTTP_AUTHORIZATION": served.request.headers["Authorization"]}
    seen: dict = {}
    answer = b"".join(ms.S3RangedReads(_moto_only)(environ, lambda status, headers: seen.update(status=status)))
    assert seen["status"] == "206 Partial Content" and answer == body[1000:17384]
    # boto3 reads through it too; a range past the end is cut at the end, as S3 does
    tail = s3.get_object(Bucket="seams-ranges", Key="data/t1/B04.tif", Range=f"bytes={len(body) - 10}-{len(body) + 99}")
    assert tail["Body"].read() == body[-10:] and tail["ContentRange"] == f"bytes {len(body) - 10}-{len(body) - 1}/{len(body)}"


def test_every_other_get_is_left_to_moto():
    ranged = ms.S3RangedReads(_moto_only)
    auth = f"AWS4-HMAC-SHA256 Credential=testing/20261204/{REGION}/s3/aws4_request, SignedHeaders=host, Signature=0"

    def status(path: str = "/b/k.tif", method: str = "GET", query: str = "", **headers: str) -> str:
        environ: dict = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                         "HTTP_HOST": "127.0.0.1:5000", "HTTP_RANGE": "bytes=0-9", "HTTP_AUTHORIZATION": auth}
        environ.update(headers)
        seen: dict = {}
        list(ranged(environ, lambda s, h: seen.setdefault("status", s)))
        return seen["status"]

    assert status() == "599 Moto"  # no such bucket: moto's NoSuchBucket
    assert status(HTTP_RANGE="bytes=-100") == "599 Moto"  # a suffix range
    assert status(HTTP_RANGE="bytes=0-9,20-29") == "599 Moto"
    assert status(HTTP_RANGE="bytes=9-0") == "599 Moto"  # moto says what S3 makes of a reversed range
    assert status(method="HEAD") == "599 Moto"
    assert status(query="versionId=3") == "599 Moto"
    assert status(query="X-Amz-Expires=60") == "599 Moto"  # presigned: the guard and moto check it
    assert status(HTTP_IF_NONE_MATCH='"abc"') == "599 Moto"
    assert status(HTTP_ORIGIN="https://editor.openeo.org") == "599 Moto"
    assert status(HTTP_HOST="b.s3.localhost:5000") == "599 Moto"  # virtual-hosted style
    assert status(path="/b/na%C3%AFve key.tif") == "599 Moto"
    assert status(HTTP_AUTHORIZATION=auth.replace("/s3/", "/sqs/")) == "599 Moto"


def _call(app, query: str, method: str = "GET") -> tuple[str, bytes]:
    environ: dict = {"REQUEST_METHOD": method, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    seen: dict = {}

    def start_response(status, headers):
        seen["status"] = status

    body = b"".join(app(environ, start_response))
    return seen["status"], body


def test_presign_guard_unit_cases():
    inner = lambda environ, start_response: (start_response("200 OK", []), [b"inner"])[1]  # noqa: E731
    now = 1_700_000_000.0
    guard = ms.expiring_presign_guard(inner, clock=lambda: now)
    assert ms.expiring_presign_guard(guard) is guard  # idempotent
    signed = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 10))
    assert _call(guard, f"X-Amz-Date={signed}&X-Amz-Expires=60")[0] == "200 OK"
    status, body = _call(guard, f"X-Amz-Date={signed}&X-Amz-Expires=5")
    assert status.startswith("403") and b"Request has expired" in body
    assert _call(guard, f"X-Amz-Date={signed}&X-Amz-Expires=5", "OPTIONS")[0] == "200 OK"  # CORS preflight
    assert _call(guard, f"X-Amz-Date={signed}&X-Amz-Expires=604801")[0].startswith("400")
    assert _call(guard, f"AWSAccessKeyId=x&Signature=y&Expires={int(now) - 1}")[0].startswith("403")
    assert _call(guard, f"AWSAccessKeyId=x&Signature=y&Expires={int(now) + 60}")[0] == "200 OK"
    assert _call(guard, "Expires=1")[0] == "200 OK"  # not a presigned query
    assert _call(guard, "")[0] == "200 OK"


# --------------------------------------------------------------------------------------
# (f) Loud breaks on a moto upgrade, idempotency
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seam", sorted(ms.MOTO_INTERNALS))
def test_moto_internals_used_by_the_seams_exist(seam):
    assert ms.missing_moto_internals(seam) == [], (
        f"moto {__import__('moto').__version__} changed internals used by the {seam!r} seam "
        f"(written against {ms.PINNED_MOTO_VERSION}); re-check local/stratus_local/moto_seams.py"
    )


def test_the_servers_dispatcher_remembers_the_backend_of_each_host(monkeypatch):
    from moto.moto_server import threaded_moto_server as tms
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    hosts = ["s3.eu-central-1.amazonaws.com", "sqs.eu-central-1.amazonaws.com", "states.eu-central-1.amazonaws.com",
             "batch.eu-central-1.amazonaws.com", "dynamodb.eu-central-1.amazonaws.com", "moto_api", None, "s3",
             "nothing.example.org"]
    expected = [DomainDispatcherApplication(tms.create_backend_app).get_backend_for_host(h) for h in hosts]
    dispatcher = ms._caching_dispatcher_class()(tms.create_backend_app)
    # The server's dispatcher finds the backend moto's own finds, for every host
    assert [dispatcher.get_backend_for_host(h) for h in hosts] == expected
    assert expected[0] == "s3" and expected[1] == "sqs"
    # And asked again, it does not work it out again
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host",
                        lambda self, host: pytest.fail(f"worked out again for {host}"))
    assert [dispatcher.get_backend_for_host(h) for h in hosts] == expected


def test_seams_are_installed_once(moto_url):
    from moto.awslambda.models import LambdaFunction
    from moto.batch.models import Job
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as sfn_batch,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as sfn_callback,
    )

    ms.install_lambda_seam(resolve)
    ms.install_batch_seam(BATCH)
    ms.enable_stepfunctions_execution()
    assert LambdaFunction._invoke_lambda is ms._seam_invoke_lambda
    assert Job.run is ms._seam_job_run
    original_run = ms._originals[(Job, "run")]
    assert original_run is not ms._seam_job_run and original_run.__module__ == "moto.batch.models"
    assert sfn_batch.StateTaskServiceBatch._normalise_parameters is ms._batch_normalise_parameters
    assert getattr(sfn_callback.StateTaskServiceCallback._eval_execution, "__stratus_seam__", False)
    assert sfn_batch.StateTaskServiceBatch._eval_sync is ms._batch_eval_sync
    assert sfn_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.1


# --------------------------------------------------------------------------------------
# Timing (printed, not asserted)
# --------------------------------------------------------------------------------------


def test_measure_five_state_execution(aws, batch_env, role_arn, capsys):
    lam, sfn = aws("lambda"), aws("stepfunctions")
    arn = _create_function(lam, role_arn, "seams-timing", "app.echo")
    machine = _machine(sfn, {
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Result": "x", "ResultPath": "$.p", "Next": "Prepare"},
            "Prepare": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": arn, "Payload": {"a": 1}}, "ResultPath": "$.prep",
                        "Next": "Run"},
            "Run": {**_sync_task(batch_env["queue"], batch_env["jd"], command=["python", "-c", "pass"]),
                    "ResultSelector": {"status.$": "$.Status"}, "ResultPath": "$.batch", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.batch.status", "StringEquals": "SUCCEEDED",
                                                      "Next": "Done"}], "Default": "Done"},
            "Done": {"Type": "Succeed"},
        },
    })
    durations = []
    for i in range(5):
        t0 = time.monotonic()
        result = _run(sfn, machine, {"job_name": f"timing-{i}"})
        durations.append(time.monotonic() - t0)
        assert result["status"] == "SUCCEEDED", result
    with capsys.disabled():
        print(f"\n5-state execution (Pass, lambda:invoke, batch .sync `python -c pass`, Choice, Succeed): "
              f"median {statistics.median(durations):.3f}s, min {min(durations):.3f}s, max {max(durations):.3f}s")
