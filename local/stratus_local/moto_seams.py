"""Seams that make an in-process moto 5.2.5 run serverless code without Docker.

Generic: nothing here knows about Stratus.  Every seam replaces or wraps one
*internal* name of moto (moto has no public extension points for this), so the
module is pinned to ``moto==5.2.5``; :data:`MOTO_INTERNALS` lists every name
touched and :func:`missing_moto_internals` lets a test fail loudly on upgrade.

Public API
----------
- :func:`enable_stepfunctions_execution` - let Step Functions run definitions (and, by
  default, apply the ``.sync`` poll-interval and Retry fixes below).
- :func:`install_lambda_seam` - ``lambda:invoke`` / ``Invoke`` call a Python callable.
- :func:`install_batch_seam` - Batch jobs run as local processes, ``batch:submitJob.sync``
  works with AWS field names and wakes when its job stops (no 0.1 s polling); fixes moto's
  environment growth and missing exitCode.
- :func:`install_sync_retry_fix` - Retry of ``.sync`` / ``.waitForTaskToken`` tasks.
- :func:`set_sync_poll_interval` - ``.sync`` poll interval (moto: 0.5 s).
- :func:`expiring_presign_guard` - WSGI middleware enforcing presigned-URL expiry.
- :func:`start_moto_server` - ThreadedMotoServer with the guard, ``MOTO_PORT`` set, a
  dispatcher that remembers which backend serves a host (moto works it out per request), and
  :class:`S3RangedReads` answering plain ranged object GETs from moto's store.
- :func:`uninstall_seams` - restore every patched moto attribute (tests).

Every ``install_*`` function is idempotent: installing twice patches once (the
second call only swaps the callable that the already-installed seam uses).
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import importlib
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

LOG = logging.getLogger(__name__)

PINNED_MOTO_VERSION = "5.2.5"

# --------------------------------------------------------------------------------------
# Internals registry and patch bookkeeping
# --------------------------------------------------------------------------------------

#: Every moto internal a seam touches, as ``seam -> [(module, "Attr.path"), ...]``.
MOTO_INTERNALS: dict[str, list[tuple[str, str]]] = {
    "dynamodb_atomic_writes": [
        ("moto.dynamodb.models", "DynamoDBBackend.put_item"),
        ("moto.dynamodb.models", "DynamoDBBackend.update_item"),
        ("moto.dynamodb.models", "DynamoDBBackend.delete_item"),
        ("moto.dynamodb.models", "DynamoDBBackend.transact_write_items"),
        ("moto.dynamodb.models", "DynamoDBBackend.batch_write_item"),
    ],
    "s3_ranged_reads": [
        ("moto.s3.models", "s3_backends"),
        ("moto.s3.models", "ARCHIVE_STORAGE_CLASSES"),
        ("moto.s3.models", "S3Backend.get_bucket"),
        ("moto.s3.models", "S3Backend.get_object"),
        ("moto.s3.models", "FakeKey.response_dict"),
        ("moto.s3.models", "FakeKey.size"),
        ("moto.s3.models", "FakeKey.version_id"),
        ("moto.s3.models", "FakeKey.storage_class"),
        ("moto.s3.models", "FakeKey.metadata"),
        ("moto.s3.exceptions", "S3ClientError"),
        ("moto.iam.models", "get_account_id_from"),
        ("moto.utilities.utils", "get_partition"),
        ("moto.settings", "INITIAL_NO_AUTH_ACTION_COUNT"),
    ],
    "stepfunctions_execution": [
        ("moto.core.config", "default_user_config"),
        ("moto.stepfunctions.responses", "get_backend"),
    ],
    "lambda": [
        ("moto.awslambda.models", "LambdaFunction._invoke_lambda"),
        ("moto.awslambda.models", "LambdaFunction.invoke"),
        ("moto.awslambda.models", "LambdaFunction.save_logs"),
        ("moto.core.config", "default_user_config"),
    ],
    "batch": [
        ("moto.batch.models", "Job.run"),
        ("moto.batch.models", "Job.describe"),
        ("moto.batch.models", "Job.terminate"),
        ("moto.batch.models", "Job._get_container_property"),
        ("moto.batch.models", "Job._get_attempt_duration"),
        ("moto.batch.models", "Job._add_parameters_to_command"),
        ("moto.batch.models", "Job._wait_for_dependencies"),
        ("moto.batch.models", "Job._mark_stopped"),
        ("moto.batch.models", "Job._start_attempt"),
        ("moto.batch.models", "BatchBackend.cancel_job"),  # read: terminates only before RUNNING
        ("moto.batch.utils", "JobStatus"),
        ("moto.moto_api", "state_manager"),
        ("moto.moto_api", "state_manager.get_transition"),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch",
            "StateTaskServiceBatch._build_sync_resolver",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._normalise_parameters",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
            "StateTaskServiceCallback._eval_sync",
        ),
        ("moto.stepfunctions.parser.asl.eval.environment", "Environment.set_stop"),
        ("moto.stepfunctions.parser.asl.eval.environment", "Environment.set_error"),
        ("moto.stepfunctions.parser.asl.eval.environment", "Environment.set_timed_out"),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._normalise_response",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._to_boto_request",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._from_boto_response",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._get_boto_service_name",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._get_boto_service_action",
        ),
    ],
    "sync_retry": [
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
            "StateTaskServiceCallback._eval_integration_pattern",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
            "StateTaskServiceCallback._is_integration_pattern",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService._eval_execution",
        ),
        ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackPoolManager.get"),
        ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackPoolManager.add"),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource",
            "ResourceCondition.WaitForTaskToken",
        ),
        ("moto.stepfunctions.parser.utils", "long_uid"),
    ],
    "sync_poll_interval": [
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
            "_DELAY_SECONDS_SYNC_CONDITION_CHECK",
        ),
    ],
    "server": [
        ("moto.moto_server.threaded_moto_server", "ThreadedMotoServer._server_entry"),
        ("moto.moto_server.threaded_moto_server", "DomainDispatcherApplication"),
        ("moto.moto_server.werkzeug_app", "DomainDispatcherApplication.get_backend_for_host"),
        ("moto.moto_server.threaded_moto_server", "create_backend_app"),
        ("moto.moto_server.threaded_moto_server", "MotoRequestHandler"),
        ("moto.moto_server.threaded_moto_server", "make_server"),
        ("moto.settings", "moto_server_port"),
    ],
}

#: Instance attributes the seams read/write, checked against the class source (they are
#: set in ``__init__``, so they cannot be checked with getattr on the class).
MOTO_INSTANCE_ATTRIBUTES: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "lambda": [
        (
            "moto.awslambda.models",
            "LambdaFunction",
            ("function_name", "function_arn", "handler", "run_time", "environment_vars", "memory_size",
             "timeout", "version", "region", "account_id", "logs_backend", "logs_group_name"),
        ),
    ],
    "batch": [
        (
            "moto.batch.models",
            "Job",
            ("job_name", "job_id", "job_definition", "container_overrides", "job_queue", "job_started_at",
             "job_stopped", "job_stopped_reason", "depends_on", "parameters", "array_properties", "stop",
             "exit_code", "_log_backend", "_log_group", "_stream_name", "log_stream_name", "attempts",
             "latest_attempt", "_child_jobs"),
        ),
        ("moto.batch.models", "JobDefinition", ("container_properties", "arn")),
        ("moto.batch.models", "JobQueue", ("name", "arn")),
    ],
    "sync_retry": [
        ("moto.stepfunctions.parser.asl.eval.environment", "Environment", ("callback_pool_manager", "states")),
        ("moto.stepfunctions.parser.asl.eval.states", "ContextObject", ("context_object_data",)),
        ("moto.stepfunctions.parser.asl.eval.states", "States", ("context_object",)),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
            "StateTaskServiceCallback",
            ("_supported_integration_patterns",),
        ),
    ],
    "s3_ranged_reads": [
        ("moto.s3.models", "FakeKey", ("_value_buffer", "lock")),
        ("moto.s3.models", "FakeBucket", ("logging", "cors")),
    ],
    "server": [
        (
            "moto.moto_server.threaded_moto_server",
            "ThreadedMotoServer",
            ("_server", "_server_ready_event", "_ip_address", "_port", "_thread"),
        ),
    ],
}

_SVC = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"

_patch_lock = threading.RLock()
# (owner object, attribute name) -> original value (``_MISSING`` if the owner lacked it).
_originals: dict[tuple[Any, str], Any] = {}
_MISSING = object()


def _resolve(module: str, path: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def missing_moto_internals(seam: str | None = None) -> list[str]:
    """Names in :data:`MOTO_INTERNALS` / :data:`MOTO_INSTANCE_ATTRIBUTES` (for one seam, or
    all) that the installed moto lacks; empty when the seams can work."""
    import inspect

    seams = [seam] if seam else list(MOTO_INTERNALS)
    missing = []
    for s in seams:
        for module, path in MOTO_INTERNALS[s]:
            try:
                _resolve(module, path)
            except (ImportError, AttributeError) as exc:
                missing.append(f"{module}:{path} ({type(exc).__name__}: {exc})")
        for module, cls_name, attrs in MOTO_INSTANCE_ATTRIBUTES.get(s, []):
            try:
                cls = _resolve(module, cls_name)
                source = "".join(inspect.getsource(c) for c in cls.__mro__ if c.__module__.startswith("moto."))
            except (ImportError, AttributeError, OSError, TypeError) as exc:
                missing.append(f"{module}:{cls_name} ({type(exc).__name__}: {exc})")
                continue
            for attr in attrs:
                if f"self.{attr}" not in source:
                    missing.append(f"{module}:{cls_name}().{attr}")
    return missing


def _patch(owner: Any, name: str, new: Any) -> None:
    """setattr that remembers the first original, so re-installing never stacks wrappers."""
    with _patch_lock:
        key = (owner, name)
        if key not in _originals:
            _originals[key] = vars(owner).get(name, _MISSING)
        setattr(owner, name, new)


def _original(owner: type, name: str) -> Any:
    """The pre-seam class attribute ``owner.name`` (looked up on the bases if it was inherited)."""
    orig = _originals.get((owner, name), _MISSING)
    if orig is _MISSING:
        for base in owner.__mro__[1:] if (owner, name) in _originals else owner.__mro__:
            if name in base.__dict__:
                return base.__dict__[name]
        raise AttributeError(f"{owner.__name__}.{name}")
    return orig


_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_dynamodb_write_lock = threading.RLock()


def install_dynamodb_atomic_writes() -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are: moto reads the item, evaluates the condition
    and writes without a lock, so two threads' conditional writes could both pass (seen: 2 of 32 parallel
    "start once" writes won in half of the rounds). All writes of the process take one lock. Not undone by
    `uninstall_seams`: it only makes the emulator more faithful."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _DYNAMODB_WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_stratus_atomic", False):
            continue

        def atomic(self: Any, *args: Any, _write: Any = method, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return _write(self, *args, **kwargs)

        atomic._stratus_atomic = True  # type: ignore[attr-defined]
        atomic.__wrapped__ = method  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)


def uninstall_seams() -> None:
    """Restore every attribute patched by this module (mainly for tests)."""
    global _lambda_resolver, _batch_runner
    with _patch_lock:
        for (owner, name), orig in reversed(list(_originals.items())):
            if orig is _MISSING:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
            else:
                setattr(owner, name, orig)
        _originals.clear()
        _lambda_resolver = None
        _batch_runner = None


# --------------------------------------------------------------------------------------
# 5. Step Functions execution flag
# --------------------------------------------------------------------------------------


def enable_stepfunctions_execution(*, sync_poll_interval_s: float | None = 0.1, fix_sync_retry: bool = True) -> None:
    """Make moto's Step Functions *execute* definitions (in this process).

    Touches ``moto.core.config.default_user_config["stepfunctions"]``; moto's
    ``stepfunctions.responses.get_backend`` reads it per request and, when on, uses a
    *separate* store (``stepfunctions_parser_backends``): call this before creating
    state machines, machines created earlier are not found afterwards.

    Also, by default, applies the two interpreter fixes every executing setup wants:
    :func:`set_sync_poll_interval` (``sync_poll_interval_s``; ``None`` keeps moto's 0.5 s)
    and :func:`install_sync_retry_fix` (``fix_sync_retry``).
    """
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True  # type: ignore[typeddict-item]
    if sync_poll_interval_s is not None:
        set_sync_poll_interval(sync_poll_interval_s)
    if fix_sync_retry:
        install_sync_retry_fix()


# --------------------------------------------------------------------------------------
# 4. .sync poll interval
# --------------------------------------------------------------------------------------


def set_sync_poll_interval(seconds: float = 0.1) -> None:
    """Set how often ``.sync`` tasks poll their job (moto default 0.5 s).

    Touches the module constant ``state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK``,
    read by ``StateTaskServiceCallback._eval_sync`` on every loop iteration.
    """
    if seconds <= 0:
        raise ValueError("poll interval must be > 0")
    mod = importlib.import_module(f"{_SVC}.state_task_service_callback")
    _patch(mod, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", float(seconds))


# --------------------------------------------------------------------------------------
# 3. Retry of .sync / .waitForTaskToken tasks
# --------------------------------------------------------------------------------------


def install_sync_retry_fix() -> None:
    """Give every attempt of a callback-capable task a fresh task token / callback endpoint.

    moto bug: ``StateTaskServiceCallback._eval_body`` mints the task token once per
    *state*, but Retry re-runs only ``_eval_execution``; the first attempt's
    ``_eval_integration_pattern`` ends with ``callback_endpoint.interrupt_all()``, so on
    the second attempt the endpoint is already "done", the token waiter returns at once
    with no outcome and the attempt fails with ``States.Timeout``.

    Fix (wraps ``StateTaskService._eval_execution`` for ``StateTaskServiceCallback``):
    before each attempt after the first, mint a new token in the shared ``$$.Task`` dict
    and register a new endpoint in ``env.callback_pool_manager``.  This is done *before*
    the service call (rather than resetting the endpoint inside ``_eval_integration_pattern``)
    so that a worker answering a ``.waitForTaskToken`` message very fast cannot have its
    answer wiped, and a late answer to the previous attempt's token cannot complete the
    new attempt.  AWS also issues a new token per attempt.
    """
    callback_mod = importlib.import_module(f"{_SVC}.state_task_service_callback")
    resource_mod = importlib.import_module(f"{_SVC}.resource")
    from moto.stepfunctions.parser.utils import long_uid

    cls = callback_mod.StateTaskServiceCallback
    with _patch_lock:
        if getattr(cls.__dict__.get("_eval_execution"), "__stratus_seam__", False):
            return
        inherited = cls._eval_execution  # StateTaskService._eval_execution
        wait_for_token = resource_mod.ResourceCondition.WaitForTaskToken

        def _eval_execution(self: Any, env: Any) -> None:
            if self._is_integration_pattern() and wait_for_token in self._supported_integration_patterns:
                task = env.states.context_object.context_object_data.get("Task")
                token = task.get("Token") if isinstance(task, dict) else None
                if token is not None:
                    endpoint = env.callback_pool_manager.get(token)
                    if endpoint is not None and getattr(endpoint, "_stratus_attempted", False):
                        # ``task`` is the same dict object in the state's env and every
                        # attempt frame, so updating it in place renews $$.Task.Token for all.
                        task["Token"] = long_uid()
                        endpoint = env.callback_pool_manager.add(task["Token"])
                    if endpoint is not None:
                        endpoint._stratus_attempted = True
            return inherited(self, env)

        _eval_execution.__stratus_seam__ = True  # type: ignore[attr-defined]
        _patch(cls, "_eval_execution", _eval_execution)


# --------------------------------------------------------------------------------------
# 1. Lambda
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LambdaFunctionInfo:
    """What the resolver learns about the moto function being invoked."""

    function_name: str
    function_arn: str
    handler: str | None
    runtime: str | None
    environment: Mapping[str, str]
    memory_size: int
    timeout_s: int
    version: str
    region: str
    account_id: str


class LambdaContext:
    """Subset of the AWS Lambda Python context object."""

    def __init__(self, info: LambdaFunctionInfo, request_id: str | None = None):
        self.function_name = info.function_name
        self.function_version = info.version
        self.invoked_function_arn = info.function_arn
        self.memory_limit_in_mb = int(info.memory_size)
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{info.function_name}"
        now = _dt.datetime.now(_dt.timezone.utc)
        self.log_stream_name = f"{now:%Y/%m/%d}/[{info.version}]{self.aws_request_id.replace('-', '')}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + float(info.timeout_s)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


LambdaHandler = Callable[[Any, Any], Any]
LambdaResolver = Callable[[LambdaFunctionInfo], LambdaHandler]

_lambda_resolver: LambdaResolver | None = None


class _EnvOverlay:
    """Process-wide, reference-counted overlay of variables onto ``os.environ``.

    A Lambda handler running in-process reads its configuration from ``os.environ``,
    so the function's variables are set there for the duration of the call and
    removed / restored when the last concurrent call that set them returns.  When
    concurrent calls set the *same* name to *different* values, the most recently
    started still-running call wins for everybody (a documented limitation of
    running several functions in one process).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: dict[str, str | None] = {}
        self._active: dict[str, list[tuple[object, str]]] = {}

    @contextmanager
    def applied(self, variables: Mapping[str, str]):
        token = object()
        with self._lock:
            for k, v in variables.items():
                if k not in self._active:
                    self._saved[k] = os.environ.get(k)
                    self._active[k] = []
                self._active[k].append((token, v))
                os.environ[k] = v
        try:
            yield
        finally:
            with self._lock:
                for k in variables:
                    stack = [e for e in self._active.get(k, []) if e[0] is not token]
                    if stack:
                        self._active[k] = stack
                        os.environ[k] = stack[-1][1]
                    else:
                        self._active.pop(k, None)
                        orig = self._saved.pop(k, None)
                        if orig is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = orig


_env_overlay = _EnvOverlay()


class _MarshalError(Exception):
    pass


def _json_default(obj: Any) -> Any:
    # Like the AWS Python runtime: Decimal (e.g. from DynamoDB) marshals as a number.
    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _error_payload(exc: BaseException, request_id: str, error_type: str | None = None) -> str:
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": error_type or type(exc).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
        }
    )


def _function_info(fn: Any) -> LambdaFunctionInfo:
    return LambdaFunctionInfo(
        function_name=fn.function_name,
        function_arn=fn.function_arn,
        handler=fn.handler,
        runtime=getattr(fn, "run_time", None),
        environment={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        memory_size=int(fn.memory_size or 128),
        timeout_s=int(fn.timeout or 3),
        version=str(getattr(fn, "version", "$LATEST")),
        region=fn.region,
        account_id=fn.account_id,
    )


def _seam_invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for ``LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)``."""
    resolver = _lambda_resolver
    info = _function_info(self)
    context = LambdaContext(info)
    rid = context.aws_request_id
    # moto's LambdaFunction.invoke passes the *parsed* JSON body, except that an empty
    # body arrives as the string "{}".
    if event is None or event == "{}":
        event = {}
    started = time.monotonic()
    errored = False
    try:
        if resolver is None:
            raise RuntimeError("no Lambda resolver installed (install_lambda_seam)")
        try:
            handler = resolver(info)
        except Exception as exc:  # resolution failure ~ AWS "Runtime.ImportModuleError"
            payload, errored = _error_payload(exc, rid, "Runtime.ImportModuleError"), True
        else:
            with _env_overlay.applied(info.environment):
                try:
                    result = handler(event, context)
                except Exception as exc:
                    payload, errored = _error_payload(exc, rid), True
                else:
                    try:
                        payload = json.dumps(result, default=_json_default)
                    except (TypeError, ValueError) as exc:
                        err = _MarshalError(f"Unable to marshal response: {exc}")
                        payload, errored = _error_payload(err, rid, "Runtime.MarshalError"), True
    except Exception as exc:
        payload, errored = _error_payload(exc, rid), True
    duration_ms = (time.monotonic() - started) * 1000
    logs = (
        f"START RequestId: {rid} Version: {info.version}\n"
        f"END RequestId: {rid}\n"
        f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\t"
        f"Memory Size: {info.memory_size} MB"
    )
    try:  # best effort, like moto: the invocation log lands in CloudWatch Logs
        self.logs_backend.ensure_log_group(self.logs_group_name)
        self.save_logs(logs)
    except Exception:  # pragma: no cover - logging must never fail an invocation
        LOG.debug("could not save lambda logs", exc_info=True)
    return payload, errored, logs


def install_lambda_seam(resolve: LambdaResolver) -> None:
    """Make every invocation of a moto Lambda function call a Python handler in-process.

    ``resolve(info)`` is called per invocation with the function's name/ARN/handler
    setting/environment and returns ``handler(event, context)``.  The return value is
    JSON-serialised (Decimal allowed); an exception becomes the AWS error payload
    ``{"errorMessage", "errorType": <class name>, "stackTrace"}`` with ``errored=True``
    so ASL ``Catch``/``Retry`` match on the class name.  During the call the function's
    environment variables are overlaid on ``os.environ`` (see ``_EnvOverlay``).  The
    function's ``Timeout`` only feeds ``context.get_remaining_time_in_millis()``; it is
    not enforced.

    Touches ``moto.awslambda.models.LambdaFunction._invoke_lambda`` (the one place that
    runs a Docker container; used by boto3 ``Invoke``, Step Functions ``lambda:invoke``
    and moto's own event-source mappings) and forces
    ``default_user_config["lambda"]["use_docker"] = True`` (otherwise moto routes to its
    echo-only ``awslambda_simple`` backend and the seam is bypassed).
    """
    global _lambda_resolver
    from moto.awslambda.models import LambdaFunction
    from moto.core.config import default_user_config

    if not callable(resolve):
        raise TypeError("resolve must be callable")
    with _patch_lock:
        _lambda_resolver = resolve
        default_user_config.setdefault("lambda", {})["use_docker"] = True  # type: ignore[typeddict-item]
        if LambdaFunction.__dict__.get("_invoke_lambda") is not _seam_invoke_lambda:
            _patch(LambdaFunction, "_invoke_lambda", _seam_invoke_lambda)


# --------------------------------------------------------------------------------------
# 2. Batch
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchJobSpec:
    """What the runner gets to start one Batch job attempt as a local process."""

    job_id: str
    job_name: str
    command: list[str]
    environment: dict[str, str]
    timeout_s: int | None
    image: str | None = None
    job_definition_arn: str | None = None
    job_queue_arn: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)


BatchRunner = Callable[[BatchJobSpec], "subprocess.Popen[Any]"]

_batch_runner: BatchRunner | None = None
_batch_kill_grace_s: float = 2.0
_batch_wait_step_s: float = 0.1  # how often a running job looks at terminate and timeout (an exit: within 50 ms)

#: AWS Batch's statusReason for a container that exits on its own (success or not).
REASON_EXITED = "Essential container in task exited"
#: AWS Batch's statusReason when attemptDurationSeconds elapses.
REASON_TIMEOUT = "Job attempt duration exceeded timeout"


def _job_class() -> type:
    from moto.batch.models import Job

    return Job


def _merged_environment(job: Any, *, runtime: bool = False) -> list[dict[str, str]]:
    """Job-definition environment overlaid by the overrides (overrides win) + AWS_BATCH_JOB_ID.

    Always a fresh list: moto's ``Job._get_container_property("environment")`` appends to
    ``container_overrides["environment"]`` in place on every call (every DescribeJobs
    poll grew the list by the job-definition variables and one more AWS_BATCH_JOB_ID).
    With ``runtime=True`` also the other variables AWS Batch sets in the container
    (AWS_BATCH_JQ_NAME, AWS_BATCH_JOB_ATTEMPT, AWS_BATCH_JOB_ARRAY_INDEX).
    """
    merged: dict[str, str] = {}
    jd_env = (job.job_definition.container_properties or {}).get("environment") or []
    for item in jd_env:
        merged[str(item["name"])] = str(item.get("value", ""))
    for item in job.container_overrides.get("environment") or []:
        merged[str(item["name"])] = str(item.get("value", ""))
    merged["AWS_BATCH_JOB_ID"] = job.job_id
    if runtime:
        merged["AWS_BATCH_JQ_NAME"] = str(getattr(job.job_queue, "name", ""))
        merged["AWS_BATCH_JOB_ATTEMPT"] = str(max(1, len(job.attempts)))
        index = (job.array_properties or {}).get("index")
        if index is not None:
            merged["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    return [{"name": k, "value": v} for k, v in merged.items()]


def _seam_get_container_property(self: Any, p: str, default: Any) -> Any:
    """Replacement for ``Job._get_container_property``: non-mutating ``environment``."""
    if p == "environment":
        return _merged_environment(self)
    return _original(_job_class(), "_get_container_property")(self, p, default)


def _seam_describe(self: Any) -> dict[str, Any]:
    """Wrapper of ``Job.describe``: keeps ``container.exitCode`` (moto's ``describe`` replaces
    the ``container`` dict of ``describe_short`` and drops it) and settles array parents."""
    from moto.batch.utils import JobStatus

    children = getattr(self, "_child_jobs", None)
    if children:
        statuses = [c.status for c in children]
        done = all(s in (JobStatus.SUCCEEDED, JobStatus.FAILED) for s in statuses)
        if done and any(s == JobStatus.FAILED for s in statuses):
            self.status = JobStatus.FAILED
        elif not done and self.status == JobStatus.SUBMITTED and any(s != JobStatus.SUBMITTED for s in statuses):
            self.status = JobStatus.PENDING
    result = _original(_job_class(), "describe")(self)
    if self.job_stopped and self.exit_code is not None:
        container = result.setdefault("container", {})
        if isinstance(container, dict):
            container.setdefault("exitCode", self.exit_code)
    return result


def _kill(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM (the process group if the runner used start_new_session), then SIGKILL."""
    if proc.poll() is not None:
        return

    def _send(sig: int) -> None:
        try:
            if os.name == "posix" and os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass

    _send(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _send(signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            LOG.error("batch seam: process %s survived SIGKILL", proc.pid)


def _drain(stream: Any, sink: list[tuple[int, str]]) -> None:
    try:
        for raw in iter(stream.readline, b"" if "b" in getattr(stream, "mode", "b") else ""):
            line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            sink.append((int(time.time() * 1000), line.rstrip("\n")))
    except Exception:  # pragma: no cover
        pass


def _set_status(job: Any, status: Any) -> None:
    job.status = status  # ManagedState setter; the seam drives progression itself


def _seam_job_run(self: Any) -> None:
    """Replacement for ``moto.batch.models.Job.run`` (the job's thread body).

    SUBMITTED -> PENDING (dependencies) -> RUNNABLE -> STARTING -> runner(spec) -> RUNNING,
    then wait for the process while honouring TerminateJob/CancelJob (``self.stop``) and
    attemptDurationSeconds; SUCCEEDED on exit 0, else FAILED with statusReason and
    ``exitCode``.  Piped stdout/stderr is drained into CloudWatch Logs ``/aws/batch/job``.
    """
    from moto.batch.utils import JobStatus

    proc: subprocess.Popen | None = None

    def fail(reason: str, exit_code: int | None = None) -> None:
        if self.job_stopped_reason is None:
            self.job_stopped_reason = reason
        if exit_code is not None:
            self.exit_code = exit_code
        self._mark_stopped(success=False)

    try:
        if self.job_definition.container_properties is None:
            fail("Local Batch seam runs container jobs only (no multinode/EKS)")
            return

        _set_status(self, JobStatus.PENDING)
        if self.depends_on and not self._wait_for_dependencies():
            if self.job_stopped_reason is None:
                self.job_stopped_reason = "Dependent job failed"
            return
        for status in (JobStatus.RUNNABLE, JobStatus.STARTING):
            if self.stop:  # CancelJob (allowed until RUNNING) or TerminateJob
                fail(self.job_stopped_reason or "Job cancelled")
                return
            _set_status(self, status)

        runner = _batch_runner
        if runner is None:
            fail("CannotStartContainerError: no Batch runner installed (install_batch_seam)")
            return

        self.job_started_at = _dt.datetime.now()
        self._start_attempt()
        env = {e["name"]: e["value"] for e in _merged_environment(self, runtime=True)}
        command = self._add_parameters_to_command(self._get_container_property("command", []) or [])
        timeout_s = self._get_attempt_duration()
        spec = BatchJobSpec(
            job_id=self.job_id,
            job_name=self.job_name,
            command=[str(c) for c in command],
            environment=env,
            timeout_s=int(timeout_s) if timeout_s else None,
            image=(self.job_definition.container_properties or {}).get("image"),
            job_definition_arn=self.job_definition.arn,
            job_queue_arn=self.job_queue.arn,
            parameters=dict(self.parameters or {}),
        )
        try:
            proc = runner(spec)
        except Exception as exc:
            fail(f"CannotStartContainerError: {type(exc).__name__}: {exc}")
            return
        # Batch's startedAt is when the container starts, after the job waited in STARTING for capacity (the
        # runner may wait for a free local worker): so a job's startedAt..stoppedAt is its process alone
        from moto.batch.models import datetime2int_milliseconds

        self.job_started_at = _dt.datetime.now()
        if self.latest_attempt is not None:
            self.latest_attempt["startedAt"] = datetime2int_milliseconds(self.job_started_at)
        _set_status(self, JobStatus.RUNNING)

        logs: list[tuple[int, str]] = []
        drainers = []
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                t = threading.Thread(target=_drain, args=(stream, logs), daemon=True, name=f"batch-log-{self.job_id}")
                t.start()
                drainers.append(t)

        deadline = time.monotonic() + timeout_s if timeout_s else None
        stop_reason: str | None = None
        while True:
            try:
                rc = proc.wait(timeout=_batch_wait_step_s)
                break
            except subprocess.TimeoutExpired:
                pass
            if self.stop:
                stop_reason = self.job_stopped_reason or "Job terminated"
                _kill(proc, _batch_kill_grace_s)
                rc = proc.returncode
                break
            if deadline is not None and time.monotonic() > deadline:
                stop_reason = REASON_TIMEOUT
                _kill(proc, _batch_kill_grace_s)
                rc = proc.returncode
                break

        for t in drainers:
            t.join(timeout=1.0)
        if logs:
            try:
                self.log_stream_name = self._stream_name
                self._log_backend.ensure_log_group(self._log_group)
                self._log_backend.ensure_log_stream(self._log_group, self.log_stream_name)
                self._log_backend.put_log_events(
                    self._log_group,
                    self.log_stream_name,
                    [{"timestamp": ts, "message": msg} for ts, msg in sorted(logs, key=lambda x: x[0])],
                )
            except Exception:  # pragma: no cover
                LOG.warning("batch seam: could not store logs of job %s", self.job_id, exc_info=True)

        if rc is not None and rc < 0:  # killed by a signal: report it like Docker (128 + signo)
            rc = 128 - rc
        self.exit_code = rc
        if self.latest_attempt is not None:
            self.latest_attempt["container"]["exitCode"] = rc
            self.latest_attempt["statusReason"] = stop_reason or REASON_EXITED
        if stop_reason is not None:
            fail(stop_reason)
        elif rc == 0:
            self.job_stopped_reason = REASON_EXITED
            self._mark_stopped(success=True)
        else:
            fail(REASON_EXITED)
    except Exception as exc:
        LOG.exception("batch seam: job %s crashed", self.job_id)
        if proc is not None:
            _kill(proc, 0.5)
        fail(f"Local Batch seam error: {type(exc).__name__}: {exc}")
    finally:
        _sync_wakeups.notify(self.job_id)  # every way out of the job's thread leaves the job stopped


# --- Step Functions normalisation for Batch (AWS field names) -----------------------

_service_models: dict[str, Any] = {}


def _operation_model(service: str, action_snake: str) -> Any:
    import botocore.session
    from botocore import xform_name

    model = _service_models.get(service)
    if model is None:
        model = botocore.session.get_session().get_service_model(service)
        _service_models[service] = model
    for op in model.operation_names:
        if xform_name(op) == action_snake or op == action_snake:
            return model.operation_model(op)
    raise KeyError(f"{service} has no operation {action_snake}")


def _batch_normalise_parameters(
    self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    """``StateTaskService._normalise_parameters`` is a no-op in moto's copy of the interpreter:
    map AWS Step Functions field names (``JobName``, ``ContainerOverrides.Environment[].Name``)
    onto the botocore request shape (``jobName``, ``containerOverrides.environment[].name``)."""
    service = self._get_boto_service_name(boto_service_name=boto_service_name)
    action = self._get_boto_service_action(service_action_name=service_action_name)
    shape = _operation_model(service, action).input_shape
    if shape is not None:
        self._to_boto_request(parameters, shape)


def _batch_normalise_response(
    self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
) -> None:
    """Counterpart of :func:`_batch_normalise_parameters`: botocore response keys -> SFN casing
    (``jobId`` -> ``JobId``, ``container.exitCode`` -> ``Container.ExitCode``)."""
    service = self._get_boto_service_name(boto_service_name=boto_service_name)
    action = self._get_boto_service_action(service_action_name=service_action_name)
    shape = _operation_model(service, action).output_shape
    if shape is not None:
        self._from_boto_response(response, shape)


class _StopSignal:
    """Stopped Batch jobs and executions that waiting ``.sync`` tasks block on. A waiter notes what it has seen
    before it looks at its job and then waits for that to change, so a stop between the look and the wait is not
    missed. It wakes for its own job's stop (waking every waiter for every stop made a fanned-out job's 16
    waiting tiles describe their jobs 16 times each) and for any execution's end (its own may be the one)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._executions = 0
        self._jobs = 0
        self._stops_of_job: dict[str, int] = {}

    def seen(self, job_id: str | None) -> tuple[int, int]:
        with self._condition:
            return self._seen(job_id)

    def _seen(self, job_id: str | None) -> tuple[int, int]:
        return self._executions, (self._jobs if job_id is None else self._stops_of_job.get(job_id, 0))

    def notify(self, job_id: str | None = None) -> None:
        """A Batch job stopped (`job_id`), or an execution stopped, failed or timed out (no id)."""
        with self._condition:
            if job_id is None:
                self._executions += 1
            else:
                self._jobs += 1
                self._stops_of_job[job_id] = self._stops_of_job.get(job_id, 0) + 1
                if len(self._stops_of_job) > _STOPS_KEPT:  # jobs nobody waited for (submitted without .sync)
                    del self._stops_of_job[next(iter(self._stops_of_job))]
            self._condition.notify_all()

    def wait_past(self, seen: tuple[int, int], job_id: str | None, timeout_s: float) -> None:
        """Until `job_id` stops (any job when None) or an execution ends, after `seen`; at most `timeout_s`."""
        with self._condition:
            self._condition.wait_for(lambda: self._seen(job_id) != seen, timeout=timeout_s)

    def forget(self, job_id: str) -> None:
        """The job's waiter is done with it."""
        with self._condition:
            self._stops_of_job.pop(job_id, None)


_STOPS_KEPT = 4096  # stopped jobs remembered for waiters: far more than run at once
_sync_wakeups = _StopSignal()
#: How often a ``batch:submitJob.sync`` task still describes its job when no stop woke it (a status set from
#: outside the seam, e.g. through ``/moto-api/state-manager``).
BATCH_SYNC_FALLBACK_POLL_S = 5.0
_ENDING_PROGRAM_STATES = ("set_stop", "set_error", "set_timed_out")


def _waking_sync_tasks(set_state: Callable[..., None]) -> Callable[..., None]:
    """``Environment.set_stop`` and co.: a waiting ``.sync`` task of the stopped execution ends at once."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            set_state(self, *args, **kwargs)
        finally:
            _sync_wakeups.notify()

    wrapper.__wrapped__ = set_state  # type: ignore[attr-defined]
    return wrapper


def _batch_eval_sync(self: Any, env: Any, sync_resolver: Callable[[], Any] | None, timeout_seconds: Any,
                     callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
    """``StateTaskServiceCallback._eval_sync`` for the Batch task: moto's loop describes the job every
    ``_DELAY_SECONDS_SYNC_CONDITION_CHECK`` (0.1 s here), an HTTP DescribeJobs per waiting task; with 16 tiles
    waiting that burnt more CPU than the tiles' own processes. This one looks again only when a Batch job
    stopped (the seam's job threads signal it), an execution stopped, failed or timed out (it then ends), or
    after :data:`BATCH_SYNC_FALLBACK_POLL_S`.
    moto also listens for a task token here, in a thread per task; a ``.sync`` task has no token on AWS
    (``$$.Task.Token`` exists for ``.waitForTaskToken`` only), so this one does not."""
    if sync_resolver is None:
        return _original(_callback_task_class(), "_eval_sync")(
            self, env=env, sync_resolver=sync_resolver, timeout_seconds=timeout_seconds,
            callback_endpoint=callback_endpoint, heartbeat_endpoint=heartbeat_endpoint)
    job_id = _resolved_job_id(sync_resolver)
    result = None
    try:
        while env.is_running():
            seen = _sync_wakeups.seen(job_id)
            result = sync_resolver()
            if result:
                break
            _sync_wakeups.wait_past(seen, job_id, BATCH_SYNC_FALLBACK_POLL_S)
    finally:
        if job_id is not None:
            _sync_wakeups.forget(job_id)
    return result


def _resolved_job_id(sync_resolver: Callable[[], Any]) -> str | None:
    """The Batch job id that moto's resolver (a closure built by `_build_sync_resolver`) describes; None if
    moto no longer keeps it under that name (the waiter then wakes on every job's stop, as before)."""
    names = getattr(sync_resolver, "__code__", None)
    if names is None or "job_id" not in names.co_freevars or sync_resolver.__closure__ is None:
        return None
    value = sync_resolver.__closure__[names.co_freevars.index("job_id")].cell_contents
    return value if isinstance(value, str) else None


def _callback_task_class() -> type:
    return importlib.import_module(f"{_SVC}.state_task_service_callback").StateTaskServiceCallback


def install_batch_sfn_normalisation() -> None:
    """Implement ``_normalise_parameters`` / ``_normalise_response`` for the Batch task only.

    Touches ``StateTaskServiceBatch`` (patched on that subclass, so the other integrations,
    which already work with moto's no-op base methods, keep their behaviour).
    """
    mod = importlib.import_module(f"{_SVC}.state_task_service_batch")
    cls = mod.StateTaskServiceBatch
    with _patch_lock:
        if cls.__dict__.get("_normalise_parameters") is not _batch_normalise_parameters:
            _patch(cls, "_normalise_parameters", _batch_normalise_parameters)
        if cls.__dict__.get("_normalise_response") is not _batch_normalise_response:
            _patch(cls, "_normalise_response", _batch_normalise_response)


def install_batch_seam(runner: BatchRunner, *, kill_grace_s: float = 2.0) -> None:
    """Run moto Batch jobs as local processes started by ``runner(spec) -> Popen``.

    Replaces ``moto.batch.models.Job.run`` (the per-job thread that would start Docker),
    fixes ``Job._get_container_property`` (environment grew per DescribeJobs) and
    ``Job.describe`` (dropped ``container.exitCode``) and installs
    :func:`install_batch_sfn_normalisation`.  A ``batch:submitJob.sync`` task waits for a job to stop
    (``StateTaskServiceBatch._eval_sync``, see :func:`_batch_eval_sync`) instead of describing its job
    every 0.1 s.  The seam sets each status itself; moto's
    registered transition for ``batch::job`` is "manual" (advances only on
    ``Job.advance()``, which the seam never calls), so DescribeJobs reports the real
    state.  A user-set non-manual transition (``/moto-api/state-manager``) would let
    DescribeJobs run ahead of the process; a warning is logged.  CancelJob behaves as on
    AWS (and in moto): it fails a job that has not reached RUNNING; a RUNNING job needs
    TerminateJob.  Also forces
    ``default_user_config["batch"]["use_docker"] = True`` (otherwise moto uses
    ``batch_simple``, which never runs anything).  Terminate/timeout send SIGTERM to the
    process (group, if the runner used ``start_new_session=True``) and SIGKILL after
    ``kill_grace_s``.  Batch-level ``retryStrategy`` is not implemented (one attempt).
    """
    global _batch_runner, _batch_kill_grace_s
    from moto.batch.models import Job
    from moto.core.config import default_user_config
    from moto.moto_api import state_manager

    transition = state_manager.get_transition("batch::job")
    if transition.get("progression") != "manual":
        LOG.warning("batch::job state transition is %s: DescribeJobs may run ahead of the local process", transition)
    if not callable(runner):
        raise TypeError("runner must be callable")
    with _patch_lock:
        _batch_runner = runner
        _batch_kill_grace_s = float(kill_grace_s)
        default_user_config.setdefault("batch", {})["use_docker"] = True  # type: ignore[typeddict-item]
        for name, new in (
            ("run", _seam_job_run),
            ("_get_container_property", _seam_get_container_property),
            ("describe", _seam_describe),
        ):
            if Job.__dict__.get(name) is not new:
                _patch(Job, name, new)
        batch_task = importlib.import_module(f"{_SVC}.state_task_service_batch").StateTaskServiceBatch
        if batch_task.__dict__.get("_eval_sync") is not _batch_eval_sync:
            _patch(batch_task, "_eval_sync", _batch_eval_sync)
        environment = importlib.import_module("moto.stepfunctions.parser.asl.eval.environment").Environment
        for name in _ENDING_PROGRAM_STATES:
            if not hasattr(environment.__dict__[name], "__wrapped__"):
                _patch(environment, name, _waking_sync_tasks(environment.__dict__[name]))
    install_batch_sfn_normalisation()


# --------------------------------------------------------------------------------------
# 6. Presigned URL expiry + server
# --------------------------------------------------------------------------------------

_MAX_PRESIGN_EXPIRES = 604800


def _first(params: list[tuple[str, str]], name: str) -> str | None:
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return v
    return None


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def presign_expiry_status(query_string: str, now: float) -> tuple[int, str, str, dict[str, str]] | None:
    """``(http_status, code, message, extra_xml_fields)`` if a presigned query must be refused."""
    if not query_string:
        return None
    params = parse_qsl(query_string, keep_blank_values=True)
    amz_date = _first(params, "X-Amz-Date")
    amz_expires = _first(params, "X-Amz-Expires")
    if amz_date is not None and amz_expires is not None:
        try:
            signed = _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()
            expires_in = int(amz_expires)
        except ValueError:
            return None  # malformed: leave it to moto
        if expires_in > _MAX_PRESIGN_EXPIRES:
            return (
                400,
                "AuthorizationQueryParametersError",
                f"X-Amz-Expires must be less than a week (in seconds) that is {_MAX_PRESIGN_EXPIRES}",
                {},
            )
        if now > signed + expires_in:
            return (
                403,
                "AccessDenied",
                "Request has expired",
                {"X-Amz-Expires": str(expires_in), "Expires": _iso(signed + expires_in), "ServerTime": _iso(now)},
            )
        return None
    legacy = _first(params, "Expires")
    if legacy is not None and _first(params, "Signature") is not None:
        try:
            expires_at = int(legacy)
        except ValueError:
            return None
        if now > expires_at:
            return (403, "AccessDenied", "Request has expired", {"Expires": _iso(expires_at), "ServerTime": _iso(now)})
    return None


def expiring_presign_guard(app: Callable, *, clock: Callable[[], float] = time.time) -> Callable:
    """WSGI middleware: refuse expired presigned requests before they reach ``app``.

    moto neither checks signatures nor expiry.  Any request (OPTIONS preflights excepted)
    whose query has ``X-Amz-Date`` + ``X-Amz-Expires`` in the past, or a SigV2 ``Expires``
    (with ``Signature``) in the past, gets S3's 403 ``AccessDenied`` "Request has expired"
    XML error; ``X-Amz-Expires`` over a week gets S3's 400.  Everything else passes through.
    """
    if getattr(app, "__stratus_presign_guard__", False):
        return app

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") != "OPTIONS":
            refusal = presign_expiry_status(environ.get("QUERY_STRING", ""), clock())
            if refusal is not None:
                status, code, message, extra = refusal
                request_id = uuid.uuid4().hex[:16].upper()
                fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}"
                    f"<RequestId>{request_id}</RequestId>"
                    f"<HostId>{base64.b64encode(os.urandom(24)).decode()}</HostId></Error>"
                ).encode()
                if environ.get("REQUEST_METHOD") == "HEAD":
                    body = b""
                reason = {403: "Forbidden", 400: "Bad Request"}[status]
                start_response(
                    f"{status} {reason}",
                    [
                        ("Content-Type", "application/xml"),
                        ("Content-Length", str(len(body))),
                        ("x-amz-request-id", request_id),
                    ],
                )
                return [body]
        return app(environ, start_response)

    guarded.__stratus_presign_guard__ = True  # type: ignore[attr-defined]
    guarded.wrapped_app = app  # type: ignore[attr-defined]
    return guarded


# Hosts whose backend the dispatcher remembers (a local system sees a handful: one per service and region).
_DISPATCH_CACHE_HOSTS = 1024


def _caching_dispatcher_class() -> type:
    from moto.moto_server import threaded_moto_server as tms

    class _CachingDispatcher(tms.DomainDispatcherApplication):
        """moto's dispatcher, remembering which backend serves a host. moto 5.2.5 works it out for
        every request, under the dispatcher's lock: a listing of moto's package directory (~170
        `isdir` calls), then the regular expressions of every service's URLs: ~0.7 ms of CPU per
        request measured here, paid ~100 times by each tile of a fanned-out job reading its COGs."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._backend_of_host: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            try:
                return self._backend_of_host[host]
            except KeyError:
                backend = super().get_backend_for_host(host)
                if len(self._backend_of_host) < _DISPATCH_CACHE_HOSTS:
                    self._backend_of_host[host] = backend
                return backend

    return _CachingDispatcher


# Request headers after which a GET is left to moto: conditions, CORS, customer keys, checksums.
_LEFT_TO_MOTO_HEADERS = ("HTTP_IF_", "HTTP_ORIGIN", "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER", "HTTP_X_AMZ_CHECKSUM")
_BYTE_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
_SIGV4_S3 = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/s3/aws4_request\b")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./=:-]+")  # the same in the URL, in WSGI's PATH_INFO and in moto's store
_PATH_STYLE_HOST = re.compile(r"(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])(:\d+)?")


class S3RangedReads:
    """WSGI middleware answering the plainest ranged S3 GETs from moto's store, without moto's app.

    GDAL reads a COG block by block: a 16-tile fanned-out job makes ~1,700 ranged GETs. Through moto's Flask app
    each cost ~2.9 ms of the emulator's CPU (routing, parsing, serialising; moto 5.2.5 also read the whole object
    to slice it), here ~0.8 ms. Only a path-style, SigV4-signed GET of one "first-last" range, without query,
    conditions, CORS or customer keys, of an existing object in a bucket without access logging, is answered
    here, with moto's headers and bytes; every other request, and any object moto would refuse, goes to moto.
    Emulates S3 only while moto does not enforce IAM (``INITIAL_NO_AUTH_ACTION_COUNT`` unset)."""

    def __init__(self, app: Callable) -> None:
        self._app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self._app(environ, start_response)
        headers, body = answer
        start_response("206 Partial Content", headers)
        return [body]

    def _answer(self, environ: dict) -> tuple[list[tuple[str, str]], bytes] | None:
        from moto import settings

        if (environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING")
                or settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf")
                or any(name.startswith(_LEFT_TO_MOTO_HEADERS) for name in environ)):
            return None
        wanted = _BYTE_RANGE.fullmatch(environ.get("HTTP_RANGE", ""))
        signed = _SIGV4_S3.match(environ.get("HTTP_AUTHORIZATION", ""))
        bucket_name, _, key_name = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        if (not wanted or int(wanted[1]) > int(wanted[2]) or not signed or not _PLAIN_KEY.fullmatch(key_name)
                or not _PATH_STYLE_HOST.fullmatch(environ.get("HTTP_HOST", ""))):
            return None
        key = _stored_key(signed[1], signed[2], bucket_name, key_name)
        first, last = int(wanted[1]), int(wanted[2])
        if key is None or first >= key.size:
            return None
        last = min(last, key.size - 1)
        with key.lock:
            key._value_buffer.seek(first)
            body = key._value_buffer.read(last - first + 1)
        headers = {"x-amz-version-id": key.version_id} if key.version_id != "null" else {}
        headers.update(key.response_dict)
        headers.update(key.metadata)
        headers.pop("content-length", None)
        headers.update({"Accept-Ranges": "bytes", "content-range": f"bytes {first}-{last}/{key.size}",
                        "content-length": str(len(body))})
        return [(name, str(value)) for name, value in headers.items()], body


def _stored_key(access_key: str, region: str, bucket_name: str, key_name: str) -> Any:
    """The object as moto's GET would serve it, or None where moto answers otherwise (no such bucket or key,
    a delete marker, an archived object, a bucket that logs access or has CORS rules)."""
    from moto.iam.models import get_account_id_from
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import ARCHIVE_STORAGE_CLASSES, s3_backends
    from moto.utilities.utils import get_partition

    try:
        backend = s3_backends[get_account_id_from(access_key)][get_partition(region)]
        bucket = backend.get_bucket(bucket_name)
    except (S3ClientError, KeyError):
        return None
    if bucket.logging or bucket.cors:
        return None
    key = backend.get_object(bucket_name, key_name)
    if key is None or key.storage_class in ARCHIVE_STORAGE_CLASSES:
        return None
    return key


def _guarded_server_class() -> type:
    from moto.moto_server import threaded_moto_server as tms

    class _QuietMotoRequestHandler(tms.MotoRequestHandler):
        """moto's handler without werkzeug's per-request access log line (errors still logged)."""

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            return None

    class GuardedThreadedMotoServer(tms.ThreadedMotoServer):
        """ThreadedMotoServer whose WSGI app is wrapped by :func:`expiring_presign_guard`.

        Overrides ``ThreadedMotoServer._server_entry`` (moto builds
        ``DomainDispatcherApplication(create_backend_app)`` inline there, with no hook)
        and reports bind errors instead of hanging in ``start()``.
        """

        startup_error: BaseException | None = None
        log_requests: bool = False
        middlewares: tuple[Callable[[Callable], Callable], ...] = ()

        def _server_entry(self) -> None:
            try:
                app = expiring_presign_guard(S3RangedReads(_caching_dispatcher_class()(tms.create_backend_app)))
                for middleware in self.middlewares:
                    app = middleware(app)
                handler = tms.MotoRequestHandler if self.log_requests else _QuietMotoRequestHandler
                self._server = tms.make_server(self._ip_address, self._port, app, True, request_handler=handler)
            except BaseException as exc:
                self.startup_error = exc
                self._server_ready_event.set()
                return
            self._server_ready_event.set()
            self._server.serve_forever()

        def stop(self) -> None:
            if self._server is None:
                self._server_ready_event.clear()
                if self._thread is not None:
                    self._thread.join(timeout=5)
                return
            super().stop()
            self._server.server_close()

    return GuardedThreadedMotoServer


def start_moto_server(
    host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False, log_requests: bool = False,
    middlewares: tuple[Callable[[Callable], Callable], ...] = (),
) -> tuple[Any, str]:
    """Start a guarded ``ThreadedMotoServer`` and return ``(server, endpoint_url)``.

    ``port=0`` binds a free port; the real one is read back from the bound socket.
    Sets ``os.environ["MOTO_PORT"]`` to it: moto's Step Functions interpreter calls
    services at ``http://localhost:{MOTO_PORT}``.  Stop with ``server.stop()``.
    ``log_requests`` keeps werkzeug's access log line per request (off: it is very chatty).
    ``middlewares`` wrap the emulator's WSGI app (outermost last), e.g. endpoints moto lacks.
    """
    server = _guarded_server_class()(ip_address=host, port=port, verbose=verbose)
    server.log_requests = log_requests
    server.middlewares = tuple(middlewares)
    server.start()
    if server.startup_error is not None:
        raise RuntimeError(f"moto server could not bind {host}:{port}") from server.startup_error
    bound_host, bound_port = server.get_host_and_port()
    os.environ["MOTO_PORT"] = str(bound_port)
    url_host = "127.0.0.1" if bound_host in ("0.0.0.0", "", "::") else bound_host
    if ":" in url_host:
        url_host = f"[{url_host}]"
    return server, f"http://{url_host}:{bound_port}"
