"""Names, sizes and limits of the CDK app, in one place (imported by the constructs and the synth tests).

Everything a resource shares with the local runtime (function specs, queue specs, the state machine file,
the processing image) lives in `stratus.resources`; this module only holds what is AWS/CDK specific.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from stratus import resources
from stratus.settings import ENV, Settings

# infra/stratus_infra/constants.py -> the repository root; every path in `stratus.resources` is relative to it.
REPO_ROOT = Path(__file__).resolve().parents[2]

PROJECT_TAG = "stratus"

# --- Lambda ---------------------------------------------------------------------------------------------------
# The layer is built by pip for exactly this interpreter and CPU; the functions must use the same pair.
# The newest Python runtime Lambda and CDK offer, on Graviton (arm64: ~20 % cheaper per GB-second than x86_64 and
# as fast for this I/O-bound code). The code stays 3.11-compatible: the local runtime and the tests run on 3.11.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
LAYER_PYTHON_VERSION = "3.14"
# Wheel platform tags pip may pick. Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34), so wheels for
# manylinux2014 (glibc 2.17) and manylinux_2_28 both load there.
LAYER_PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
LAYER_SOURCE_DIR = "layers/runtime"  # relative to REPO_ROOT; an installable package (pyproject.toml)
LAYER_CONSTRAINTS = "constraints.txt"  # relative to REPO_ROOT; pins the layer's dependencies when present
# Docker image for the bundling fallback that CDK requires to be named; local pip bundling always runs first.
LAYER_FALLBACK_IMAGE = "public.ecr.aws/sam/build-python3.14:latest"

# Left out of every Lambda code asset: bytecode caches and anything test-only.
FUNCTION_ASSET_EXCLUDE = ("__pycache__", "*.pyc", "tests", ".pytest_cache", "*.egg-info")

# Powertools reads this; it is not a `Settings` field because the runtime never reads it itself.
LOG_LEVEL_ENV = "POWERTOOLS_LOG_LEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"  # set on every function when tracing is off

DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_MONTH  # Lambda, API access, Batch and state machine logs

# --- API Gateway ----------------------------------------------------------------------------------------------
API_STAGE_NAME = "api"  # the stage path segment of the invoke URL: https://<id>.execute-api.<region>.amazonaws.com/api/
API_THROTTLING_RATE_LIMIT = 50  # requests per second, steady state, for the whole stage
API_THROTTLING_BURST_LIMIT = 100  # requests, token-bucket size
WAF_MIN_RATE_LIMIT = 10  # requests per 5 minutes: the smallest limit of a WAF rate-based rule

# --- S3 ---------------------------------------------------------------------------------------------------------
DEFAULT_RESULTS_EXPIRY_DAYS = 30  # days after which a job run's graph snapshot and results are deleted
SYNC_RESULTS_EXPIRY_DAYS = 1  # days a synchronous request's (POST /result) files stay: the response carried them
DATA_NONCURRENT_VERSION_EXPIRY_DAYS = 90  # days an overwritten/deleted object of the data bucket stays restorable
ACCESS_LOG_EXPIRY_DAYS = 90  # days S3 server access logs are kept
ABORT_INCOMPLETE_UPLOAD_DAYS = 7  # days before parts of an unfinished multipart upload are removed
PRESIGNED_GET_CORS_MAX_AGE_S = 3600  # seconds browsers may cache the CORS preflight of a presigned download


def results_runs_prefix() -> str:
    """Key prefix under which all job runs live in the results bucket (from `stratus.catalog_layout`)."""
    from stratus import catalog_layout

    marker = "\0"
    prefix = catalog_layout.run_prefix(marker, marker).split(marker, 1)[0]
    if not prefix:
        raise ValueError("catalog_layout.run_prefix has no constant prefix to scope the results lifecycle rule to")
    return prefix


# --- SQS --------------------------------------------------------------------------------------------------------
# `stratus.resources.QUEUES` key -> the `Settings` field holding that queue's URL. The keys do not follow one
# naming rule ("logs" -> "log_queue_url"), so this is spelled out once and checked below.
QUEUE_URL_SETTINGS = {"status": "status_queue_url", "logs": "log_queue_url", "webhooks": "webhook_queue_url",
                      "ingest": "ingest_queue_url"}
# DLQs a function parks messages in itself (`Access.sends_to_dlq_of`): queue key -> `Settings` field of the URL
DLQ_URL_SETTINGS = {"ingest": "ingest_dlq_url"}
DLQ_ALARM_THRESHOLD = 1  # messages: any parked message needs a human

# --- Alarms (`monitoring.py`) ----------------------------------------------------------------------------------
ALARM_PERIOD_MINUTES = 5  # period of the API and Lambda alarms
API_5XX_ALARM_PERCENT = 5  # % of responses in a period; only with API_5XX_ALARM_MIN_REQUESTS requests (noise)
API_5XX_ALARM_MIN_REQUESTS = 20
# p99 latency in ms over API_LATENCY_ALARM_PERIODS periods; POST /result may take up to its 25 s function
# timeout, so a single slow period is normal and the bar sits above ordinary requests, below the 29 s limit
API_LATENCY_P99_ALARM_MS = 10_000
API_LATENCY_ALARM_PERIODS = 3
# p95: ordinary requests (reads, job creation) answer in well under a second warm; 3 s means most are slow
API_LATENCY_P95_ALARM_MS = 3_000
# seconds the oldest message of a queue may wait: status and log events are consumed within seconds; webhook
# deliveries are retried with back-off (30 s doubling, 5 attempts: ~8 min) before they park in the DLQ
QUEUE_AGE_ALARM_S = {"webhooks": 3600}
DEFAULT_QUEUE_AGE_ALARM_S = 900  # any other queue
# SES reviews an account above 5 % bounces or 0.1 % complaints; alarm before that
MAIL_BOUNCE_RATE = 0.04
MAIL_COMPLAINT_RATE = 0.0008
# a user's broken graph fails one execution; several in the window point at Batch, the image or the workflow
FAILED_EXECUTIONS_ALARM_THRESHOLD = 3
FAILED_EXECUTIONS_ALARM_MINUTES = 60

# --- Lambda targets -----------------------------------------------------------------------------------------
# `stratus.resources.FUNCTIONS` key -> the `Settings` field holding its name, for functions others invoke.
FUNCTION_NAME_SETTINGS = {"sync_processing": "sync_function_name"}


# --- Batch ------------------------------------------------------------------------------------------------------
BATCH_MAX_VCPUS = 16  # vCPUs the compute environment may run at once (8 concurrent jobs of PROCESSING_VCPU=2)
# Attempts per job, on-demand and Spot alike; only infrastructure failures are retried (BATCH_RETRY_ON), a failing
# graph fails once: retrying it would only repeat the user's error at the user's cost.
BATCH_RETRY_ATTEMPTS = 3
# `evaluateOnExit` conditions (Batch globs, at most 5 with the catch-all) that mean the host, not the job, failed:
# an EC2 host gone (statusReason "Host EC2 (instance i-...) terminated."), a Spot reclaim, an image pull failure.
BATCH_RETRY_ON_STATUS_REASONS = ("Host EC2*", "*Spot*")
BATCH_RETRY_ON_REASONS = ("CannotPullContainer*",)
VPC_MAX_AZS = 2
# Files of the repository that the processing image build must not see (build context = repository root).
PROCESSING_IMAGE_EXCLUDE = (
    ".git",
    ".gitignore",
    ".venv",
    ".venv-*",  # the stac-api-validator's own environment (conformance)
    ".ci",
    ".pytest_cache",
    ".stratus",
    "node_modules",
    "cdk.out",
    "cdk.json",
    "cdk.context.json",
    "package.json",
    "package-lock.json",
    "Makefile",
    "README.md",
    "requirements-dev.txt",
    "infra",
    "tests",
    "local",
    "benchmarks",
    "functions",
    "statemachines",
    "docs",
    "portal",
    "conformance",
    "test-artifacts",
    "ARCHITECTURE.md",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
    "**/build",
)

# --- Step Functions ---------------------------------------------------------------------------------------------
# The managed EventBridge rule through which Step Functions learns that a Batch job (`.sync`) finished.
BATCH_SYNC_EVENT_RULE = "StepFunctionsGetEventsForBatchJobsRule"


def _check() -> None:
    settings_fields = {f.name for f in fields(Settings)}
    if set(ENV) != settings_fields:
        raise AssertionError(f"stratus.settings.ENV and Settings disagree: {set(ENV) ^ settings_fields}")
    if set(QUEUE_URL_SETTINGS) != set(resources.QUEUES):
        raise AssertionError(f"QUEUE_URL_SETTINGS must cover exactly stratus.resources.QUEUES: {set(resources.QUEUES)}")
    unknown = set(QUEUE_URL_SETTINGS.values()) - settings_fields
    if unknown:
        raise AssertionError(f"QUEUE_URL_SETTINGS names unknown Settings fields: {unknown}")


_check()
