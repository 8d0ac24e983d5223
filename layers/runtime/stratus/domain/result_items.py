"""A finished run's results (openEO batch jobs and the order service's products alike) into the owner's own
catalogue collection (`stac_api.results_collection_id`), through the ingest queue like every other change.

One item per located result file, as in `GET /jobs/{job_id}/results` but with stable `s3://` asset hrefs (the
API presigns on every request; an index entry must not expire). A re-run's items replace the earlier run's of
the same name; the run's end time orders the versions, so a redelivered status event changes nothing.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Protocol

from stratus.domain.jobs import Job
from stratus.domain.results import ResultStore, _footprint, _item_datetime, _item_ids
from stratus.domain.stac_api import IngestSender, results_collection_id
from stratus.domain.stac_items import upsert
from stratus.events import JobStatus
from stratus.run_contract import ResultsManifest, RunConfig

JOB_ID_PROPERTY = "openeo:job_id"


class Jobs(Protocol):
    def get(self, job_id: str) -> Job | None: ...


def result_items(job: Job, manifest: ResultsManifest, results_bucket: str) -> list[dict[str, Any]]:
    items = []
    for item_id, name in _item_ids(manifest).items():
        source = manifest.assets[name]
        bbox, geometry = _footprint(source, manifest)
        if geometry is None:  # not a place on Earth (e.g. a JSON file): nothing to search it by
            continue
        asset = {key: copy.deepcopy(value) for key, value in source.items() if key not in ("key", "bbox", "geometry")}
        asset["href"] = f"s3://{results_bucket}/{source['key']}"
        properties = {"title": f"{job.title or job.job_id}: {name}", JOB_ID_PROPERTY: job.job_id,
                      **_item_datetime(source, manifest.properties, job)}
        if properties.get("datetime") is None:
            properties["datetime"] = None
        items.append({"type": "Feature", "stac_version": "1.1.0", "id": f"{job.job_id}-{item_id}",
                      "geometry": geometry, "bbox": bbox, "properties": properties, "links": [],
                      "assets": {name: asset}})
    return items


class ResultCatalogue:
    def __init__(self, jobs: Jobs, store: ResultStore, queue: IngestSender, results_bucket: str) -> None:
        self._jobs = jobs
        self._store = store
        self._queue = queue
        self._results_bucket = results_bucket

    def index_run(self, job_id: str, run_id: str, ended: datetime) -> int:
        """Queues the items of the job's run if it is the job's finished current run; the number queued."""
        job = self._jobs.get(job_id)
        if job is None or job.run_id != run_id or job.status is not JobStatus.FINISHED:
            return 0
        manifest = self._store.read_manifest(RunConfig.for_run(job_id, run_id).manifest_key)
        if manifest is None:
            return 0
        accepted_ns = int(ended.timestamp() * 1_000_000_000)
        collection = results_collection_id(job.user_id)
        messages = [upsert(collection, item, accepted_ns) for item in result_items(job, manifest, self._results_bucket)]
        self._queue.send(messages)
        return len(messages)
