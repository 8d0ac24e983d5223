"""Which model file each `load_ml_model` of a graph reads, decided when the run is frozen.

`load_ml_model(id)` takes a batch job id or the URL of a job's results (its result Item, or the
results document when the job saved one model). Either way the reference only *names* one of the
caller's own finished jobs: the URL is never fetched, no foreign or uploaded file is ever read, and a
job of another user is refused like an unknown one. The answer per reference goes into the run
snapshot (`RunSnapshot.ml_models`): `{"key": <results bucket key>}` or `{"error": <the user's reason>}`,
which the engine reports as the node's error, so preparing a run never fails on a bad reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from stratus.domain.jobs import Job
from stratus.domain.results import asset_name_of_item
from stratus.domain.user_processes import called_processes
from stratus.events import JobStatus
from stratus.run_contract import ResultsManifest, RunConfig

LOAD_PROCESS = "load_ml_model"
MODEL_ROLE = "ml-model:checkpoint"
JOB_ID = re.compile(r"^[\w\-.~]+$")
# .../jobs/{job_id}/results[/items/{item_id}] of this API's openEO routes
RESULTS_PATH = re.compile(r"/jobs/(?P<job>[^/]+)/results(?:/items/(?P<item>[^/]+))?/?$")


class JobReader(Protocol):
    def get(self, job_id: str) -> Job | None: ...


class ManifestReader(Protocol):
    def read_manifest(self, key: str) -> ResultsManifest | None: ...


class ModelReferences:
    def __init__(self, jobs: JobReader, manifests: ManifestReader) -> None:
        self._jobs = jobs
        self._manifests = manifests

    def resolve(self, graphs: Iterable[Mapping[str, Any]], user_id: str) -> dict[str, dict[str, str]]:
        """Every literal `id` of a `load_ml_model` in `graphs` (flat process graphs, callbacks included)."""
        references = {node["arguments"]["id"] for graph in graphs for node in called_processes(graph)
                      if node.get("process_id") == LOAD_PROCESS and isinstance(node.get("arguments"), Mapping)
                      and isinstance(node["arguments"].get("id"), str)}
        return {reference: self._resolve(reference, user_id) for reference in sorted(references)}

    def _resolve(self, reference: str, user_id: str) -> dict[str, str]:
        if reference.startswith(("http://", "https://")):
            match = RESULTS_PATH.search(urlsplit(reference).path)
            if match is None:
                return {"error": "a model URL must be the results (or a result item) of one of your batch jobs on "
                                 "this back-end; models from elsewhere are not loaded"}
            job_id, item_id = unquote(match["job"]), unquote(match["item"]) if match["item"] else None
        elif JOB_ID.match(reference):
            job_id, item_id = reference, None
        else:
            return {"error": "expected a batch job id or the URL of a batch job's results; uploaded model files are "
                             "not loaded (only models your batch jobs saved with save_ml_model)"}
        job = self._jobs.get(job_id)
        if job is None or job.user_id != user_id:
            return {"error": f"there is no batch job '{job_id}' of yours"}
        if job.status is not JobStatus.FINISHED or job.run_id is None:
            return {"error": f"batch job '{job_id}' has not finished (it is {job.status.value})"}
        manifest = self._manifests.read_manifest(RunConfig.for_run(job.job_id, job.run_id).manifest_key)
        if manifest is None:
            return {"error": f"the results of batch job '{job_id}' are not available (anymore)"}
        models = {name: asset for name, asset in manifest.assets.items() if MODEL_ROLE in (asset.get("roles") or ())}
        if item_id is not None:
            name = asset_name_of_item(manifest, item_id)
            if name not in models:
                return {"error": f"result item '{item_id}' of batch job '{job_id}' is not a model"}
            return {"key": models[name]["key"]}
        if len(models) != 1:
            return {"error": f"batch job '{job_id}' saved {len(models)} models: give the URL of the result item of "
                             f"the one to load"}
        return {"key": next(iter(models.values()))["key"]}
