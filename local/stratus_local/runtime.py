"""The whole Stratus system in one local process: embedded AWS (moto server), the Lambda and Batch
seams, the resources, the demo data and user, the API Gateway front and the SQS pollers."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from stratus import aws, catalog_layout, collections_config, resources
from stratus.admin import index_own_collections
from stratus.backend import Backend
from stratus.settings import ENV, Settings
from stratus.store import models
from stratus_local import moto_seams
from stratus_local.api_front import ApiGatewayFront, HttpServer, PathRouter
from stratus_local.batch_workers import WorkerSlots
from stratus_local.cognito_oauth import CognitoOAuthEndpoints
from stratus_local.provision import ACCOUNT
from stratus_local.ses_inbox import SesInbox
from stratus_local.portal_front import PortalFront
from stratus_local.demo_data import generate_demo_collection
from stratus_local.handlers import REPO_ROOT, handler_for_function_name, load_handler, local_function_name
from stratus_local.provision import Provisioned, provision
from stratus_local.sqs_poller import SqsPoller

log = logging.getLogger("stratus_local")

REGION = "eu-central-1"
SETTINGS_FROM_ENV = ("allowed_private_hosts", "registrations_per_client_per_hour", "fanout_min_tile_px", "fanout_max_tile_px", "fanout_tile_block_px",
                     "fanout_task_load_bytes")
# Batch jobs (the one task of a run, or its tiles) that run at once as local processes
BATCH_WORKERS_ENV = "STRATUS_LOCAL_BATCH_WORKERS"
DEFAULT_BATCH_WORKERS = 2
DEMO_USER = "demo"
STAC_PREFIX = "/stac"  # API Gateway routes it to the STAC function (infra: `stratus_infra.catalogue`)
DEFAULT_COLLECTIONS = REPO_ROOT / "infra" / "collections" / "default.json"
DEMO_ADMIN_EMAIL = "admin@stratus.example"  # the order service's administrator (scope `admin`)

# Fake credentials: the emulator accepts anything, and real ones must never be picked up by accident.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
    "POWERTOOLS_SERVICE_NAME": "stratus",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    # moto's EC2 backend (behind Batch) would parse thousands of AMIs per region; Fargate needs none
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@dataclass
class LocalOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    moto_port: int = 0  # 0: any free port
    with_demo_data: bool = True
    demo_password: str | None = None
    retry_delay_s: int | None = 2  # local shortcut for failed SQS records; None: the queue's visibility timeout
    reaper_interval_s: float = resources.REAPER_SCHEDULE_MINUTES * 60  # like its schedule in AWS; 0: off
    # the collections configuration written to the data bucket (as CDK does); None: none (own collections only)
    collections: "os.PathLike | str | None" = DEFAULT_COLLECTIONS
    # the metadata refresh runs at start (in the background: an unreachable source, e.g. Earth Search offline,
    # never delays the start or `/collections`) and then this often, like its schedule in AWS; 0: never
    collections_refresh_interval_s: float = resources.COLLECTIONS_REFRESH_SCHEDULE_HOURS * 3600
    # Batch jobs running at once as local processes (the machine's capacity; the map's MaxConcurrency is above)
    batch_workers: int = field(default_factory=lambda: int(os.environ.get(BATCH_WORKERS_ENV) or DEFAULT_BATCH_WORKERS))


@dataclass
class LocalStratus:
    options: LocalOptions = field(default_factory=LocalOptions)
    settings: Settings | None = None
    provisioned: Provisioned | None = None
    endpoint_url: str = ""
    api_url: str = ""
    demo_password: str = ""
    admin_client: tuple[str, str] = ("", "")  # the order-service admin's client id and secret
    demo_summary: dict[str, Any] | None = None
    _moto: Any = None
    _http: HttpServer | None = None
    _pollers: list[SqsPoller] = field(default_factory=list)
    _processes: list[subprocess.Popen] = field(default_factory=list)
    _batch_workers: WorkerSlots = field(default_factory=lambda: WorkerSlots(DEFAULT_BATCH_WORKERS))
    _reaper: "_Schedule | None" = None
    _collections_refresh: "_Schedule | None" = None

    def start(self) -> "LocalStratus":
        started = time.monotonic()
        os.environ.update(LOCAL_AWS_ENV)
        moto_seams.enable_stepfunctions_execution()
        moto_seams.install_dynamodb_atomic_writes()
        cognito = lambda: aws.client("cognito-idp")  # noqa: E731 (called per token request, after start)
        self._moto, self.endpoint_url = moto_seams.start_moto_server(
            self.options.host, self.options.moto_port,
            middlewares=(lambda app: CognitoOAuthEndpoints(app, cognito),
                         lambda app: SesInbox(app, ACCOUNT, REGION)))
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
        aws.reset_clients()
        moto_seams.install_lambda_seam(lambda info: handler_for_function_name(info.function_name))
        self._batch_workers = WorkerSlots(self.options.batch_workers)
        moto_seams.install_batch_seam(self._run_batch_job)

        session = boto3.session.Session(region_name=REGION)
        # the settings taken from the environment: private hosts an operator (or a test) lets webhooks reach, and
        # the fan-out planner's tile bounds and task budget (small tiles for tests and local runs)
        base = Settings.from_env({ENV[name]: os.environ[ENV[name]] for name in SETTINGS_FROM_ENV
                                  if os.environ.get(ENV[name])})
        self.provisioned = provision(session, base, oidc_issuer_base=self.endpoint_url)
        self.settings = self.provisioned.settings
        os.environ.update(self.settings.as_env())
        models.configure(self.settings)

        self._store_collections_config()
        if self.options.with_demo_data:
            self.demo_summary = generate_demo_collection(aws.client("s3"), self.settings.data_bucket)
            index_own_collections(Backend(self.settings))
        self.demo_password = self.options.demo_password or secrets.token_urlsafe(12)
        self._create_demo_user()

        for key, spec in resources.QUEUES.items():
            function = resources.FUNCTIONS[spec.consumer]
            poller = SqsPoller(aws.client("sqs"), self.provisioned.queue_urls[key], self.provisioned.queue_arns[key],
                               spec, load_handler(function), local_function_name(spec.consumer),
                               retry_delay_s=self.options.retry_delay_s)
            poller.start()
            self._pollers.append(poller)

        if self.options.reaper_interval_s > 0:
            self._reaper = _Schedule(self.options.reaper_interval_s, load_handler(resources.FUNCTIONS["reaper"]),
                                     local_function_name("reaper"))
            self._reaper.start()

        if self.options.collections and self.options.collections_refresh_interval_s > 0:
            self._collections_refresh = _Schedule(
                self.options.collections_refresh_interval_s, load_handler(resources.FUNCTIONS["collections_refresh"]),
                local_function_name("collections_refresh"), run_at_start=True)
            self._collections_refresh.start()

        api_spec = resources.FUNCTIONS["api"]
        front = ApiGatewayFront(load_handler(api_spec), local_function_name("api"), api_spec.timeout_s)
        tiles_spec = resources.FUNCTIONS["tiles"]
        # loaded on the first tile: the raster stack's import stays out of the start
        tiles = ApiGatewayFront(lambda event, context: load_handler(tiles_spec)(event, context),
                                local_function_name("tiles"), tiles_spec.timeout_s)
        stac_spec = resources.FUNCTIONS["stac"]
        stac_front = ApiGatewayFront(load_handler(stac_spec), local_function_name("stac"), stac_spec.timeout_s)
        self._http = HttpServer(PathRouter(PortalFront(front, tiles), {STAC_PREFIX: stac_front}), self.options.host,
                                self.options.port)
        self._http.start()
        self.api_url = f"http://{self.options.host}:{self._http.port}"
        self.startup_seconds = time.monotonic() - started
        return self

    def _store_collections_config(self) -> None:
        """The chosen configuration, validated, at its key in the data bucket (what the CDK stack deploys)."""
        if not self.options.collections:
            return
        collections_config.load(self.options.collections)  # an invalid file stops the start with its reason
        with open(self.options.collections, "rb") as config_file:
            aws.client("s3").put_object(Bucket=self.settings.data_bucket, Key=catalog_layout.collections_config_key(),
                                        Body=config_file.read(), ContentType="application/json")

    def _create_demo_user(self) -> None:
        # imported late: the API function's domain code, used exactly as the Lambda uses it
        from stratus.backend import Backend

        backend = Backend(self.settings)
        backend.auth.create_user(DEMO_USER, self.demo_password, name="Demo user")
        self.admin_client = backend.customers.ensure_admin(DEMO_ADMIN_EMAIL, self.demo_password,
                                                           name="Demo administrator")

    def _run_batch_job(self, job: "moto_seams.BatchJobSpec") -> subprocess.Popen:
        """Runs the processing container's entrypoint as a local process with the job's command and env, when
        one of the machine's `STRATUS_LOCAL_BATCH_WORKERS` is free (the job waits in STARTING until then, as a
        Batch job waits for capacity): 16 tiles on 2 cores do not start 16 engines at once. The process runs on
        its worker's share of the cores, at a lower priority than the local system (`batch_workers`)."""
        command = list(job.command)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable  # the container's interpreter is this virtualenv's
        env = {**os.environ, **job.environment}
        slot = self._batch_workers.acquire()
        try:
            process = subprocess.Popen(command, env=env)
        except BaseException:
            self._batch_workers.release(slot)
            raise
        self._batch_workers.pin(process.pid, slot)
        self._batch_workers.yield_to_local_system(process.pid)
        self._processes.append(process)
        threading.Thread(target=self._free_worker_when_done, args=(process, slot), daemon=True,
                         name=f"batch-worker-{job.job_id}").start()
        return process

    def _free_worker_when_done(self, process: subprocess.Popen, slot: frozenset[int] | None) -> None:
        try:
            process.wait()
        finally:
            self._batch_workers.release(slot)

    def stop(self) -> None:
        for schedule in (self._reaper, self._collections_refresh):
            if schedule is not None:
                schedule.stop()
        for poller in self._pollers:
            poller.stop()
        if self._http:
            self._http.stop()
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        if self._moto:
            self._moto.stop()


class _Schedule:
    """An EventBridge schedule's stand-in: calls a handler with a scheduled event every `interval_s` (and at
    once with `run_at_start`, as a deployment's first run)."""

    def __init__(self, interval_s: float, handler: Any, function_name: str, *, run_at_start: bool = False) -> None:
        self._interval_s = interval_s
        self._run_at_start = run_at_start
        self._handler = handler
        self._function_name = function_name
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{function_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        if self._run_at_start:
            self._run()
        while not self._stopped.wait(self._interval_s):
            self._run()

    def _run(self) -> None:
        from stratus_local.lambda_context import LocalLambdaContext

        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        try:
            self._handler(event, LocalLambdaContext(function_name=self._function_name))
        except Exception:  # a failed run is retried at the next tick, as on AWS
            log.exception("scheduled %s failed", self._function_name)
