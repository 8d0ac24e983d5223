"""JobReaper: scheduled (EventBridge); ends jobs whose run was lost, through the status queue."""

from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratus import metrics
from stratus.backend import Backend
from stratus.observability import logger, tracer

emf = metrics.emitter(metrics.REAPER_SERVICE)


@cache
def backend() -> Backend:
    return Backend.from_env()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@emf.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    ended = backend().reaper.run(time_left_s=lambda: context.get_remaining_time_in_millis() / 1000)
    for status in ended:
        logger.warning("lost run ended", extra={"job_id": status.job_id, "run_id": status.run_id,
                                                "status": status.status.value, "reason": status.reason})
    # every run reports, zero included: the alarm tells "none stuck" from "the reaper did not run"
    emf.add_metric(name=metrics.LOST_RUNS_ENDED, unit=MetricUnit.Count, value=len(ended))
    return {"ended": len(ended)}
