"""CollectionsRefresh: scheduled (EventBridge) and run once on deployment; fetches the configured remote
collections' documents into the metadata cache that `/collections` reads (`stratus.domain.collection_refresh`)."""

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
    outcomes = backend().collection_refresher.refresh()
    failed = [outcome.collection_id for outcome in outcomes if not outcome.refreshed]
    logger.info("collections refreshed", extra={"refreshed": len(outcomes) - len(failed), "failed": failed})
    # a source that is down is no failure of the function: its cached document stays and the next run retries
    return {"refreshed": len(outcomes) - len(failed), "failed": failed}
