"""Run-scoped credentials for the results bucket (docs/operations.md §5).

The Batch job role and the synchronous function hold no results-bucket grant of their own: they may only assume
their results role (`stratus.resources.RESULTS_ROLES`). A run assumes it with a session policy naming its own
folder (`run_scope`: the snapshot, the results, the tiles' records and outputs, the fan-out's plan, loads and
items) plus, read-only, what it legitimately reads of other runs: the exact model files its `load_ml_model`
calls were resolved to when the run was frozen (`RunSnapshot.ml_models`) and, for a restarted fan-out's
combine step, the previous run's results folder (its reused tiles' records). AWS allows the intersection of the
role's policy and the session policy, so a bug or a hostile graph driving the engine's results client cannot
write, or read, another job's files through it. The session name carries the job id (CloudTrail).

Without a role ARN (local runs, tests) the process's own client is used, as before.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from stratus.run_contract import RunConfig, RunSnapshot

# Seconds a run's session is valid (STS's minimum, 15 minutes): a leaked session key is short-lived. A longer
# run assumes the role again (`ScopedResultsClient`) once less than REFRESH_BEFORE_S is left.
SESSION_DURATION_S = 900
REFRESH_BEFORE_S = 300
# STS: a session name is 2-64 characters of [\w+=,.@-]; an inline session policy at most 2,048 characters.
_SESSION_NAME_MAX = 64
_SESSION_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]")
SESSION_POLICY_MAX_CHARS = 2048
# What the engine does in its own folder: reads (GetObject, also HeadObject), puts (multipart uploads included:
# CreateMultipartUpload, UploadPart and CompleteMultipartUpload are s3:PutObject) and aborts a failed upload.
# No delete: the engine never deletes (the status consumer and the API delete runs).
RUN_FOLDER_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload")


class SessionPolicyTooLarge(ValueError):
    """The run reads more foreign keys than an inline session policy can name."""


def run_scope(config: RunConfig) -> str:
    """The folder a run owns: the one its snapshot and results prefix share (`jobs/<job>/runs/<run>/` for a job
    run, `sync/<user>/<request>/` for a synchronous request)."""
    shared = ""
    for a, b in zip(config.graph_key, config.results_prefix):
        if a != b:
            break
        shared += a
    scope = shared[: shared.rfind("/") + 1]
    if scope.count("/") < 3:  # never a root such as "jobs/" or "sync/<user>/"
        raise ValueError(f"the run's snapshot {config.graph_key!r} and results {config.results_prefix!r} share no "
                         f"run folder")
    return scope


def model_keys(snapshot: RunSnapshot) -> tuple[str, ...]:
    """The results-bucket keys the run's `load_ml_model` calls read (resolved when the run was frozen)."""
    return tuple(sorted({str(r["key"]) for r in snapshot.ml_models.values() if "key" in r}))


def reading_models(access: ResultsAccess, config: RunConfig, snapshot: RunSnapshot, current: Any, *,
                   read_prefixes: Iterable[str] = ()) -> Any:
    """`current` (the run's client, which read the snapshot), or when the snapshot names model files a client
    that may also read those: they are known only once the snapshot is read."""
    keys = model_keys(snapshot)
    return access.client(config, read_keys=keys, read_prefixes=read_prefixes) if keys else current


def session_name(job_id: str) -> str:
    """`stratus-<job id>` as STS allows it (CloudTrail shows it beside the role)."""
    return _SESSION_NAME_UNSAFE.sub("-", f"stratus-{job_id}")[:_SESSION_NAME_MAX]


def session_policy(bucket: str, scope: str, *, read_keys: Iterable[str] = (), read_prefixes: Iterable[str] = (),
                   partition: str = "aws") -> dict[str, Any]:
    """The session policy of one run: read and write `scope`, read `read_keys` exactly and the objects under
    `read_prefixes`, and list only under those (listing also makes a missing key answer 404, not 403)."""
    if not scope.endswith("/") or "*" in scope:
        raise ValueError(f"a run's scope is a folder without wildcards: {scope!r}")
    read_keys, read_prefixes = sorted(set(read_keys)), sorted(set(read_prefixes))
    if any("*" in k or "?" in k for k in (*read_keys, *read_prefixes)) or any(not p.endswith("/")
                                                                            for p in read_prefixes):
        raise ValueError("foreign reads are exact keys or folders, without wildcards")
    objects = f"arn:{partition}:s3:::{bucket}/"
    statements: list[dict[str, Any]] = [
        {"Sid": "RunFolder", "Effect": "Allow", "Action": list(RUN_FOLDER_ACTIONS), "Resource": f"{objects}{scope}*"},
    ]
    foreign = [f"{objects}{key}" for key in read_keys] + [f"{objects}{prefix}*" for prefix in read_prefixes]
    if foreign:
        statements.append({"Sid": "ReadOnly", "Effect": "Allow", "Action": "s3:GetObject", "Resource": foreign})
    # `IfExists`: S3 answers a GetObject of a missing key 404 only to a caller allowed to list the bucket, and its
    # docs do not say which s3:prefix (if any) that check sees; the engine reads "missing" as None (optional
    # documents, tiles without a record). A listing naming another folder is refused.
    statements.append({"Sid": "ListRunFolder", "Effect": "Allow", "Action": "s3:ListBucket",
                       "Resource": f"arn:{partition}:s3:::{bucket}",
                       "Condition": {"StringLikeIfExists": {"s3:prefix": [f"{scope}*",
                                                                          *(f"{p}*" for p in read_prefixes)]}}})
    return {"Version": "2012-10-17", "Statement": statements}


def packed(policy: Mapping[str, Any]) -> str:
    text = json.dumps(policy, separators=(",", ":"))
    if len(text) > SESSION_POLICY_MAX_CHARS:
        raise SessionPolicyTooLarge(f"the run's session policy has {len(text)} characters, STS takes "
                                    f"{SESSION_POLICY_MAX_CHARS}")
    return text


class ResultsAccess(Protocol):
    """How a run gets its results-bucket client."""

    def client(self, config: RunConfig, *, read_keys: Iterable[str] = (), read_prefixes: Iterable[str] = ()) -> Any:
        """A client for the run's folder (and, read-only, `read_keys` and `read_prefixes`)."""


class SharedResults:
    """The process's own client for every run (no results role configured: local runs, tests)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def client(self, config: RunConfig, *, read_keys: Iterable[str] = (), read_prefixes: Iterable[str] = ()) -> Any:
        return self._s3


class AssumedRoleResults:
    """Assumes `role_arn` once per `client` call with the run's session policy.

    :param sts: An STS client of the process's own credentials.
    :param make_s3: Builds an S3 client from `aws_access_key_id`, `aws_secret_access_key` and
        `aws_session_token` keyword arguments (`stratus.aws.client_with_credentials`: the process's boto3
        session, ~5 ms a client, against ~100 ms for a new session).
    """

    def __init__(self, role_arn: str, bucket: str, *, sts: Any, make_s3: Callable[..., Any],
                 clock: Callable[[], float] = time.time) -> None:
        self.role_arn = role_arn
        self.bucket = bucket
        self._sts = sts
        self._make_s3 = make_s3
        self._clock = clock
        self._partition = role_arn.split(":")[1] if role_arn.count(":") >= 5 else "aws"

    def client(self, config: RunConfig, *, read_keys: Iterable[str] = (), read_prefixes: Iterable[str] = ()) -> Any:
        policy = packed(session_policy(self.bucket, run_scope(config), read_keys=read_keys,
                                       read_prefixes=read_prefixes, partition=self._partition))
        return ScopedResultsClient(lambda: self._assume(policy, session_name(config.job_id)), self._clock)

    def _assume(self, policy: str, name: str) -> tuple[Any, float]:
        credentials = self._sts.assume_role(RoleArn=self.role_arn, RoleSessionName=name, Policy=policy,
                                            DurationSeconds=SESSION_DURATION_S)["Credentials"]
        s3 = self._make_s3(aws_access_key_id=credentials["AccessKeyId"],
                           aws_secret_access_key=credentials["SecretAccessKey"],
                           aws_session_token=credentials["SessionToken"])
        return s3, credentials["Expiration"].timestamp()


class ScopedResultsClient:
    """Stands in for an S3 client of a run's session, assumed again before it expires (a Batch run may take
    hours; sessions last SESSION_DURATION_S)."""

    def __init__(self, assume: Callable[[], tuple[Any, float]], clock: Callable[[], float] = time.time) -> None:
        self._assume = assume
        self._clock = clock
        self._lock = threading.Lock()  # tiles read and write from threads
        self._s3, self._expires = assume()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current(), name)

    def _current(self) -> Any:
        with self._lock:
            if self._expires - self._clock() < REFRESH_BEFORE_S:
                self._s3, self._expires = self._assume()
            return self._s3


def results_access(settings: Any, s3: Any) -> ResultsAccess:
    """The run's way to the results bucket: a session of its results role when `settings.results_role_arn` is
    set, else the process's client `s3`."""
    if not settings.results_role_arn:
        return SharedResults(s3)
    from stratus import aws

    return AssumedRoleResults(settings.results_role_arn, settings.results_bucket, sts=aws.client("sts"),
                              make_s3=lambda **keys: aws.client_with_credentials("s3", **keys))
