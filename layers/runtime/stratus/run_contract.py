"""The contract of one run between the API side and the processing container.

PrepareJob (`stratus.domain.runs.RunPreparation`) freezes a `RunSnapshot` in the results bucket and
returns the run's pointers; the state machine (`statemachines/batch_job.asl.json`) hands them to the
Batch job as the `RUN_ENVIRONMENT` variables (the state machine test checks it passes exactly these);
the container reads them with `RunConfig.from_env`, evaluates the snapshot and writes a
`ResultsManifest` last; the results API reads that manifest back. Keys come from `catalog_layout`, S3
reads and writes go through `stratus.adapters.s3_json`.

Plain Python: the domain, the Lambdas and the container all import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from stratus import catalog_layout
from stratus.errors import ProcessGraphInvalidException, ProcessGraphMissingException

# RunConfig field -> the Batch job's environment variable (the state machine's container overrides).
RUN_ENVIRONMENT: dict[str, str] = {
    "job_id": "STRATUS_JOB_ID",
    "run_id": "STRATUS_RUN_ID",
    "graph_key": "STRATUS_GRAPH_KEY",
    "results_prefix": "STRATUS_RESULTS_PREFIX",
}
# A fanned-out run (docs/fanout.md): which step a Batch task runs, on top of RUN_ENVIRONMENT. Without
# RUN_STEP_ENV (or with `run`) the task is the single task of a run, as before the fan-out.
RUN_STEP_ENV = "STRATUS_RUN_STEP"
TILE_ID_ENV = "STRATUS_TILE_ID"  # the tile step: its tile of the run's `plan.json`
# The combine step of a restarted run: the earlier run whose finished tiles this run did not redo.
PREVIOUS_RESULTS_PREFIX_ENV = "STRATUS_PREVIOUS_RESULTS_PREFIX"
RUN_STEP_RUN, RUN_STEP_TILE, RUN_STEP_COMBINE = "run", "tile", "combine"
RUN_STEPS = (RUN_STEP_RUN, RUN_STEP_TILE, RUN_STEP_COMBINE)

# What PrepareJob returns; the state machine keeps it under `$.prepared` and passes it on. The job and
# run ids come from the execution input itself.
PREPARED_FIELDS = ("graph_key", "results_prefix")

# A synchronous request (`POST /result`) is one run, with its request id as the job id.
SYNC_RUN_ID = "sync"

# Key of the snapshot document holding the user-defined processes the graph calls.
USER_PROCESSES_KEY = "user_processes"
# Key of the snapshot document holding what each `load_ml_model` reference resolved to (`domain.ml_models`).
ML_MODELS_KEY = "ml_models"


class RunConfigError(Exception):
    """The container was started without a complete run environment."""


class RunContractError(ValueError):
    """A stored run document does not have the contract's shape."""


@dataclass(frozen=True)
class RunConfig:
    """What one run is about: its ids and where its snapshot and outputs are (results bucket)."""

    job_id: str
    run_id: str
    graph_key: str  # the `RunSnapshot`
    results_prefix: str  # the outputs and, last, the manifest; ends with "/"

    @classmethod
    def for_run(cls, job_id: str, run_id: str) -> RunConfig:
        return cls(job_id, run_id, catalog_layout.graph_key(job_id, run_id),
                   catalog_layout.results_prefix(job_id, run_id))

    @classmethod
    def for_sync(cls, user_id: str, request_id: str) -> RunConfig:
        return cls(request_id, SYNC_RUN_ID, catalog_layout.sync_graph_key(user_id, request_id),
                   catalog_layout.sync_results_prefix(user_id, request_id))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunConfig:
        environ = os.environ if environ is None else environ
        missing = [RUN_ENVIRONMENT[f.name] for f in fields(cls) if not environ.get(RUN_ENVIRONMENT[f.name])]
        if missing:
            raise RunConfigError(f"missing environment variable(s): {', '.join(missing)}")
        config = cls(**{f.name: environ[RUN_ENVIRONMENT[f.name]] for f in fields(cls)})
        if not config.results_prefix.endswith("/"):
            raise RunConfigError(
                f"{RUN_ENVIRONMENT['results_prefix']} must end with '/': {config.results_prefix!r}")
        return config

    def to_env(self) -> dict[str, str]:
        return {RUN_ENVIRONMENT[f.name]: getattr(self, f.name) for f in fields(self)}

    def prepared(self) -> dict[str, str]:
        """PrepareJob's output."""
        return {name: getattr(self, name) for name in PREPARED_FIELDS}

    def to_sync_event(self) -> dict[str, str]:
        """The synchronous processing function's event (`stratus_processing.sync_handler`)."""
        return {"request_id": self.job_id, "graph_key": self.graph_key, "results_prefix": self.results_prefix}

    @classmethod
    def from_sync_event(cls, event: Mapping[str, Any]) -> RunConfig:
        return cls(event["request_id"], SYNC_RUN_ID, event["graph_key"], event["results_prefix"])

    @property
    def manifest_key(self) -> str:
        return catalog_layout.manifest_key(self.results_prefix)


def run_step_of(environ: Mapping[str, str] | None = None) -> str:
    """The step this task runs (`RUN_STEPS`); raises `RunConfigError` for an unknown one or a tile step
    without its tile id."""
    environ = os.environ if environ is None else environ
    step = environ.get(RUN_STEP_ENV) or RUN_STEP_RUN
    if step not in RUN_STEPS:
        raise RunConfigError(f"{RUN_STEP_ENV} is one of {', '.join(RUN_STEPS)}: {step!r}")
    if step == RUN_STEP_TILE and not environ.get(TILE_ID_ENV):
        raise RunConfigError(f"missing environment variable(s): {TILE_ID_ENV}")
    return step


@dataclass(frozen=True)
class RunSnapshot:
    """What a run evaluates: the openEO process object and the user-defined processes it calls, frozen
    when the run was prepared, so a later edit of one does not change a job already running.

    As JSON: the process object with the user-defined processes under `USER_PROCESSES_KEY` (left out
    when there are none)."""

    process: Mapping[str, Any]  # `process_graph`, `parameters`, ...; never its own USER_PROCESSES_KEY
    user_processes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # id -> process_graph, parameters
    ml_models: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # reference -> {"key"} or {"error"}

    def __post_init__(self) -> None:
        frozen_keys = (USER_PROCESSES_KEY, ML_MODELS_KEY)
        if any(key in self.process for key in frozen_keys):  # only ever what was frozen, never a submitted copy
            object.__setattr__(self, "process", {k: v for k, v in self.process.items() if k not in frozen_keys})

    def to_json(self) -> dict[str, Any]:
        document = dict(self.process)
        if self.user_processes:
            document[USER_PROCESSES_KEY] = {pid: dict(p) for pid, p in self.user_processes.items()}
        if self.ml_models:
            document[ML_MODELS_KEY] = {reference: dict(r) for reference, r in self.ml_models.items()}
        return document

    def graphs(self) -> list[Mapping[str, Any]]:
        """The flat process graphs the run evaluates: its own and those of the user-defined processes."""
        return [self.process["process_graph"], *(p["process_graph"] for p in self.user_processes.values())]

    @classmethod
    def from_json(cls, document: Any) -> RunSnapshot:
        """Raises `ProcessGraphMissingException` or `ProcessGraphInvalidException` (openEO errors: the
        run reports them as its failure)."""
        if not isinstance(document, dict) or not isinstance(document.get("process_graph"), dict):
            raise ProcessGraphMissingException()
        user_processes = document.get(USER_PROCESSES_KEY, {})
        if not isinstance(user_processes, dict) or not all(
                isinstance(p, dict) and isinstance(p.get("process_graph"), dict) for p in user_processes.values()):
            raise ProcessGraphInvalidException(
                message="The user-defined processes stored with this run are not valid process definitions.")
        ml_models = document.get(ML_MODELS_KEY, {})
        if not isinstance(ml_models, dict) or not all(isinstance(r, dict) for r in ml_models.values()):
            raise ProcessGraphInvalidException(message="The model references stored with this run are not valid.")
        return cls(document, user_processes, ml_models)


@dataclass(frozen=True)
class ResultsManifest:
    """The run's outputs, written last (`RunConfig.manifest_key`): its presence means every asset it lists
    exists. The processing writes it (`stratus_processing.manifest`), the results API turns it into the
    STAC result documents (`stratus.domain.results`).

    Each asset holds STAC asset fields (`type`, `roles`, `title`, `file:*`, `proj:*`, `raster:*`,
    `eo:bands`, `datetime` or `start_datetime`/`end_datetime`) plus `key`, its key in the results
    bucket, and for a gridded asset its own WGS84 `bbox` and footprint `geometry`."""

    assets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # file name -> asset
    bbox: list[float] | None = None  # WGS84, of all gridded assets
    geometry: dict[str, Any] | None = None  # their common footprint, else the bbox outline
    properties: Mapping[str, Any] = field(default_factory=dict)  # datetime, start/end_datetime, proj:epsg

    def to_json(self) -> dict[str, Any]:
        return {"bbox": self.bbox, "geometry": self.geometry, "properties": dict(self.properties),
                "assets": {name: dict(asset) for name, asset in self.assets.items()}}

    @classmethod
    def from_json(cls, document: Any) -> ResultsManifest:
        """Also reads manifests written before assets carried their own footprint. Raises `RunContractError`."""
        if not isinstance(document, dict):
            raise RunContractError("the results manifest is not a JSON object")
        assets = document.get("assets", {})
        if not isinstance(assets, dict) or not all(
                isinstance(a, dict) and isinstance(a.get("key"), str) for a in assets.values()):
            raise RunContractError("every asset of the results manifest needs a `key`")
        bbox, geometry = document.get("bbox"), document.get("geometry")
        if bbox is not None and not (isinstance(bbox, list) and len(bbox) >= 4):
            raise RunContractError(f"the results manifest's bbox is not a bounding box: {bbox!r}")
        if geometry is not None and not isinstance(geometry, dict):
            raise RunContractError("the results manifest's geometry is not a GeoJSON object")
        properties = document.get("properties", {})
        if not isinstance(properties, dict):
            raise RunContractError("the results manifest's properties are not a JSON object")
        return cls(assets=assets, bbox=bbox, geometry=geometry, properties=properties)


TILE_FINISHED, TILE_ERROR = "finished", "error"


@dataclass(frozen=True)
class TileRecord:
    """What one tile task of a fanned-out run did, written LAST under its tile prefix
    (`catalog_layout.tile_record_key`): its presence means every output it lists exists. The combine
    step, partial results and a restart read it.

    `assets` are in the `ResultsManifest` asset shape (each with its own `bbox`/`geometry`);
    `partials` are the combinable parts of `aggregate_spatial` results (`stratus_processing.partials`),
    `json_outputs` other JSON/vector outputs to merge (file name -> document), `usage` the tile task's
    openEO usage (plus `bytes_read`)."""

    tile_id: str
    status: str  # TILE_FINISHED | TILE_ERROR
    error: Mapping[str, Any] | None = None  # {code, message} for an error
    assets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    partials: Mapping[str, Any] = field(default_factory=dict)
    json_outputs: Mapping[str, Any] = field(default_factory=dict)
    usage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == TILE_FINISHED

    def key(self, results_prefix: str) -> str:
        return catalog_layout.tile_record_key(results_prefix, self.tile_id)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"tile_id": self.tile_id, "status": self.status,
                                    "assets": {name: dict(asset) for name, asset in self.assets.items()},
                                    "partials": dict(self.partials), "json_outputs": dict(self.json_outputs),
                                    "usage": dict(self.usage)}
        if self.error is not None:
            document["error"] = dict(self.error)
        return document

    @classmethod
    def from_json(cls, document: Any) -> TileRecord:
        """Raises `RunContractError`."""
        if not isinstance(document, dict) or not isinstance(document.get("tile_id"), str):
            raise RunContractError("a tile record is a JSON object with a `tile_id`")
        status = document.get("status")
        if status not in (TILE_FINISHED, TILE_ERROR):
            raise RunContractError(f"a tile record's status is {TILE_FINISHED!r} or {TILE_ERROR!r}: {status!r}")
        error = document.get("error")
        if status == TILE_ERROR and not (isinstance(error, dict) and isinstance(error.get("message"), str)):
            raise RunContractError("an error tile record needs an `error` with a `message`")
        assets = document.get("assets", {})
        if not isinstance(assets, dict) or not all(
                isinstance(a, dict) and isinstance(a.get("key"), str) for a in assets.values()):
            raise RunContractError("every asset of a tile record needs a `key`")
        parts = {name: document.get(name, {}) for name in ("partials", "json_outputs", "usage")}
        for name, value in parts.items():
            if not isinstance(value, dict):
                raise RunContractError(f"a tile record's `{name}` is not a JSON object")
        return cls(document["tile_id"], status, error if status == TILE_ERROR else None, assets, **parts)
