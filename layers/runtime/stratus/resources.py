"""The one description of Stratus' AWS resources that both the CDK app and the local runtime read.

Keys of DynamoDB tables live on the PynamoDB models (`stratus.store.models`); everything else a
resource needs to be created identically in AWS and in the embedded emulator lives here.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from stratus import catalog_layout
from stratus.domain.reaper import ReaperPolicy


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


# What a principal may do with a table or with the objects under a key prefix.
READ, WRITE, DELETE = "read", "write", "delete"


@dataclass(frozen=True)
class TableAccess:
    table: str  # key of `stratus.store.models.TABLES`
    modes: frozenset[str]  # READ and/or WRITE (WRITE alone: put/update/delete items without reading them)


@dataclass(frozen=True)
class ObjectAccess:
    bucket: str  # one of BUCKETS
    prefix: str  # key prefix the access is limited to, from `catalog_layout` (`layout_root`); "" is the whole bucket
    modes: frozenset[str]  # READ, WRITE (put) and/or DELETE


def table(key: str, *modes: str) -> TableAccess:
    return TableAccess(key, frozenset(modes))


def objects(bucket: str, prefix: str, *modes: str) -> ObjectAccess:
    return ObjectAccess(bucket, prefix, frozenset(modes))


def layout_root(key_of: Callable[..., str]) -> str:
    """The folder every key of a `catalog_layout` function starts with, whatever the ids: "jobs/" for
    `job_prefix`, "users/" for `user_files_prefix`. Grants are scoped to it, so they follow the layout."""
    arity = len(inspect.signature(key_of).parameters)
    shared = os.path.commonprefix([key_of(*[marker] * arity) for marker in ("a", "b")])
    root = shared[: shared.rfind("/") + 1]
    if not root:
        raise ValueError(f"catalog_layout.{key_of.__name__} has no constant folder to scope a grant to")
    return root


JOBS_ROOT = layout_root(catalog_layout.job_prefix)  # results bucket: job runs, their graphs and results
SYNC_ROOT = layout_root(catalog_layout.sync_prefix)  # results bucket: synchronous requests (POST /result)
USERS_ROOT = layout_root(catalog_layout.user_files_prefix)  # files bucket: the users' workspaces
CONFIG_ROOT = layout_root(catalog_layout.collections_config_key)  # data bucket: the deployment's configuration
COLLECTIONS_CACHE_ROOT = layout_root(catalog_layout.collection_cache_key)  # data bucket: remote collections' metadata
CATALOG_ROOT = f"{catalog_layout.STAC_ROOT}/"  # data bucket: the own collections' static STAC catalog
INDEX_ROOT = layout_root(catalog_layout.index_partition_prefix)  # data bucket: the catalogue index (Parquet)
INGEST_ROOT = catalog_layout.ingest_prefix()  # data bucket: item JSON put here is indexed (S3 event)
WHOLE_BUCKET = ""


@dataclass(frozen=True)
class Access:
    """Everything a principal may touch; the CDK app grants exactly this and nothing else
    (`stratus_infra.access`), and the synth test checks the synthesized policies against it.
    Consuming a queue is not listed here: it follows from `QueueSpec.consumer`."""

    tables: tuple[TableAccess, ...] = ()
    objects: tuple[ObjectAccess, ...] = ()
    secrets: tuple[str, ...] = ()  # keys of SECRETS; read (and the secret's id is put in its setting)
    sends_to: tuple[str, ...] = ()  # keys of QUEUES
    sends_to_dlq_of: tuple[str, ...] = ()  # keys of QUEUES whose DLQ the principal parks rejected messages in
    invokes: tuple[str, ...] = ()  # keys of FUNCTIONS
    # Step Functions actions on the job state machine ("states:StartExecution", "states:DescribeStateMachine")
    # or on its executions ("states:StopExecution", "states:DescribeExecution")
    state_machine: tuple[str, ...] = ()
    # Step Functions actions on the job state machine's Distributed Map: "states:DescribeMapRun" (its map runs),
    # "states:DescribeExecution", "states:StopExecution" (the map's child executions)
    map_runs: tuple[str, ...] = ()
    batch: tuple[str, ...] = ()  # Batch actions: "batch:TerminateJob" (this account's jobs), "batch:ListJobs", ...
    sends_email: bool = False  # from the deployment's SES identity (`Settings.notification_sender`)
    # keys of RESULTS_ROLES the principal may assume (`sts:AssumeRole`); the role's ARN is put in
    # `Settings.results_role_arn`
    assumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function: where its code lives, what it is given and what it may touch."""

    logical_name: str
    code_dir: str  # relative to the repository root
    handler: str  # module.function inside code_dir
    timeout_s: int
    memory_mb: int
    description: str
    # "zip": code_dir is the asset, `module.function` a file in it, the layer supplies `stratus`;
    # "image": the processing container image, `handler` an importable dotted path inside it.
    packaging: str = "zip"
    access: Access = Access()
    layers: tuple[str, ...] = ()  # zip functions: layers besides the runtime layer ("catalogue": DuckDB & co.)


# Secrets Manager secrets the stack creates; their ids reach a function through the `Settings` field named here.
SECRETS: dict[str, str] = {"token": "token_secret_id"}  # the HMAC key of basic-auth tokens and webhook signatures

# Cancel terminates the run's Batch job, found by name (ListJobs has no resource-level permissions).
_CANCELS_BATCH_JOBS = ("batch:TerminateJob", "batch:ListJobs")

FUNCTIONS: dict[str, FunctionSpec] = {
    "api": FunctionSpec(
        "Api", "functions/api", "app.lambda_handler", 29, 1024, "openEO and order-service HTTP API",
        access=Access(
            # users: password rehash; logs: deleted with their job; process_graphs: user-defined processes;
            # services: the order-service catalog; limits: usage slots, quotas, rate limits
            tables=tuple(table(key, READ, WRITE)
                         for key in ("users", "jobs", "logs", "process_graphs", "services", "limits",
                                     "web_services")),
            objects=(
                objects("data", WHOLE_BUCKET, READ),  # the STAC catalog (and the deployment's configuration)
                # manifests and presigned downloads (signed with the function's role); DELETE /jobs/{job_id}
                objects("results", JOBS_ROOT, READ, DELETE),
                objects("results", SYNC_ROOT, READ, WRITE),  # POST /result: the frozen graph in, the result out
                objects("files", USERS_ROOT, READ, WRITE, DELETE),  # the users' workspaces (`/files`)
            ),
            secrets=("token",),
            sends_to=("status", "logs"),  # an invalid order's end; POST /api/v1/logging entries
            invokes=("sync_processing",),
            # start; DELETE /jobs/{id}/results stops the run; the state machine names the run's Batch queue
            state_machine=("states:StartExecution", "states:StopExecution", "states:DescribeStateMachine"),
            batch=_CANCELS_BATCH_JOBS,
            sends_email=True,  # password resets, registration verification
        ),
    ),
    "status": FunctionSpec(
        "StatusConsumer", "functions/status", "app.lambda_handler", 30, 512, "Applies job status events",
        access=Access(
            # a failure event is also written to the job's log; an order's end is mailed to its customer
            tables=(table("jobs", READ, WRITE), table("logs", WRITE), table("users", READ)),
            objects=(objects("results", JOBS_ROOT, READ, DELETE),),  # a canceled or failed run's files are deleted
            sends_to=("webhooks", "ingest"),  # the webhooks of ended orders; finished runs' items to the catalogue
            sends_email=True,
        ),
    ),
    "logging": FunctionSpec(
        "LogConsumer", "functions/logging", "app.lambda_handler", 30, 256, "Stores job log entries",
        access=Access(tables=(table("logs", WRITE),)),
    ),
    "webhooks": FunctionSpec(
        "WebhookSender", "functions/webhooks", "app.lambda_handler", 60, 256, "Delivers signed order webhooks",
        # reads the order (URL, customer), signs with a per-customer key derived from the token key, and
        # notes each outcome in the order's log through the log queue
        access=Access(tables=(table("jobs", READ),), secrets=("token",), sends_to=("logs",)),
    ),
    "prepare_job": FunctionSpec(
        "PrepareJob", "functions/workflow", "app.lambda_handler", 30, 512, "Snapshots a job's process graph for a run",
        # the job and the user-defined processes its graph calls in; the run's graph snapshot out
        access=Access(tables=(table("jobs", READ), table("process_graphs", READ)),
                      objects=(objects("results", JOBS_ROOT, WRITE),)),
    ),
    # PlanRun: the engine plans the run's loads (the STAC search, the grid the tiles compute on: so it runs on
    # the processing image), then the plan and the Distributed Map's items beside the snapshot; a restart reads
    # the last errored run's plan and records
    "plan_run": FunctionSpec(
        "PlanRun", "containers/processing", "stratus_processing.plan_handler.lambda_handler", 300, 2048,
        "Plans a run: one task, one big task or a fan-out over tiles", packaging="image",
        access=Access(objects=(objects("data", WHOLE_BUCKET, READ), objects("results", JOBS_ROOT, READ, WRITE))),
    ),
    "reaper": FunctionSpec(
        "JobReaper", "functions/reaper", "app.lambda_handler", 60, 256, "Ends jobs whose run was lost (scheduled)",
        # reads the jobs' active index, asks the state machine and Batch about runs, stops a run that never
        # found capacity, and ends jobs through the status queue
        access=Access(tables=(table("jobs", READ),), sends_to=("status",),
                      # the history holds a failed run's cause (the Catch's input), for the job's log
                      state_machine=("states:DescribeStateMachine", "states:DescribeExecution",
                                     "states:GetExecutionHistory", "states:StopExecution"),
                      batch=_CANCELS_BATCH_JOBS),
    ),
    # fetches the configured remote collections' metadata into the cache `/collections` reads (4 sources at
    # once, each within a 20 s budget plus redirects: 10 sources take well under a minute)
    "collections_refresh": FunctionSpec(
        "CollectionsRefresh", "functions/collections", "app.lambda_handler", 120, 256,
        "Refreshes the cached metadata of configured remote collections (scheduled)",
        access=Access(objects=(objects("data", CONFIG_ROOT, READ), objects("data", COLLECTIONS_CACHE_ROOT, WRITE))),
    ),
    # The STAC API (`/stac/`), apart from the API function: DuckDB is 66 MB and is imported per search.
    "stac": FunctionSpec(
        "StacApi", "functions/stac", "app.lambda_handler", 29, 2048, "STAC API over the catalogue index",
        access=Access(
            tables=(table("users", READ),),  # the caller behind a bearer token
            # own collections, the configuration, remote collections' metadata, the index; the ingest prefix
            # is not read here
            objects=(objects("data", CATALOG_ROOT, READ), objects("data", CONFIG_ROOT, READ),
                     objects("data", COLLECTIONS_CACHE_ROOT, READ), objects("data", INDEX_ROOT, READ)),
            secrets=("token",),
            sends_to=("ingest",),  # Transactions and harvests
        ),
        layers=("catalogue",),
    ),
    "indexer": FunctionSpec(
        "CatalogIndexer", "functions/indexer", "app.lambda_handler", 120, 2048,
        "Validates and indexes catalogue items in batches",
        access=Access(objects=(objects("data", INDEX_ROOT, READ, WRITE, DELETE), objects("data", INGEST_ROOT, READ)),
                      sends_to_dlq_of=("ingest",)),
        layers=("catalogue",),
    ),
    # Runs small graphs for `POST /result`; the API invokes it so the API itself never imports the
    # raster stack. 25 s leaves the API time to answer inside API Gateway's 29 s.
    "sync_processing": FunctionSpec(
        "SyncProcessing", "containers/processing", "stratus_processing.sync_handler.lambda_handler", 25, 3008,
        "Synchronous openEO processing (POST /result)", packaging="image",
        # the request's folder only through a session of its results role (RESULTS_ROLES)
        access=Access(objects=(objects("data", WHOLE_BUCKET, READ),), assumes=("sync_results",)),
    ),
    # XYZ tiles of job results (`/tiles/...`, openEO secondary web services): the processing image, for rasterio
    "tiles": FunctionSpec(
        "Tiles", "containers/processing", "stratus_processing.tiles_handler.lambda_handler", 10, 1536,
        "XYZ map tiles of job results", packaging="image",
        # tile tokens are checked with each service's own key (in its item), not the deployment's token key
        access=Access(tables=(table("web_services", READ),), objects=(objects("results", JOBS_ROOT, READ),)),
    ),
}

# The catalogue (STAC API and indexer, docs/catalog.md). The indexer takes INGEST_BATCH_SIZE changes or what
# arrived within INGEST_BATCHING_WINDOW_S seconds, whichever comes first (the DaaS rule), and writes one
# Parquet file per collection and batch; a collection of INDEX_COMPACT_AFTER_FILES files is folded into one.
INGEST_BATCH_SIZE = 500
INGEST_BATCHING_WINDOW_S = 5
INDEX_COMPACT_AFTER_FILES = 16
STAC_MAX_INGEST_ITEM_BYTES = 200_000  # one item per SQS message (256 KiB), with room for the envelope
HARVEST_MAX_ITEMS = 10_000  # items one harvest request copies from a remote STAC search
HARVEST_BUDGET_S = 20.0  # seconds a harvest may spend fetching pages (inside the STAC function's 29 s)

QUEUES: dict[str, QueueSpec] = {
    "status": QueueSpec("StatusQueue", visibility_timeout_s=180, max_receive_count=5, batch_size=10,
                        max_batching_window_s=1, consumer="status"),
    "logs": QueueSpec("LogQueue", visibility_timeout_s=180, max_receive_count=5, batch_size=25,
                      max_batching_window_s=2, consumer="logging"),
    # Order webhooks, apart from the status queue so a slow receiver never holds back anyone's status.
    # A batch's records are delivered at the same time: a batch takes one attempt (resolve timeout + budget,
    # ~13 s), well inside the function's 60 s timeout.
    "webhooks": QueueSpec("WebhookQueue", visibility_timeout_s=360, max_receive_count=5, batch_size=4,
                          max_batching_window_s=1, consumer="webhooks"),
    # Catalogue changes (Transactions, S3 events on the ingest prefix, harvests). Invalid items are parked in
    # the DLQ at once with their reason; a batch that cannot be written is retried (3 deliveries).
    "ingest": QueueSpec("IngestQueue", visibility_timeout_s=6 * 120, max_receive_count=3,
                        batch_size=INGEST_BATCH_SIZE, max_batching_window_s=INGEST_BATCHING_WINDOW_S,
                        consumer="indexer"),
}

BUCKETS = ("data", "results", "files")

STATE_MACHINE_FILE = "statemachines/batch_job.asl.json"


@dataclass(frozen=True)
class FanoutPolicy:
    """The job state machine's Distributed Map (`Tiles`): tiles processed at once, the share of failed tiles
    the map tolerates before it fails (either way the combine step publishes what finished and the job
    ends `error` when any tile is missing), and how long the map may take."""

    max_concurrency: int
    tolerated_failure_percentage: float  # written as a decimal: moto's ASL parser refuses an integer
    map_timeout_s: int


# The fan-out planner's tile edges (px): tiles write whole COG blocks; defaults of `Settings`, so that a function
# reads them without importing the planner (and the estimator behind it) at its start.
FANOUT_BLOCK_PX = 512
FANOUT_MIN_TILE_PX = 2048
FANOUT_MAX_TILE_PX = 8192

FANOUT_POLICY = FanoutPolicy(max_concurrency=500, tolerated_failure_percentage=10.0, map_timeout_s=48 * 3600)
FANOUT_MAP_STATE = "Tiles"


def state_machine_definition(text: str) -> str:
    """The ASL file's text with the fan-out policy written into its Distributed Map (CDK and the local
    runtime deploy this; `${...}` substitutions are theirs to fill)."""
    definition = json.loads(text)
    tiles = definition["States"][FANOUT_MAP_STATE]
    tiles["MaxConcurrency"] = FANOUT_POLICY.max_concurrency
    tiles["ToleratedFailurePercentage"] = float(FANOUT_POLICY.tolerated_failure_percentage)
    tiles["TimeoutSeconds"] = FANOUT_POLICY.map_timeout_s
    return json.dumps(definition, indent=2)
# What the job state machine's tasks touch (the ASL comes from a file, so CDK cannot infer it): PrepareJob,
# status events, and the Batch job it submits, waits for (`.sync` describes it) and stops when the run is stopped.
# The Distributed Map starts the machine's own child executions (and describes and stops them and its map
# runs) and reads its items (`tiles.json`) from the run's folder.
STATE_MACHINE_ACCESS = Access(invokes=("prepare_job", "plan_run"), sends_to=("status",),
                              objects=(objects("results", JOBS_ROOT, READ),),
                              state_machine=("states:StartExecution",),
                              map_runs=("states:DescribeMapRun", "states:DescribeExecution", "states:StopExecution"),
                              batch=("batch:SubmitJob", "batch:TagResource", "batch:DescribeJobs",
                                     "batch:TerminateJob"))

# Every Batch job the state machine submits carries the stage's name under this tag, so `batch:TerminateJob` is
# granted on the stage's own jobs only (job ids are random: the tag is what names them), and tagging at
# SubmitJob (`batch:TagResource`) only with that tag and value.
BATCH_JOB_STAGE_TAG = "stratus:stage"

# Names the ASL file uses as ${...} substitutions; CDK and the local runtime both fill exactly these.
STATE_MACHINE_SUBSTITUTIONS = (
    "PrepareJobFunctionArn",
    "PlanRunFunctionArn",
    "StageName",  # the value of every Batch job's BATCH_JOB_STAGE_TAG
    "StatusQueueUrl",
    "JobQueueArn",
    "JobDefinitionArn",
)

# The reaper (`stratus.domain.reaper`) looks at quiet runs this often; its thresholds are in the policy.
REAPER_SCHEDULE_MINUTES = 5
REAPER_POLICY = ReaperPolicy(quiet_after_s=15 * 60, never_started_after_s=10 * 60, runnable_limit_s=60 * 60)

# The metadata of configured remote collections (`stratus.domain.collection_refresh`) is fetched this often
# (and on each deployment); collection documents change rarely (new items do not change them).
COLLECTIONS_REFRESH_SCHEDULE_HOURS = 6

PROCESSING_DOCKERFILE = "containers/processing/Dockerfile"
PROCESSING_COMMAND = ["python", "-m", "stratus_processing"]
PROCESSING_VCPU = 2.0
PROCESSING_MEMORY_MB = 8192  # Fargate: 2 vCPU allows 4-16 GiB
PROCESSING_TIMEOUT_S = 4 * 3600  # a batch job longer than this is a runaway
# The processing job (Batch): input data in, status and log events out; the run's graph snapshot in and its
# results out only through a session of its results role (RESULTS_ROLES).
PROCESSING_ACCESS = Access(objects=(objects("data", WHOLE_BUCKET, READ),), sends_to=("status", "logs"),
                           assumes=("job_results",))

# The roles the processing reaches the results bucket through (docs/operations.md §5). Each is assumable only by
# the principal whose Access `assumes` it, and the processing assumes it with a session policy naming its own
# run's folder (`stratus_processing.run_credentials`): a run's session writes nothing outside it. These are the
# ceilings: what the job role and the sync function were granted directly before.
RESULTS_ROLES: dict[str, Access] = {
    "job_results": Access(objects=(objects("results", JOBS_ROOT, READ, WRITE),)),
    "sync_results": Access(objects=(objects("results", SYNC_ROOT, READ, WRITE),)),
}

TOKEN_SECRET_NAME = "stratus/token-signing-key"
TOKEN_LIFETIME_S = 3600  # an hour, like the openEO reference back-ends

# OpenID Connect through an Amazon Cognito user pool. Machines use the client-credentials grant, which
# Cognito only grants for custom scopes of a resource server; people log in through the hosted UI.
OIDC_PROVIDER_ID = "cognito"
OIDC_PROVIDER_TITLE = "Stratus accounts (Amazon Cognito)"
OIDC_RESOURCE_SERVER = "stratus"
OIDC_OPENEO_SCOPE = "openeo"  # full scope name: "stratus/openeo"
# authorization code with PKCE only: the implicit grant puts tokens into URLs (OAuth 2.0 Security BCP)
OIDC_PUBLIC_CLIENT_GRANTS = ["authorization_code+pkce", "refresh_token"]
OIDC_REDIRECT_URLS = ["https://editor.openeo.org/", "http://localhost:1410/"]  # Web Editor, R client
PRESIGNED_URL_EXPIRY_S = 3600 * 6  # long enough to download large results, short enough to not leak forever

# Job estimates (`GET /jobs/{job_id}/estimate`): a deliberately simple, documented cost model over the
# dry run's data-cube size (items x bands x pixels x 8 bytes, see `stratus.domain.estimate`).
COST_PER_GB_PROCESSED = 0.1  # in the plan's currency (openEO `costs`), per GB of cube values read
# Seconds of Batch time per GB of cube values: a conservative placeholder, not calibrated on AWS. The NDVI
# benchmark measured ~2.7 s/GB on 2 vCPUs locally; the margin covers reprojection, neighbourhoods and S3 latency.
PROCESSING_SECONDS_PER_GB = 20.0
MIN_JOB_DURATION_S = 60  # seconds; container start-up and catalog reads dominate small jobs
ESTIMATE_VALIDITY_S = 24 * 3600  # an estimate holds a day: the catalog may grow

# User workspace (`/files`): one prefix per user in the files bucket (`catalog_layout.user_files_prefix`).
FILES_QUOTA_BYTES = 1024**3  # bytes (1 GiB) per user; enforced on upload, reported by `/me`
# bytes; an upload is the request body of one Lambda invocation: API Gateway caps bodies at 10 MB, but the
# Lambda invocation payload is capped at 6 MB and binary bodies arrive base64-encoded (+1/3), so ~4.4 MB is
# what really fits. Larger bodies are refused (`FileSizeExceeded`) or never reach the function at all.
FILES_MAX_UPLOAD_BYTES = 4_000_000
# bytes; downloads up to this size are answered inline (Lambda's 6 MB response cap, base64 adds a third),
# larger ones with a redirect to a presigned S3 GET.
FILES_INLINE_DOWNLOAD_BYTES = 4_000_000
FILES_MAX_PATH_BYTES = 900  # UTF-8 bytes of a workspace path; S3 keys end at 1024 and the user prefix needs room
# openEO `billing.currency` (GET /): costs and budgets are in abstract credits; openEO requires a
# currency for `costs` to be a number (without one they MUST be null).
BILLING_CURRENCY = "credits"

# Order-service customers (`/api/v1/auth`, `stratus.domain.customers`).
# Scopes a customer gets once its registration is verified, so verify -> token -> order works at once; admins
# revoke them. Any scope also lets a customer use the openEO API; none (or a token narrowed to none) does not.
DEFAULT_CUSTOMER_SCOPES = ["service:ndvi-composite", "service:vegetation-change", "service:zonal-statistics"]
CUSTOMER_PASSWORD_MIN_CHARS = 8
CUSTOMER_PASSWORD_MAX_CHARS = 1024  # hashing cost must stay bounded
PASSWORD_RESET_TTL_S = 3600  # a reset token e-mailed to a customer is valid for an hour
# Self-registration per deployment (`Settings.registration`).
REGISTRATION_VERIFY, REGISTRATION_APPROVAL, REGISTRATION_CLOSED = "verify", "approval", "closed"
REGISTRATION_MODES = (REGISTRATION_VERIFY, REGISTRATION_APPROVAL, REGISTRATION_CLOSED)
REGISTRATION_VERIFY_TTL_S = 24 * 3600  # a verification token e-mailed at registration is valid for a day
# Rate limits: (requests, window in seconds), fixed windows per subject (`stratus.domain.limits`).
REGISTRATIONS_PER_CLIENT = (10, 3600)  # per client IP address
REGISTRATIONS_PER_EMAIL = (3, 3600)  # also bounds the e-mails one address receives
PASSWORD_RESETS_PER_CLIENT = (10, 3600)
PASSWORD_RESETS_PER_EMAIL = (3, 3600)
TOKEN_REQUESTS_PER_ACCOUNT = (60, 60)  # token requests per client id / user name / openEO user, right or wrong
# Lockout: this many wrong passwords or secrets for one account name within the window lock it until the
# window ends, whether the name exists or not (the answer reveals nothing), and a right password is refused too.
LOGIN_FAILURES_BEFORE_LOCKOUT = (5, 900)

# Order-service orders (`/api/v1/services/{service}/orders`, `stratus.domain.orders`).
# An order's area (sum of its polygons, on the sphere) above this is INVALID (AreaTooLarge): ~50 x 50 km,
# far beyond what one Fargate task loads at once for a season of 10 m data.
ORDER_MAX_AREA_KM2 = 2500.0

# Order webhooks (`stratus.domain.webhooks`), delivered from the webhooks queue at least once.
WEBHOOK_CONNECT_TIMEOUT_S = 3.0  # seconds per connection attempt
WEBHOOK_READ_TIMEOUT_S = 5.0  # seconds the receiver may take to answer (per read)
WEBHOOK_BUDGET_S = 10.0  # seconds for one delivery attempt, all of it
# seconds before the second attempt; doubled for each further one (30, 60, 120, 240: ~7.5 min for 5 attempts),
# then the message is parked in the queue's DLQ
WEBHOOK_RETRY_DELAY_S = 30
