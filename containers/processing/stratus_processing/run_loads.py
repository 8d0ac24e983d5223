"""PlanRun's view of the engine (docs/fanout.md): the loads of a run's snapshot planned exactly as its tile
and combine steps plan them (`tiling.plan_loads`: the STAC search, reprojection, pixel snapping, the narrowing
by the graph's geometries), given to the planner as an estimate. The tiles PlanRun cuts are then windows of the
very grid every tile step computes on, whatever the extent's CRS; and the plans are frozen (`frozen_loads`) for
the tile steps, so none repeats the whole run's search."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stratus.domain.estimate import GraphEstimate, LoadEstimate
from stratus.domain.run_planning import PlannedLoads
from stratus.run_contract import RunSnapshot
from stratus.settings import Settings

import stratus_processing.processes  # noqa: F401  (registers the process implementations)
from stratus_processing.env import EvalEnv
from stratus_processing.frozen_loads import loads_to_json
from stratus_processing.io.cog import RasterReader
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry

from stratus_processing.runner import engine_catalog
from stratus_processing.tiling import plan_loads

logger = logging.getLogger("stratus_processing")


class EngineLoadPlanner:
    """`stratus.domain.run_planning.LoadPlanner` on the engine: one estimate per load on the engine's grid."""

    def __init__(self, catalog: Any, rasters: RasterReader, registry: ProcessRegistry = DEFAULT_REGISTRY) -> None:
        self._catalog = catalog
        self._rasters = rasters
        self._registry = registry

    @classmethod
    def from_settings(cls, settings: Settings, s3: Any, rasters: RasterReader) -> EngineLoadPlanner:
        return cls(engine_catalog(settings, s3), rasters)

    def estimate(self, snapshot: Mapping[str, Any]) -> PlannedLoads | str:
        """The loads on the grid the engine plans for the whole run, with the plans frozen for the tile steps;
        or why the engine reads the graph's loads whole, not by window (then no tile could be placed on it)."""
        run = RunSnapshot.from_json(snapshot)
        env = EvalEnv(catalog=self._catalog, rasters=self._rasters, user_processes=run.user_processes)
        planned = plan_loads(run.process, env, registry=self._registry)
        if isinstance(planned, str):
            return planned
        context, grid = planned
        nodes = run.process.get("process_graph") or {}
        estimate = GraphEstimate(tuple(
            LoadEstimate(node_id, str(((nodes.get(node_id) or {}).get("arguments") or {}).get("id", "")),
                         grid.width, grid.height, len(plan.days), len(plan.bands))
            for node_id, plan in context.loads.items()))
        return PlannedLoads(estimate, loads_to_json(context.loads))
