"""Batch job results: openEO `GET /jobs/{job_id}/results` as a STAC Collection with presigned assets.

The document is regenerated on every request, so every response carries fresh URLs.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, Protocol

from stratus import catalog_layout
from stratus.domain.jobs import Job
from stratus.errors import JobNotFinishedException
from stratus.events import JobStatus, isoformat_z, utcnow

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
]


class ResultStore(Protocol):
    def read_manifest(self, key: str) -> dict[str, Any] | None: ...

    def presign(self, key: str, expires_in_s: int) -> str: ...


def job_results(job: Job, store: ResultStore, base_url: str, expires_in_s: int) -> dict[str, Any]:
    """Raises `JobNotFinishedException` unless the job's current run finished."""
    if job.status is not JobStatus.FINISHED or job.run_id is None:
        raise JobNotFinishedException()
    manifest = store.read_manifest(catalog_layout.manifest_key(catalog_layout.results_prefix(job.job_id, job.run_id)))
    if manifest is None:
        raise JobNotFinishedException(message="The job finished but its results are not available (anymore).")
    expires = isoformat_z(utcnow() + timedelta(seconds=expires_in_s))
    assets = {}
    for name, asset in manifest.get("assets", {}).items():
        asset = copy.deepcopy(asset)
        asset["href"] = store.presign(asset.pop("key"), expires_in_s)
        asset["expires"] = expires
        assets[name] = asset
    properties = manifest.get("properties", {})
    bbox = manifest.get("bbox")
    start, end = properties.get("start_datetime"), properties.get("end_datetime")
    job_url = f"{base_url}/jobs/{job.job_id}/results"
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": job.job_id,
        "title": job.title or f"Results of job {job.job_id}",
        "description": job.description or "Results of an openEO batch job.",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [bbox] if bbox else [[-180, -90, 180, 90]]},
            "temporal": {"interval": [[start, end]]},
        },
        "summaries": {"proj:code": [f"EPSG:{properties['proj:epsg']}"]} if properties.get("proj:epsg") else {},
        "openeo:status": job.status.value,
        "assets": assets,
        "links": [
            {"rel": "self", "href": job_url, "type": "application/json"},
            {"rel": "canonical", "href": job_url, "type": "application/json"},
        ],
    }
