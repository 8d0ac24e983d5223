"""Runs one run of a job: snapshot in (S3), events out (SQS), outputs and manifest out (S3); the
pointers, the snapshot and the manifest are `stratus.run_contract`'s.

Contract with the state machine (statemachines/batch_job.asl.json) and the API:
- status `running` with progress 0 first, then progress while evaluating; never `finished` (the
  state machine sends it once Batch reports success);
- outputs under the run's results prefix, the manifest written LAST;
- on failure one error log entry (readable reason, openEO code, failing node path), then status
  `error` with the same reason, and a non-zero exit code; the traceback goes to the container's own
  log (operators) and, only for an internal error, to the entry's `data` without server paths;
- the openEO `usage` of the run (CPU seconds, memory in MB-seconds, wall time, peak memory) on the
  last `running` event (progress 100) or on the `error` event: the status consumer stores it on the
  job whatever order the events arrive in.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any

from stratus import aws
from stratus.adapters.s3_json import read_json
from stratus.errors import OpenEOApiException, ProcessGraphInvalidException, ProcessGraphMissingException
from stratus import events
from stratus.events import EventPublisher, JobStatus, LogLevel
from stratus.run_contract import RunConfig, RunSnapshot
from stratus.settings import Settings

import stratus_processing.processes  # noqa: F401  (registers the process implementations)
from stratus_processing import cube as cubes
from stratus_processing.deferred import parquet_index
from stratus_processing.env import EvalEnv
from stratus_processing.errors import describe_failure, node_path
from stratus_processing.graph import ProcessGraph, evaluate_process
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.save import save_geotiff, save_json
from stratus_processing.io.sources import ConfiguredCatalog, secrets_manager_headers
from stratus_processing.io.stac import DocumentReader, S3JsonStore
from stratus_processing.manifest import build_manifest
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry
from stratus_processing.results import S3ResultStore
from stratus_processing.run_credentials import ResultsAccess, SharedResults, reading_models
from stratus_processing.tiling import run_tiled

logger = logging.getLogger("stratus_processing")

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed; the reason is in the job log and status
EXIT_MISCONFIGURED = 2  # the container was started without its run environment; no events possible

# Progress (percent) the evaluation spans: 0 is sent at start, the rest is writing the manifest.
_EVALUATION_PROGRESS = (5.0, 95.0)
_MIN_PROGRESS_STEP = 5.0  # percent; fewer, meaningful status events rather than one per node
# SQS messages are limited to 256 KiB; a traceback longer than this (characters) keeps its end,
# where the error is.
MAX_TRACEBACK_CHARS = 64_000


class EventReporter:
    """Sends the engine's log entries and progress as job events (and mirrors them to stdout,
    which ends up in CloudWatch)."""

    def __init__(self, publisher: EventPublisher, job_id: str, run_id: str) -> None:
        self._publisher = publisher
        self._job_id = job_id
        self._run_id = run_id
        self._last_percent = 0.0

    def log(self, message: str, *, level: LogLevel = LogLevel.INFO,
            path: list[dict[str, Any]] | None = None, data: Any = None, code: str | None = None) -> None:
        logger.log(logging.ERROR if level == LogLevel.ERROR else logging.INFO, message)
        self._publisher.log(events.LogEvent(job_id=self._job_id, level=level, message=message, path=path,
                                            data=data, code=code))

    def progress(self, fraction: float) -> None:
        low, high = _EVALUATION_PROGRESS
        percent = round(low + (high - low) * min(max(fraction, 0.0), 1.0))
        if percent - self._last_percent >= _MIN_PROGRESS_STEP:
            self.status(JobStatus.RUNNING, progress=percent)

    def status(self, status: JobStatus, *, progress: float | None = None, reason: str | None = None,
               usage: dict[str, Any] | None = None, error_code: str | None = None) -> None:
        if progress is not None:
            self._last_percent = progress
        self._publisher.status(events.StatusEvent(job_id=self._job_id, run_id=self._run_id, status=status,
                                                  progress=progress, reason=reason, usage=usage,
                                                  error_code=error_code))


def run_job(config: RunConfig, settings: Settings, *, s3: Any, publisher: EventPublisher, rasters: RasterReader,
            registry: ProcessRegistry = DEFAULT_REGISTRY, results: ResultsAccess | None = None) -> int:
    """Run the job; returns the process exit code. Never raises for a failing graph. `s3` reads the input data;
    `results` gives the run's results-bucket client (default: `s3` too)."""
    with UsageMeter() as meter:
        return _run(config, settings, meter, s3=s3, publisher=publisher, rasters=rasters, registry=registry,
                    results=results or SharedResults(s3))


def _run(config: RunConfig, settings: Settings, meter: UsageMeter, *, s3: Any, publisher: EventPublisher,
         rasters: RasterReader, registry: ProcessRegistry, results: ResultsAccess) -> int:
    reporter = EventReporter(publisher, config.job_id, config.run_id)
    reporter.status(JobStatus.RUNNING, progress=0)
    try:
        results_s3 = results.client(config)
        snapshot = load_snapshot(results_s3, settings.results_bucket, config.graph_key)
        graph = ProcessGraph(snapshot.process["process_graph"])
        process_ids = sorted({node.process_id for node in graph.nodes.values()})
        reporter.log(f"Process graph loaded: {len(graph)} nodes ({', '.join(process_ids)})")

        results_s3 = reading_models(results, config, snapshot, results_s3)
        store = S3ResultStore(results_s3, settings.results_bucket, config.results_prefix)
        env = EvalEnv(catalog=engine_catalog(settings, s3),
                      rasters=rasters, results=store, reporter=reporter,
                      user_processes=snapshot.user_processes, ml_models=snapshot.ml_models)
        evaluate(snapshot.process, env, registry=registry)

        manifest_key = store.write_manifest(build_manifest(store.assets))
        reporter.log(f"Results complete: {len(store.assets)} file(s), manifest at {manifest_key}")
        reporter.status(JobStatus.RUNNING, progress=100, usage=meter.usage())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - every failure must reach the job log and status
        report_failure(reporter, exc, usage=meter.usage())
        return EXIT_FAILED


def engine_catalog(settings: Settings, s3: Any) -> ConfiguredCatalog:
    """The catalog every step of a run reads (the single task, PlanRun, tiles, combine): own collections through
    the catalogue index, configured remote ones through the outbound guard."""
    documents = DocumentReader(s3_client=s3, s3_buckets=[settings.data_bucket], allow=settings.outbound_allow_list)
    return ConfiguredCatalog(S3JsonStore(s3, settings.data_bucket), documents=documents,
                             secret_headers=secrets_manager_headers(lambda: aws.client("secretsmanager")),
                             protected_buckets=[settings.results_bucket, settings.files_bucket],
                             index=catalogue_index(s3, settings.data_bucket))


@functools.lru_cache(maxsize=4)
def catalogue_index(s3: Any, bucket: str) -> parquet_index.ParquetIndex:
    """One per process and bucket, as in the catalogue's functions: its DuckDB connection (~50 ms) and its local
    copies of the index files serve every run a warm sync function or a Batch task makes."""
    return parquet_index.ParquetIndex(s3, bucket)


def evaluate(process: dict[str, Any], env: EvalEnv, *, registry: ProcessRegistry = DEFAULT_REGISTRY,
             tiling: bool = True, tile_size: int | None = None) -> None:
    """Evaluate the process into `env.results`: tile by tile when every process is pixel-local
    (`tiling`: memory bounded by the tile), else (or with `tiling=False`) on the whole cube at once.
    A graph without save_result has its result saved as GTiff (a raster cube) or JSON (anything else:
    numbers, arrays, vector cubes), as the reference back-ends do for `POST /result`."""
    if tiling:
        tiled = run_tiled(process, env, registry=registry, tile_size=tile_size)
        if tiled.ran:
            return
        env.reporter.log(f"Evaluating the whole cube at once: {tiled.reason}")
    store = env.require_results()
    result = evaluate_process(process, env, registry=registry)
    if not store.assets:
        if cubes.is_cube(result):
            env.reporter.log("The process graph has no save_result: saving the result as GTiff")
            save_geotiff(result, store)
        else:
            env.reporter.log("The process graph has no save_result: saving the result as JSON")
            save_json(result, store)


def load_snapshot(s3: Any, bucket: str, key: str) -> RunSnapshot:
    """What PrepareJob froze for this run."""
    try:
        document = read_json(s3, bucket, key)
    except ValueError as exc:
        raise ProcessGraphInvalidException(message=f"The stored process graph is not valid JSON: {exc}") from exc
    if document is None:
        raise ProcessGraphMissingException(message=f"The process graph of this run is missing (s3://{bucket}/{key}).")
    return RunSnapshot.from_json(document)


def report_failure(reporter: Any, exc: BaseException, *, usage: dict[str, Any] | None = None,
                   send_status: bool = True) -> None:
    """One error log entry, then (`send_status`; a fanned-out run's tile does not) the error status
    with the same reason (and the run's `usage` so far).

    A user's error (a 4xx openEO error: their graph, their data) is their message only; the engine's
    traceback goes to the container's own log for operators. An internal error also gives users the
    traceback to report, with paths relative to the code's packages."""
    reason = describe_failure(exc)
    code = exc.code if isinstance(exc, OpenEOApiException) else None
    logger.error("Job failed: %s\n%s", reason, _clipped("".join(traceback.format_exception(exc))))
    data = None if is_user_error(exc) else {"traceback": _clipped(traceback_without_server_paths(exc))}
    try:
        reporter.log(reason, level=LogLevel.ERROR, path=node_path(exc), data=data, code=code)
    except Exception:
        logger.exception("Could not send the error log event")
    if not send_status:
        return
    try:
        reporter.status(JobStatus.ERROR, reason=reason, usage=usage, error_code=code)
    except Exception:
        logger.exception("Could not send the error status event")


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, OpenEOApiException) and 400 <= exc.status_code < 500


def traceback_without_server_paths(exc: BaseException) -> str:
    """The traceback with each file named from its import root (`stratus_processing/graph.py`), not
    where this server installed it."""
    roots = sorted({os.path.join(os.path.abspath(entry), "") for entry in [*sys.path, *_package_parents()] if entry},
                   key=len, reverse=True)
    summary = traceback.TracebackException.from_exception(exc)
    for chained in _chain(summary):
        for frame in chained.stack:
            frame.filename = _relative_to_roots(frame.filename, roots)
    return "".join(summary.format())


def _package_parents() -> list[str]:
    """Where imported top-level packages live: editable installs import from there without a `sys.path`
    entry."""
    parents = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if "." not in name and path and os.path.basename(path) == "__init__.py":
            parents.append(os.path.dirname(os.path.dirname(path)))
    return parents


def _chain(summary: traceback.TracebackException) -> list[traceback.TracebackException]:
    seen: list[traceback.TracebackException] = []
    pending = [summary]
    while pending:
        current = pending.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        pending.extend(linked for linked in (current.__cause__, current.__context__) if linked is not None)
    return seen


def _relative_to_roots(filename: str, roots: list[str]) -> str:
    path = os.path.abspath(filename)
    for root in roots:
        if path.startswith(root):
            return path[len(root):]
    return os.path.basename(filename)  # outside every import root: no directory at all


def _clipped(trace: str) -> str:
    return trace if len(trace) <= MAX_TRACEBACK_CHARS else "…" + trace[-MAX_TRACEBACK_CHARS:]


class UsageMeter:
    """Measures a run for openEO `usage`: wall time, CPU time (this process and its children, since the
    start), memory integrated over time (MB-seconds, from the resident set size sampled every
    `interval_s`) and the peak resident memory.

    Use as a context manager; `usage()` may be called any number of times while it runs.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = self._last = 0.0
        self._cpu_at_start = 0.0
        self._mb_seconds = 0.0
        self._last_mb = self._peak_mb = 0.0

    def __enter__(self) -> UsageMeter:
        self._started = self._last = time.monotonic()
        self._cpu_at_start = _cpu_seconds()
        self._last_mb = self._peak_mb = _resident_mb()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="usage-meter", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        now, resident = time.monotonic(), _resident_mb()
        with self._lock:
            # trapezoids between samples: the resident size moves gradually, not in steps
            self._mb_seconds += (now - self._last) * (self._last_mb + resident) / 2
            self._last, self._last_mb = now, resident
            self._peak_mb = max(self._peak_mb, resident)

    def usage(self) -> dict[str, Any]:
        """openEO batch job `usage` (units as in the openEO API's example)."""
        self._sample()
        with self._lock:
            duration, mb_seconds, peak = self._last - self._started, self._mb_seconds, self._peak_mb
        return {
            "cpu": {"value": round(max(_cpu_seconds() - self._cpu_at_start, 0.0), 3), "unit": "cpu-seconds"},
            "memory": {"value": round(mb_seconds, 1), "unit": "mb-seconds"},
            "duration": {"value": round(duration, 3), "unit": "seconds"},
            "max_memory": {"value": round(peak, 1), "unit": "mb"},
        }


def _cpu_seconds() -> float:
    """User and system CPU time of this process (all threads) and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MB = 1024 * 1024  # "mb" as in Fargate's and Lambda's memory sizes (MiB)


def _resident_mb() -> float:
    """The current resident set size in MB (from /proc on Linux; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES / _MB
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / _MB if sys.platform == "darwin" else peak / 1024
