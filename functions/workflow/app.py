"""PrepareJob task of the job state machine: freeze the job's process graph for this run in S3.

The Batch container then reads only S3 (pointers in, pointers out) and needs no table access.
"""

from functools import cache

from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus import catalog_layout
from stratus.backend import Backend
from stratus.domain.user_processes import freeze_user_processes
from stratus.observability import logger, tracer


class StaleRunError(Exception):
    """The job was restarted or canceled after this run began; the run must not process anything."""


@cache
def backend() -> Backend:
    return Backend.from_env()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    job_id, run_id = event["job_id"], event["run_id"]
    job = backend().jobs_repository.get(job_id)
    if job is None or job.run_id != run_id:
        raise StaleRunError(f"job {job_id} has no current run {run_id}")
    graph_key = catalog_layout.graph_key(job_id, run_id)
    # the user-defined processes the graph calls are frozen with it, from the job owner's store
    snapshot = freeze_user_processes(job.process, backend().user_processes.lookup_for(job.user_id))
    backend().results.write_json(graph_key, snapshot)
    logger.info("job prepared", extra={"job_id": job_id, "run_id": run_id, "graph_key": graph_key})
    return {"graph_key": graph_key, "results_prefix": catalog_layout.results_prefix(job_id, run_id)}
