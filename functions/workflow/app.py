"""The job state machine's Lambda tasks.

PrepareJob: freeze the job's process for this run in S3 (`stratus.domain.runs.RunPreparation`) and return
the pointers the Batch job gets. A run that is no longer the job's current one raises `StaleRunError`,
which the state machine's Catch handles. PlanRun runs on the processing image (`stratus_processing.plan_handler`):
it plans the run's loads with the engine."""

from functools import cache

from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus.backend import Backend
from stratus.observability import logger, tracer


@cache
def backend() -> Backend:
    return Backend.from_env()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    run = backend().run_preparation.prepare(event["job_id"], event["run_id"])
    logger.info("job prepared", extra={"job_id": run.job_id, "run_id": run.run_id, "graph_key": run.graph_key})
    return run.prepared()
