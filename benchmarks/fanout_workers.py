"""A 16-tile fanned-out job on the local system with 1 and with 2 local Batch workers (issue 12's benchmark).

Each variant starts its own local system (`python -m stratus_local`) planning 75 px tiles over the demo
collection's 300 x 300 px Bolzano scene (4 x 4 tiles) with
`STRATUS_LOCAL_BATCH_WORKERS` 1 or 2, runs the same job (an 11 x 11 kernel over four bands and six dates, then
the mean over time) and measures the wall time from `POST /jobs/{id}/results` to `finished`. Also prints the
per-tile figures the tile records hold (CPU seconds, wall seconds, peak memory), for the capacity model
(docs/fanout.md, section 4).

Target: 1 worker / 2 workers >= 1.7. Run on a quiet machine: `python -m benchmarks.fanout_workers`
(`--quick`: one job per variant and no target check, to see it works).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time

import boto3
import openeo

from conformance.run import local_system
from stratus import catalog_layout

TILE_PX = 75
SETTINGS = {"STRATUS_FANOUT_MIN_TILE_PX": str(TILE_PX), "STRATUS_FANOUT_MAX_TILE_PX": str(TILE_PX),
            "STRATUS_FANOUT_TILE_BLOCK_PX": str(TILE_PX), "STRATUS_FANOUT_TASK_LOAD_BYTES": "1000000"}
BOLZANO_TILE = {"west": 678000, "east": 681000, "south": 5150000, "north": 5153000, "crs": 32632}
RUNS = 3  # per variant; the median is reported
TARGET = 1.7
TIMEOUT_S = 900


def graph(connection):
    cube = connection.load_collection("sentinel-2-l2a-demo", spatial_extent=BOLZANO_TILE,
                                      temporal_extent=["2022-06-01", "2022-07-01"],
                                      bands=["B02", "B03", "B04", "B08"])
    # an 11 x 11 kernel: enough compute per tile that the tile's work, not the process start, is measured
    return cube.apply_kernel([[1] * 11 for _ in range(11)], factor=1 / 121).reduce_dimension("t", reducer="mean")


def run_once(connection) -> tuple[str, float]:
    job = graph(connection).save_result("GTiff").create_job(title="fan-out benchmark")
    started = time.monotonic()
    job.start()
    while (status := job.status()) not in ("finished", "error", "canceled"):
        if time.monotonic() - started > TIMEOUT_S:
            raise RuntimeError(f"job {job.job_id} still {status} after {TIMEOUT_S} s")
        time.sleep(0.25)
    if status != "finished":
        raise RuntimeError(f"job {job.job_id} ended {status}")
    return job.job_id, time.monotonic() - started


def tile_figures(endpoint: str, job_id: str) -> list[dict]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-central-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    prefix = catalog_layout.runs_prefix(job_id)
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="stratus-results", Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/record.json"):
                records.append(json.loads(s3.get_object(Bucket="stratus-results", Key=obj["Key"])["Body"].read()))
    return records


def batch_timeline(endpoint: str, job_id: str) -> list[dict]:
    """The job's Batch jobs (tiles and combine) with their createdAt / startedAt / stoppedAt (ms)."""
    batch = boto3.client("batch", endpoint_url=endpoint, region_name="eu-central-1", aws_access_key_id="testing",
                         aws_secret_access_key="testing")
    queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueArn"]
    summaries = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"stratus-{job_id}-*"]}])
    ids = [s["jobId"] for s in summaries["jobSummaryList"]]
    return batch.describe_jobs(jobs=ids)["jobs"] if ids else []


def overhead(timeline: list[dict], records: list[dict], wall_s: float, workers: int) -> dict[str, float]:
    """Where the wall time goes (seconds): per tile process (start to exit), per tile in the task (its record's
    duration: read, compute, write), process start-up (the difference: interpreter, imports, planning the
    loads), and the workers' idle time (orchestration: the map starting children, `.sync` polls, PlanRun,
    the combine's wait)."""
    tiles = [j for j in timeline if not j["jobName"].endswith("-combine") and j.get("startedAt")
             and j.get("stoppedAt")]
    process = [(j["stoppedAt"] - j["startedAt"]) / 1000 for j in tiles]
    in_task = [v for v in (usage_value(r, "duration") for r in records) if isinstance(v, (int, float))]
    busy = sum((j["stoppedAt"] - j["startedAt"]) / 1000 for j in timeline if j.get("startedAt") and j.get("stoppedAt"))
    idle = max(0.0, wall_s * workers - busy)
    figures = {"tile process s (median)": statistics.median(process) if process else float("nan"),
               "tile in-task s (median)": statistics.median(in_task) if in_task else float("nan"),
               "worker idle s per task": idle / max(1, len(timeline))}
    figures["tile start-up s (median)"] = figures["tile process s (median)"] - figures["tile in-task s (median)"]
    return figures


def variant(workers: int, runs: int) -> tuple[list[float], list[dict]]:
    password = secrets.token_urlsafe(12)
    with local_system(password, env={**SETTINGS, "STRATUS_LOCAL_BATCH_WORKERS": str(workers)}) as (url, output):
        endpoint = next(line.split("embedded AWS:", 1)[1].strip() for line in output
                        if line.strip().startswith("embedded AWS:"))
        connection = openeo.connect(url).authenticate_basic("demo", password)
        times, records = [], []
        for _ in range(runs):
            job_id, seconds = run_once(connection)
            times.append(seconds)
            records = tile_figures(endpoint, job_id)
            timeline = batch_timeline(endpoint, job_id)
            split = ", ".join(f"{name} {value:.2f}" for name, value in
                              overhead(timeline, records, seconds, workers).items())
            print(f"{workers} worker(s): {seconds:.1f} s wall, {len(timeline)} Batch jobs; {split}", flush=True)
        return times, records


def usage_value(record: dict, name: str) -> float | None:
    entry = (record.get("usage") or {}).get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one job per variant, no target check")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else RUNS
    one, records = variant(1, runs)
    two, _ = variant(2, runs)
    t1, t2 = statistics.median(one), statistics.median(two)
    print(f"16-tile job, wall time (median of {runs}): 1 worker {t1:.1f} s, 2 workers {t2:.1f} s, "
          f"speed-up {t1 / t2:.2f}x (target >= {TARGET}x)")
    if records:
        names = sorted({name for record in records for name in (record.get("usage") or {})})
        for name in names:
            values = [v for v in (usage_value(r, name) for r in records) if isinstance(v, (int, float))]
            if values:
                print(f"  per tile {name}: median {statistics.median(values):g}, max {max(values):g} "
                      f"({len(values)} tiles)")
    if not args.quick and t1 / t2 < TARGET:
        raise SystemExit(f"speed-up {t1 / t2:.2f}x is below the target {TARGET}x")


if __name__ == "__main__":
    main()
