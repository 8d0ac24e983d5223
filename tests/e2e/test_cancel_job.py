"""Canceling a running batch job with the real openEO client: the run stops everywhere.

The job is slow by design: a 41 x 41 `apply_kernel` over eight dates and four bands of the whole
Bolzano tile (1681 shifted multiply-adds of a 300 x 300 x 32 array take well over ten seconds
locally), so it is reliably `running` when `job.stop()` (DELETE /jobs/{id}/results) arrives.
"""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest
from stratus.run_contract import RUN_ENVIRONMENT

from tests.e2e.test_openeo_client_job import COLLECTION, wait_for

pytestmark = pytest.mark.e2e

BOLZANO_TILE = {"west": 678000, "east": 681000, "south": 5150000, "north": 5153000, "crs": 32632}
KERNEL_SIZE = 41


def processing_pids(job_id: str) -> list[int]:
    """Local Batch processes of this job: the seam starts them with the job id in their env."""
    needle = f"{RUN_ENVIRONMENT['job_id']}={job_id}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_stop_cancels_a_running_job(connection, local_system):
    # Given a slow job with an estimate
    cube = connection.load_collection(COLLECTION, spatial_extent=BOLZANO_TILE,
                                      temporal_extent=["2022-06-01", "2022-08-01"],
                                      bands=["B02", "B03", "B04", "B08"])
    kernel = [[1] * KERNEL_SIZE for _ in range(KERNEL_SIZE)]
    job = cube.apply_kernel(kernel, factor=1 / KERNEL_SIZE**2).save_result("GTiff").create_job(title="slow")
    estimate = job.estimate()
    assert estimate["costs"] >= 0 and estimate["size"] > 0 and estimate["duration"].startswith("PT")

    # When it runs and is stopped
    job.start()
    wait_for(job, statuses=("running",), timeout=60)
    deadline = time.monotonic() + 30
    while not processing_pids(job.job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processing_pids(job.job_id), "the local Batch process never started"
    job.stop()

    # Then the job ends canceled, the local Batch process is gone and a second stop is harmless
    assert job.status() == "canceled"
    deadline = time.monotonic() + 20
    while processing_pids(job.job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processing_pids(job.job_id) == []
    batch = boto3.client("batch", endpoint_url=local_system.endpoint_url, region_name="eu-central-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    summaries = [s for status in ("RUNNING", "FAILED", "SUCCEEDED")
                 for s in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
                 if s["jobName"].startswith(f"stratus-{job.job_id}-")]
    assert [s["status"] for s in summaries] == ["FAILED"]
    job.stop()
    time.sleep(2)  # late status events of the canceled run would arrive now
    assert job.status() == "canceled"
