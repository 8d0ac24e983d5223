"""The one description of Stratus' AWS resources that both the CDK app and the local runtime read.

Keys of DynamoDB tables live on the PynamoDB models (`stratus.store.models`); everything else a
resource needs to be created identically in AWS and in the embedded emulator lives here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue with its dead-letter queue and the Lambda event source mapping that drains it."""

    logical_name: str
    visibility_timeout_s: int  # seconds; must exceed the consumer Lambda's timeout (AWS requirement)
    max_receive_count: int  # deliveries before a message is parked in the DLQ
    batch_size: int  # records per consumer invocation
    max_batching_window_s: int  # seconds the mapping waits to fill a batch
    consumer: str  # key into FUNCTIONS
    retention_days: int = 4
    dlq_retention_days: int = 14


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: where its code lives and what it is given."""

    logical_name: str
    code_dir: str  # relative to the repository root
    handler: str  # module.function inside code_dir
    timeout_s: int
    memory_mb: int
    description: str
    # "zip": code_dir is the asset, `module.function` a file in it, the layer supplies `stratus`;
    # "image": the processing container image, `handler` an importable dotted path inside it.
    packaging: str = "zip"


FUNCTIONS: dict[str, FunctionSpec] = {
    "api": FunctionSpec("Api", "functions/api", "app.lambda_handler", 29, 1024, "openEO and order-service HTTP API"),
    "status": FunctionSpec("StatusConsumer", "functions/status", "app.lambda_handler", 30, 512, "Applies job status events"),
    "logging": FunctionSpec("LogConsumer", "functions/logging", "app.lambda_handler", 30, 256, "Stores job log entries"),
    "prepare_job": FunctionSpec(
        "PrepareJob", "functions/workflow", "app.lambda_handler", 30, 512, "Snapshots a job's process graph for a run"
    ),
    # Runs small graphs for `POST /result`; the API invokes it so the API itself never imports the
    # raster stack. 25 s leaves the API time to answer inside API Gateway's 29 s.
    "sync_processing": FunctionSpec(
        "SyncProcessing", "containers/processing", "stratus_processing.sync_handler.lambda_handler", 25, 3008,
        "Synchronous openEO processing (POST /result)", packaging="image",
    ),
}

QUEUES: dict[str, QueueSpec] = {
    "status": QueueSpec("StatusQueue", visibility_timeout_s=180, max_receive_count=5, batch_size=10,
                        max_batching_window_s=1, consumer="status"),
    "logs": QueueSpec("LogQueue", visibility_timeout_s=180, max_receive_count=5, batch_size=25,
                      max_batching_window_s=2, consumer="logging"),
}

BUCKETS = ("data", "results")

STATE_MACHINE_FILE = "statemachines/batch_job.asl.json"

# Names the ASL file uses as ${...} substitutions; CDK and the local runtime both fill exactly these.
STATE_MACHINE_SUBSTITUTIONS = (
    "PrepareJobFunctionArn",
    "StatusQueueUrl",
    "JobQueueArn",
    "JobDefinitionArn",
)

PROCESSING_DOCKERFILE = "containers/processing/Dockerfile"
PROCESSING_COMMAND = ["python", "-m", "stratus_processing"]
PROCESSING_VCPU = 2.0
PROCESSING_MEMORY_MB = 8192  # Fargate: 2 vCPU allows 4-16 GiB
PROCESSING_TIMEOUT_S = 4 * 3600  # a batch job longer than this is a runaway

TOKEN_SECRET_NAME = "stratus/token-signing-key"
TOKEN_LIFETIME_S = 3600  # an hour, like the openEO reference back-ends
PRESIGNED_URL_EXPIRY_S = 3600 * 6  # long enough to download large results, short enough to not leak forever
