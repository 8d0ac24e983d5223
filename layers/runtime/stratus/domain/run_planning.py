"""PlanRun (the job state machine's step after PrepareJob): does a run go as one task, one big task or a
fan-out over tiles (`stratus.domain.fanout_plan`), from its frozen snapshot's loads as the engine plans them
(`LoadPlanner`: the tiles are windows of the grid the tile steps compute on), or, without the engine, from the
dry-run estimate (then only grids it sizes exactly fan out).

A fan-out writes the plan (`plan.json`, the `TileManifest`) and the Distributed Map's items (`tiles.json`)
beside the run's snapshot. A restart reuses the finished tiles of the job's last errored fan-out run when
that run planned the same tiles for the same snapshot: only its other tiles are listed, and the combine
step reads the reused tiles' records from that run (`previous_results_prefix`).

Planning never fails a run that could run: a graph the dry run cannot size runs as one task, and the
engine reports what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from stratus import catalog_layout
from stratus.domain.estimate import DryRunCatalog, GraphEstimate, estimate_graph, extent_box
from stratus.domain.fanout_plan import (
    LARGEST_TASK,
    RunPlan,
    RunShape,
    TaskBudget,
    TileBounds,
    TileManifest,
    Unsplittable,
    memory_for,
    plan_run,
    task_size_for,
)
from stratus.domain.load_needs import analyse_loads
from stratus.errors import OpenEOApiException
from stratus.observability import logger
from stratus.run_contract import TILE_FINISHED, RunContractError

WGS84 = 4326


class RunDocuments(Protocol):
    """The results bucket as PlanRun and the status path see it (`stratus.adapters.s3_results`)."""

    def read_document(self, key: str) -> Any | None: ...

    def write_document(self, key: str, document: Any) -> None: ...

    def modified_at(self, key: str) -> datetime | None:
        """When the object at `key` was written; None when there is none."""
        ...

    def run_ids(self, job_id: str) -> list[str]:
        """The runs of the job that left anything in the bucket."""
        ...

    def keys_under(self, prefix: str) -> Iterable[str]: ...


@dataclass(frozen=True)
class PlannedLoads:
    """The engine's plan of a run's loads: each load on the grid the tile steps compute on, and the plans
    themselves as JSON, which the tile steps read instead of planning again (`catalog_layout.load_plans_key`)."""

    estimate: GraphEstimate
    frozen: Any = None


class LoadPlanner(Protocol):
    """The engine's planning of a run's loads (`stratus_processing.run_loads`), or why the engine reads the
    loads whole (then no tile step could run)."""

    def estimate(self, snapshot: Mapping[str, Any]) -> PlannedLoads | str: ...


@dataclass(frozen=True)
class PlannedRun:
    """What the state machine gets (`$.plan`): strings where Batch wants strings."""

    shape: RunShape
    vcpu: float
    memory_mib: int
    custom_size: bool  # the task(s) need another size than the job definition's
    tiles: int = 0  # of the plan
    tiles_to_run: int = 0  # listed in `tiles.json` (fewer on a restart)
    bucket: str = ""
    tiles_key: str = ""
    previous_results_prefix: str = ""  # "" when nothing is reused
    reasons: tuple[str, ...] = ()  # why a graph over budget was not split

    def to_output(self) -> dict[str, Any]:
        return {"shape": self.shape.value, "vcpu": f"{self.vcpu:g}", "memory": str(self.memory_mib),
                "custom_size": self.custom_size, "tiles": self.tiles, "tiles_to_run": self.tiles_to_run,
                "bucket": self.bucket, "tiles_key": self.tiles_key,
                "previous_results_prefix": self.previous_results_prefix, "reasons": list(self.reasons)}


def snapshot_hash(snapshot: Any) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class RunPlanner:
    def __init__(self, documents: RunDocuments, catalog: DryRunCatalog, bucket: str,
                 budget: TaskBudget = TaskBudget(), bounds: TileBounds = TileBounds(),
                 read_records: Callable[[list[str]], list[Any]] | None = None,
                 loads: LoadPlanner | None = None) -> None:
        """`loads`: the engine's own load planning (PlanRun on the processing image); without it (the API's
        runtime) only the grids the dry run sizes exactly fan out (`inexact_grid_loads`)."""
        self._documents = documents
        self._loads = loads
        self._catalog = catalog
        self._bucket = bucket
        self._budget = budget
        self._bounds = bounds
        self._read_records = read_records or (lambda keys: [documents.read_document(k) for k in keys])

    def plan(self, job_id: str, run_id: str, graph_key: str, results_prefix: str) -> PlannedRun:
        snapshot = self._documents.read_document(graph_key)
        graph = (snapshot or {}).get("process_graph") or {}
        default = self._budget.size
        ids = {"job_id": job_id, "run_id": run_id}
        engine_grid: PlannedLoads | str | None = None
        if self._loads is not None and snapshot is not None:
            try:
                engine_grid = self._loads.estimate(snapshot)
            except OpenEOApiException as exc:  # the graph's own error (no data, a bad extent): the task reports it
                logger.info("the run's loads could not be planned; it runs as one task",
                            extra={**ids, "reason": exc.message})
                return PlannedRun(RunShape.ONE_TASK, default.vcpu, default.memory_mib, False)
            except Exception:
                logger.warning("the engine could not plan the run's loads; it runs as one task", extra=ids,
                               exc_info=True)
                return PlannedRun(RunShape.ONE_TASK, default.vcpu, default.memory_mib, False)
        try:
            if isinstance(engine_grid, PlannedLoads):
                estimate = engine_grid.estimate
            else:
                estimate = estimate_graph(graph, self._catalog.collection, self._catalog.items)
            plan = plan_run(graph, estimate, self._budget, self._bounds)
        except Exception:  # the dry run is advice: the engine reports a graph's own errors
            logger.warning("the run could not be planned; it runs as one task", extra=ids, exc_info=True)
            estimate, plan = GraphEstimate(()), RunPlan(RunShape.ONE_TASK, default)
        if plan.shape is RunShape.FAN_OUT and not isinstance(engine_grid, PlannedLoads):
            if isinstance(engine_grid, str):  # the engine reads these loads whole: a tile step could not run
                obstacles = tuple(Unsplittable(str(node_id), str(node.get("process_id")),
                                               f"the engine reads the loads whole: {engine_grid}")
                                  for node_id, node in graph.items() if isinstance(node, Mapping)
                                  and node.get("process_id") in ("load_collection", "load_stac"))
            else:
                obstacles = tuple(Unsplittable(node_id, "load_collection", GRID_UNKNOWN)
                                  for node_id in inexact_grid_loads(graph))
            if obstacles:
                # the tiles would not be windows of the grid the engine computes on: one task, sized for the job
                needed = memory_for(estimate.cube_bytes)
                plan = RunPlan(RunShape.ONE_BIG_TASK, task_size_for(needed, min_vcpu=default.vcpu),
                               obstacles=obstacles, exceeds_largest_task=needed > LARGEST_TASK.memory_mib)
        size = plan.task_size if plan.task_size.memory_mib > default.memory_mib else default  # never smaller
        custom = size != default
        if plan.shape is not RunShape.FAN_OUT or plan.manifest is None:
            return PlannedRun(plan.shape, size.vcpu, size.memory_mib, custom, reasons=tuple(plan.reasons()))
        manifest = plan.manifest
        previous, finished = self._reusable(job_id, run_id, manifest, snapshot_hash(snapshot))
        to_run = [tile.to_json() for tile in manifest.tiles if tile.tile_id not in finished]
        if isinstance(engine_grid, PlannedLoads) and engine_grid.frozen is not None:  # before the tiles read them
            self._documents.write_document(catalog_layout.load_plans_key(results_prefix), engine_grid.frozen)
        self._documents.write_document(catalog_layout.plan_key(results_prefix), manifest.to_json())
        tiles_key = catalog_layout.tile_items_key(results_prefix)
        self._documents.write_document(tiles_key, to_run)
        logger.info("run fans out", extra={"job_id": job_id, "run_id": run_id, "tiles": len(manifest.tiles),
                                           "tiles_to_run": len(to_run), "tile_px": manifest.tile_px,
                                           "reused_from": previous or None})
        return PlannedRun(plan.shape, size.vcpu, size.memory_mib, custom, tiles=len(manifest.tiles),
                          tiles_to_run=len(to_run), bucket=self._bucket, tiles_key=tiles_key,
                          previous_results_prefix=previous if finished else "")

    def _reusable(self, job_id: str, run_id: str, manifest: TileManifest, digest: str) -> tuple[str, set[str]]:
        """(results prefix, finished tile ids) of the job's last errored fan-out run when it planned these
        tiles for this snapshot; ("", set()) otherwise."""
        previous = self._last_partial_run(job_id, run_id)
        if previous is None:
            return "", set()
        prefix = catalog_layout.results_prefix(job_id, previous)
        try:
            earlier = TileManifest.from_json(self._documents.read_document(catalog_layout.plan_key(prefix)))
        except RunContractError:
            return "", set()
        earlier_snapshot = self._documents.read_document(catalog_layout.graph_key(job_id, previous))
        if earlier.to_json()["tiles"] != manifest.to_json()["tiles"] or earlier_snapshot is None \
                or snapshot_hash(earlier_snapshot) != digest:
            return "", set()
        record_keys = [key for key in self._documents.keys_under(f"{prefix}tiles/") if key.endswith("/record.json")]
        finished = set()
        for record in self._read_records(record_keys):
            if isinstance(record, Mapping) and record.get("status") == TILE_FINISHED:
                finished.add(str(record.get("tile_id")))
        return prefix, finished

    def _last_partial_run(self, job_id: str, run_id: str) -> str | None:
        written = []
        for other in self._documents.run_ids(job_id):
            if other == run_id:
                continue
            when = self._documents.modified_at(
                catalog_layout.partial_manifest_key(catalog_layout.results_prefix(job_id, other)))
            if when is not None:
                written.append((when, other))
        return max(written)[1] if written else None


GRID_UNKNOWN = ("its output grid is known exactly only to the engine (an extent in degrees, or narrowed by "
                "geometries that do not cover it, in another CRS): the tiles could not be placed on it")


def inexact_grid_loads(process_graph: Mapping[str, Any]) -> list[str]:
    """The loads whose grid the dry run cannot size exactly as the engine will (`estimate` does arithmetic, no
    reprojection): the tiles are windows of the dry run's grid and must be windows of the engine's. Exact: an
    extent in a projected CRS (the engine's grid is its pixels), not narrowed by filters (or only by regions in
    that CRS that cover it)."""
    needs = analyse_loads({k: v for k, v in process_graph.items() if isinstance(v, Mapping)})
    inexact = []
    for node_id, node in process_graph.items():
        if not isinstance(node, Mapping) or node.get("process_id") != "load_collection":
            continue
        extent = (node.get("arguments") or {}).get("spatial_extent")
        box = extent_box(extent)
        regions = needs.get(node_id).regions if needs.get(node_id) is not None else None
        exact = box is not None and box[0] != WGS84 and all(
            region.crs == box[0] and region.west <= box[1][0] and region.south <= box[1][1]
            and region.east >= box[1][2] and region.north >= box[1][3] for region in regions or ())
        if not exact:
            inexact.append(str(node_id))
    return inexact


def is_fanned_out(documents: RunDocuments, job_id: str, run_id: str) -> bool:
    return documents.modified_at(catalog_layout.plan_key(catalog_layout.results_prefix(job_id, run_id))) is not None


def kept_after_error(job_id: str, run_id: str) -> Callable[[str], bool]:
    """What an errored fan-out run keeps: its partial results and what a restart reuses (the snapshot,
    the plan, the tiles' outputs and records, `partial.json`)."""
    prefix = catalog_layout.results_prefix(job_id, run_id)
    kept = {catalog_layout.graph_key(job_id, run_id), catalog_layout.plan_key(prefix),
            catalog_layout.partial_manifest_key(prefix)}
    return lambda key: key in kept or key.startswith(f"{prefix}tiles/")


def superseded_runs(documents: RunDocuments, job_id: str, finished_run: str,
                    referenced_keys: Iterable[str]) -> list[str]:
    """Errored fan-out runs of the job that a finished run makes obsolete: every one whose files the
    finished run's results do not point to (a restart's results point to the tiles it reused)."""
    referenced = set()
    for key in referenced_keys:
        for other in documents.run_ids(job_id):
            if key.startswith(catalog_layout.run_prefix(job_id, other)):
                referenced.add(other)
    return [other for other in documents.run_ids(job_id)
            if other != finished_run and other not in referenced and documents.modified_at(
                catalog_layout.partial_manifest_key(catalog_layout.results_prefix(job_id, other))) is not None]
