"""`python -m stratus_processing`: the AWS Batch container's entrypoint (no arguments; all
configuration comes from the environment, see `stratus.run_contract.RunConfig` and `stratus.settings`)."""

from __future__ import annotations

import logging
import os
import sys

from stratus import aws
from stratus.events import EventPublisher
from stratus.run_contract import (
    PREVIOUS_RESULTS_PREFIX_ENV,
    RUN_STEP_COMBINE,
    RUN_STEP_TILE,
    TILE_ID_ENV,
    RunConfig,
    RunConfigError,
    run_step_of,
)
from stratus.settings import ENV, Settings

from stratus_processing.combine import run_combine
from stratus_processing.fanout import run_tile
from stratus_processing.io.cog import RasterReader
from stratus_processing.run_credentials import results_access
from stratus_processing.runner import EXIT_MISCONFIGURED, run_job


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials ..." on every client
    settings = Settings.from_env()
    try:
        config = RunConfig.from_env()
        step = run_step_of()
        if not settings.status_queue_url or not settings.log_queue_url:
            raise RunConfigError(f"missing environment variable(s): {ENV['status_queue_url']}, {ENV['log_queue_url']}")
    except RunConfigError as exc:
        logging.getLogger("stratus_processing").error("Cannot run: %s", exc)
        return EXIT_MISCONFIGURED
    publisher = EventPublisher(aws.client("sqs"), settings.status_queue_url, settings.log_queue_url)
    s3 = aws.client("s3")
    results = results_access(settings, s3)  # the run's session of the results role (docs/operations.md §5)
    with RasterReader.from_environ() as rasters:  # the run's open COGs, closed with it
        if step == RUN_STEP_TILE:
            return run_tile(config, os.environ[TILE_ID_ENV], settings, s3=s3, publisher=publisher,
                            rasters=rasters, results=results)
        if step == RUN_STEP_COMBINE:
            return run_combine(config, settings, s3=s3, publisher=publisher, rasters=rasters,
                               previous_results_prefix=os.environ.get(PREVIOUS_RESULTS_PREFIX_ENV) or None,
                               results=results)
        return run_job(config, settings, s3=s3, publisher=publisher, rasters=rasters, results=results)


if __name__ == "__main__":
    sys.exit(main())
