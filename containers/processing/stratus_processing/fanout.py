"""The tile step of a fanned-out run (docs/fanout.md): one Batch task evaluates the run's snapshot on
its tile of the output grid and writes the tile's outputs and, last, its `TileRecord`.

The tile's outputs are pixel for pixel that window of the single task's outputs:
- a pixel-local graph runs through the in-task tiling (`tiling.run_tiled`) restricted to the window;
- any other graph the planner splits (neighbourhoods, resampling, `aggregate_spatial`) is evaluated
  once on the window plus its halo (`EvalEnv.tile`: the loads read just that part of the grid
  planned for the whole run); raster outputs are cropped to the window, `aggregate_spatial` keeps
  the parts of each geometry's statistics over the window's pixels (`partials`), and vector outputs
  are left to the combine step (`combine`), which writes them from the parts of all tiles.

Events: log entries prefixed with the tile id, `running` at the start and, once its record is written, `running`
with the run's progress (the share of its tiles with a record, `run_progress`); never `finished` or `error` for
the job (the combine step and the state machine decide those). A failing graph gives an
`error` record and exit code 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from stratus import catalog_layout
from stratus.adapters.s3_json import read_json, write_json
from stratus.domain.fanout_plan import Tile, TileManifest
from stratus.errors import InternalException, OpenEOApiException
from stratus.events import EventPublisher, JobStatus, LogLevel
from stratus.file_formats import GTIFF
from stratus.run_contract import TILE_ERROR, TILE_FINISHED, RunConfig, RunContractError, TileRecord
from stratus.settings import Settings
from stratus.tiling_rules import SAVE_PROCESS

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import describe_failure
from stratus_processing.frozen_loads import loads_from_json
from stratus_processing.graph import ProcessGraph, evaluate_graph, numeric_conventions
from stratus_processing.grid import Grid
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.load import LoadPlan
from stratus_processing.io.save import write_env
from stratus_processing.manifest import build_manifest
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry
from stratus_processing.results import ResultStore, S3ResultStore
from stratus_processing.run_credentials import ResultsAccess, SharedResults, reading_models
from stratus_processing.tiling import (
    IMPLICIT_OUTPUT,
    TileOutputs,
    parameter_defaults,
    plan_loads,
    run_tiled,
    tiling_obstacle,
    window_grid,
)
from stratus_processing.vector_cube import is_vector_cube

logger = logging.getLogger("stratus_processing")

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass
class FanoutStep:
    """What a process sees of a fanned-out run (`EvalEnv.fanout`)."""

    combining: bool = False  # the combine step (else a tile step)
    window: Grid | None = None  # a tile step: the tile's window of the output grid (what it writes)
    origin: tuple[int, int] = (0, 0)  # a tile step: (row, col) of the window in the output grid
    # aggregate_spatial node id -> its parts: written by a tile step (JSON), read by the combine step
    # (with the merged `partials.Parts` under "parts")
    partials: dict[str, Any] = field(default_factory=dict)


class TileLogReporter:
    """The run's reporter for one tile: every entry names the tile, progress is not reported (the
    tiles of a run finish in any order: the map run counts them)."""

    def __init__(self, reporter: Any, tile_id: str) -> None:
        self._reporter = reporter
        self.tile_id = tile_id

    def log(self, message: str, *, level: LogLevel = LogLevel.INFO, path: list[dict[str, Any]] | None = None,
            data: Any = None, code: str | None = None) -> None:
        self._reporter.log(f"tile {self.tile_id}: {message}", level=level, path=path, data=data, code=code)

    def progress(self, fraction: float) -> None:
        pass


def read_plan(s3: Any, bucket: str, results_prefix: str) -> TileManifest:
    document = read_json(s3, bucket, catalog_layout.plan_key(results_prefix))
    if document is None:
        raise InternalException(message=f"The tile plan of this run is missing "
                                        f"({catalog_layout.plan_key(results_prefix)}).")
    try:
        return TileManifest.from_json(document)
    except RunContractError as exc:
        raise InternalException(message=f"The tile plan of this run is not valid: {exc}") from exc


def tile_of(manifest: TileManifest, tile_id: str) -> Tile:
    for tile in manifest.tiles:
        if tile.tile_id == tile_id:
            return tile
    raise InternalException(message=f"The tile plan of this run has no tile '{tile_id}'.")


def evaluate_tile(process: dict[str, Any], env: EvalEnv, manifest: TileManifest, tile: Tile, *,
                  registry: ProcessRegistry = DEFAULT_REGISTRY,
                  frozen: Mapping[str, LoadPlan] | None = None) -> dict[str, Any]:
    """Evaluate `process` on `tile` into `env.results`; returns the aggregate_spatial parts. `frozen`: the
    run's load plans as PlanRun made them (else the step plans the loads itself)."""
    fanout = FanoutStep(origin=(tile.window.row_off, tile.window.col_off))
    env = replace(env, fanout=fanout)
    graph = ProcessGraph(process["process_graph"])
    if tiling_obstacle(graph) is None:
        try:
            tiled = run_tiled(process, env, registry=registry, window=tuple(tile.window.to_json()),
                              grid_size=(manifest.grid_width, manifest.grid_height), frozen=frozen)
        except ValueError as exc:  # the plan's grid is not the one the loads give
            raise InternalException(message=f"The tile plan does not fit the run's grid: {exc}") from exc
        if tiled.ran:
            return fanout.partials
        env.reporter.log(f"Evaluating the tile at once: {tiled.reason}")
    planned = plan_loads(process, env, registry=registry, frozen=frozen)
    if isinstance(planned, str):
        raise InternalException(message=f"This graph cannot be evaluated by tile: {planned}")
    context, grid = planned
    if (grid.width, grid.height) != (manifest.grid_width, manifest.grid_height):
        raise InternalException(message=f"The tile plan is for a {manifest.grid_width} × {manifest.grid_height} px "
                                        f"grid, the run's loads give {grid.width} × {grid.height} px.")
    fanout.window = window_grid(grid, *tile.window.to_json())
    read_grid = window_grid(grid, *tile.read_window.to_json())
    outputs = TileOutputs(env.require_results(), fanout.window, env.reporter)
    tile_env = replace(env, tile=replace(context, grid=read_grid, outputs=outputs))
    env.reporter.log(f"Evaluating the {tile.window.width} × {tile.window.height} px tile with a halo of "
                     f"{tile.halo.to_json()} px (left, top, right, bottom)")
    try:
        with numeric_conventions(), write_env():
            result = evaluate_graph(process["process_graph"], tile_env, registry=registry,
                                    arguments=parameter_defaults(process))
            if not any(node.process_id == SAVE_PROCESS for node in graph.nodes.values()):
                if cubes.is_cube(result):
                    outputs.write(IMPLICIT_OUTPUT, GTIFF, {}, result)
                elif not is_vector_cube(result):  # a vector cube is combined and saved by the combine step
                    raise InternalException(message="The result of this graph cannot be combined from tiles; "
                                                    "the run should have been one task.")
            outputs.finalize(graph.end_node_ids)
    except BaseException:
        outputs.discard()
        raise
    return fanout.partials


def run_progress(s3: Any, bucket: str, results_prefix: str, manifest: TileManifest) -> int:
    """Percent of the run's tiles done: those with a record (finished or failed) and, on a restart, those reused
    from the previous run (the plan's tiles not in `tiles.json`). At most 99: the combine step reports 100. The
    tiles end in any order; the jobs table keeps the highest progress reported."""
    to_run = read_json(s3, bucket, catalog_layout.tile_items_key(results_prefix))
    reused = len(manifest.tiles) - len(to_run) if isinstance(to_run, list) else 0
    records, token = 0, {}
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=f"{results_prefix}tiles/", **token)
        records += sum(1 for entry in page.get("Contents", []) if entry["Key"].endswith("/record.json"))
        if not page.get("IsTruncated"):
            break
        token = {"ContinuationToken": page["NextContinuationToken"]}
    return min(99, 100 * (reused + records) // len(manifest.tiles))


def report_progress(reporter: Any, s3: Any, bucket: str, results_prefix: str, manifest: TileManifest | None) -> None:
    """Best effort: a progress report never fails a tile."""
    if manifest is None:
        return
    try:
        reporter.status(JobStatus.RUNNING, progress=run_progress(s3, bucket, results_prefix, manifest))
    except Exception:  # noqa: BLE001
        logger.warning("Could not report the run's progress", exc_info=True)


def tile_record(tile_id: str, store: ResultStore, partials: dict[str, Any], usage: dict[str, Any]) -> TileRecord:
    manifest = build_manifest(store.assets)
    return TileRecord(tile_id, TILE_FINISHED, assets=manifest.assets, partials=partials, usage=usage)


def run_tile(config: RunConfig, tile_id: str, settings: Settings, *, s3: Any, publisher: EventPublisher,
             rasters: RasterReader, registry: ProcessRegistry = DEFAULT_REGISTRY,
             results: ResultsAccess | None = None) -> int:
    """The tile step; returns the process exit code. Never raises for a failing graph. `s3` reads the input
    data; `results` gives the run's results-bucket client (default: `s3` too)."""
    from stratus_processing.runner import (EventReporter, UsageMeter, engine_catalog, load_snapshot,
                                          report_failure)

    with UsageMeter() as meter:
        run_reporter = EventReporter(publisher, config.job_id, config.run_id)
        reporter = TileLogReporter(run_reporter, tile_id)
        record_key = catalog_layout.tile_record_key(config.results_prefix, tile_id)
        run_reporter.status(JobStatus.RUNNING)
        manifest = None
        data_s3 = s3
        results = results or SharedResults(data_s3)
        try:
            s3 = results.client(config)
            manifest = read_plan(s3, settings.results_bucket, config.results_prefix)
            tile = tile_of(manifest, tile_id)
            snapshot = load_snapshot(s3, settings.results_bucket, config.graph_key)
            s3 = reading_models(results, config, snapshot, s3)
            store = S3ResultStore(s3, settings.results_bucket,
                                  catalog_layout.tile_prefix(config.results_prefix, tile_id))
            env = EvalEnv(catalog=engine_catalog(settings, data_s3), rasters=rasters, results=store,
                          reporter=reporter, user_processes=snapshot.user_processes,
                          ml_models=snapshot.ml_models)
            reporter.log(f"Evaluating tile {tile_id}: window {tile.window.to_json()} of the "
                         f"{manifest.grid_width} × {manifest.grid_height} px grid")
            frozen = loads_from_json(read_json(s3, settings.results_bucket,
                                               catalog_layout.load_plans_key(config.results_prefix)))
            if frozen is not None:
                reporter.log("Reading with the run's load plans (made once by PlanRun)")
            partials = evaluate_tile(snapshot.process, env, manifest, tile, registry=registry, frozen=frozen)
            record = tile_record(tile_id, store, partials, meter.usage())
            write_json(s3, settings.results_bucket, record_key, record.to_json())
            reporter.log(f"Tile complete: {len(store.assets)} file(s), record at {record_key}")
            report_progress(run_reporter, s3, settings.results_bucket, config.results_prefix, manifest)
            return EXIT_OK
        except Exception as exc:  # noqa: BLE001 - every failure must reach the job log and the record
            report_failure(reporter, exc, send_status=False)
            code = exc.code if isinstance(exc, OpenEOApiException) else "Internal"
            record = TileRecord(tile_id, TILE_ERROR, error={"code": code, "message": describe_failure(exc)},
                                usage=meter.usage())
            try:
                write_json(s3, settings.results_bucket, record_key, record.to_json())
            except Exception:  # noqa: BLE001 - the map run still sees the task fail
                logger.exception("Could not write the error record of tile %s", tile_id)
            else:
                report_progress(run_reporter, s3, settings.results_bucket, config.results_prefix, manifest)
            return EXIT_FAILED
