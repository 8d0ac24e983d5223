"""Synchronous processing: openEO `POST /result` for small requests, inside API Gateway's limits.

The graph is sized with a dry run over the STAC items first; what would not finish within the
29 s of API Gateway is refused with `ProcessGraphComplexity` and a hint to use a batch job. A load whose
remote source could not be searched in time is not held against the user: the request runs, with a log line. What
runs is frozen to S3 and handed to the processing function by pointer; its output comes back
inline when it fits the 6 MB Lambda response, else as a redirect to a presigned URL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Protocol

from stratus.domain.estimate import DryRunCatalog, estimate_graph
from stratus.domain.ml_models import ModelReferences
from stratus.domain.processes import require_process_graph
from stratus.domain.user_processes import UserProcesses, freeze_user_processes
from stratus.errors import OpenEOApiException, ProcessGraphComplexityException
from stratus.observability import logger
from stratus.run_contract import ResultsManifest, RunConfig, RunSnapshot

# float64 values across all loaded cubes: ~256 MB, which a 3 GB processing Lambda reads and reduces
# well inside the 29 s API Gateway timeout (measured locally at ~1-2 s per 10 M values).
SYNC_MAX_VALUES = 32_000_000
# Lambda responses are capped at 6 MB; base64 for binary bodies adds a third.
INLINE_MAX_BYTES = 4_400_000


class SyncStore(Protocol):
    def write_snapshot(self, key: str, snapshot: RunSnapshot) -> None: ...

    def read_manifest(self, key: str) -> ResultsManifest | None: ...

    def read_bytes(self, key: str) -> bytes: ...

    def presign(self, key: str, expires_in_s: int) -> str: ...


class SyncProcessor(Protocol):
    def run(self, run: RunConfig) -> dict[str, Any]:
        """Runs the graph; `{"ok": true}` or `{"ok": false, "error": {"code", "message"}}`."""
        ...


class ProcessingFailedException(OpenEOApiException):
    """An error the processing reported, passed on with its own openEO code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message=message)
        self.code = code  # type: ignore[misc]  # per instance: the processing's code, e.g. NoDataAvailable
        self.status_code = 500 if code == "Internal" else 400  # type: ignore[misc]


@dataclass(frozen=True)
class SyncResult:
    media_type: str
    body: bytes | None = None  # inline output
    redirect_url: str | None = None  # or where to fetch it


class SyncProcessingService:
    def __init__(self, catalog: DryRunCatalog, store: SyncStore, processor: SyncProcessor, expires_in_s: int,
                 user_processes: UserProcesses | None = None, models: ModelReferences | None = None) -> None:
        self._catalog = catalog
        self._models = models
        self._user_processes = user_processes
        self._store = store
        self._processor = processor
        self._expires_in_s = expires_in_s

    def process(self, user_id: str, body: dict[str, Any]) -> SyncResult:
        """POST /result. Raises `ProcessGraphMissingException`, `ProcessGraphComplexityException` or the
        processing's own error."""
        process = require_process_graph(body.get("process"))
        estimate = estimate_graph(process["process_graph"], self._catalog.collection, self._catalog.items)
        if estimate.values > SYNC_MAX_VALUES:
            raise ProcessGraphComplexityException(
                message=(f"The process is too complex for synchronous processing: it would load about "
                         f"{estimate.values / 1e6:.0f} million values (the limit is {SYNC_MAX_VALUES / 1e6:.0f} "
                         f"million). Please use a batch job instead."))
        if not estimate.complete:
            # a source we could not reach in time is our network's problem, not the user's: the request runs
            # (the processing has its own limits) and the operator sees why it went unchecked
            logger.warning("synchronous request not size-checked: a collection's items could not be listed",
                           extra={"unknown": [{"node": u.node_id, "collection": u.collection_id, "reason": u.reason}
                                              for u in estimate.unknown],
                                  "known_values": estimate.values})
        run = RunConfig.for_sync(user_id, f"r-{uuid.uuid4().hex}")
        snapshot = RunSnapshot(process) if self._user_processes is None \
            else freeze_user_processes(process, self._user_processes.lookup_for(user_id))
        if self._models is not None:
            snapshot = replace(snapshot, ml_models=self._models.resolve(snapshot.graphs(), user_id))
        self._store.write_snapshot(run.graph_key, snapshot)
        outcome = self._processor.run(run)
        if not outcome.get("ok"):
            error = outcome.get("error") or {}
            raise ProcessingFailedException(error.get("code") or "Internal",
                                            error.get("message") or "Synchronous processing failed.")
        manifest = self._store.read_manifest(run.manifest_key) or ResultsManifest()
        assets = list(manifest.assets.values())
        if len(assets) != 1:
            raise ProcessingFailedException(
                "FormatUnsuitable",
                f"The result has {len(assets)} files; synchronous processing returns exactly one. Reduce the "
                f"time dimension, choose a single-file format such as netCDF, or use a batch job.")
        asset = assets[0]
        media_type = asset.get("type") or "application/octet-stream"
        if (asset.get("file:size") or 0) <= INLINE_MAX_BYTES:
            return SyncResult(media_type=media_type, body=self._store.read_bytes(asset["key"]))
        return SyncResult(media_type=media_type, redirect_url=self._store.presign(asset["key"], self._expires_in_s))
