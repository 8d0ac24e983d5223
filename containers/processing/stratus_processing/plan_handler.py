"""Lambda entry point of PlanRun (the job state machine's step after PrepareJob), in the processing image:
one task, one big task or a fan-out over tiles (`stratus.domain.run_planning`), with the run's loads planned
by the engine itself (`run_loads`), so the tiles are windows of the grid the tile steps compute on."""

from __future__ import annotations

from functools import cache
from typing import Any

from stratus import aws
from stratus.backend import Backend
from stratus.observability import logger

from stratus_processing.io.cog import RasterReader
from stratus_processing.run_loads import EngineLoadPlanner


@cache
def backend() -> Backend:
    return Backend.from_env()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = backend().settings
    with RasterReader.from_environ() as rasters:  # the COG headers planning opens, closed with the plan
        planner = backend().run_planner_with(EngineLoadPlanner.from_settings(settings, aws.client("s3"), rasters))
        planned = planner.plan(event["job_id"], event["run_id"], event["graph_key"], event["results_prefix"])
    logger.info("run planned", extra={"job_id": event["job_id"], "run_id": event["run_id"],
                                      "shape": planned.shape.value, "tiles": planned.tiles})
    return planned.to_output()
