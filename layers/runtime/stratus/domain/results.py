"""Batch job results: openEO `GET /jobs/{job_id}/results` as a STAC 1.1 Collection linking one STAC
Item per result file (`GET /jobs/{job_id}/results/items/{item_id}`).

openEO API 1.2 allows both a Collection with collection-level assets and a Collection linking Items
(`rel: item`), and requires every asset of the Items to be copied into the collection-level assets
as well, for clients that only read those (the `openeo` client's `download_files` does). So the
Collection has both. Items follow the openeo-python-driver's layout.

Both documents are built from the run's manifest (`stratus.run_contract.ResultsManifest`, written last
by the processing) on every request, so every response carries freshly presigned URLs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from stratus import catalog_layout
from stratus.domain.jobs import Job
from stratus.errors import JobNotFinishedException, NotFoundException
from stratus.events import JobStatus, isoformat_z, utcnow
from stratus.run_contract import ResultsManifest, RunConfig

STAC_VERSION = "1.1.0"
ITEM_MEDIA_TYPE = "application/geo+json"
COLLECTION_MEDIA_TYPE = "application/json"

# Listed in `stac_extensions` when a document uses a field with the prefix (or, for timestamps, `expires`).
EXTENSION_SCHEMAS = {
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "eo": "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "timestamps": "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json",
    "ml-model": "https://stac-extensions.github.io/ml-model/v1.0.0/schema.json",
}

# openEO `openeo:status` knows running, canceled, finished and error: a run that was created or queued
# is on its way, so clients polling a partial result keep waiting.
RESULT_STATUS = {
    JobStatus.CREATED: "running",
    JobStatus.QUEUED: "running",
    JobStatus.RUNNING: "running",
    JobStatus.FINISHED: "finished",
    JobStatus.ERROR: "error",
    JobStatus.CANCELED: "canceled",
}

# The tiles a fanned-out run that ended `error` is missing ([{tile_id, reason}]), in `?partial=true` results.
MISSING_TILES_FIELD = "stratus:missing_tiles"

# Manifest asset fields that describe the Item (where the asset is), not the asset.
_ITEM_FIELDS = ("key", "bbox", "geometry")
# STAC 1.1 common band fields; the rest of a (raster extension 1.x) `raster:bands` entry gets the prefix.
_COMMON_BAND_FIELDS = ("name", "description", "data_type", "nodata", "statistics", "unit")


class ResultStore(Protocol):
    def read_manifest(self, key: str) -> ResultsManifest | None: ...

    def read_document(self, key: str) -> Any | None: ...

    def presign(self, key: str, expires_in_s: int) -> str: ...


def job_results(job: Job, store: ResultStore, base_url: str, expires_in_s: int, *,
                partial: bool = False) -> dict[str, Any]:
    """The results Collection. Raises `JobNotFinishedException` unless the job's current run finished
    or `partial` is set; then it lists whatever the run completed (nothing before its manifest exists)
    with `openeo:status` telling the job's state."""
    manifest, missing = _results_of(job, store, partial)
    expires = (utcnow() + timedelta(seconds=expires_in_s)).replace(microsecond=0)
    results_url = _results_url(base_url, job)
    items = _item_ids(manifest)
    assets = {}
    for name, asset in manifest.assets.items():
        assets[name] = _stac_asset(asset, store.presign(asset["key"], expires_in_s), expires)
    start, end = manifest.properties.get("start_datetime"), manifest.properties.get("end_datetime")
    if start is None and end is None and not assets:
        start = isoformat_z(job.created)  # nothing produced (yet): the job's own time span
    bbox = manifest.bbox
    collection: dict[str, Any] = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": job.job_id,
        "title": job.title or f"Results of job {job.job_id}",
        "description": job.description or "Results of an openEO batch job.",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [bbox] if bbox else [[-180, -90, 180, 90]]},
            "temporal": {"interval": [[start, end]]},
        },
        "summaries": _summaries(assets.values()),
        "openeo:status": RESULT_STATUS[job.status],
        "assets": assets,
        "links": [
            {"rel": "self", "href": results_url, "type": COLLECTION_MEDIA_TYPE},
            {"rel": "canonical", "href": results_url, "type": COLLECTION_MEDIA_TYPE},
            *({"rel": "item", "href": f"{results_url}/items/{quote(item_id, safe='')}", "type": ITEM_MEDIA_TYPE,
               "title": name} for item_id, name in items.items()),
        ],
    }
    if missing:
        # a fanned-out run that ended with missing tiles: what finished is listed, what is missing is named
        collection[MISSING_TILES_FIELD] = missing
        named = ", ".join(m["tile_id"] for m in missing)
        collection["description"] += (f" Partial results: {len(missing)} tile(s) missing ({named}); "
                                      "restart the job to complete them.")
    collection["stac_extensions"] = _extensions(collection)
    return collection


def job_result_item(job: Job, store: ResultStore, base_url: str, item_id: str, expires_in_s: int) -> dict[str, Any]:
    """One result file as a STAC Item. Served while the current run's manifest lists it (a finished
    run's files, or those of a run that stopped after completing them); else `NotFoundException`."""
    manifest = _manifest(job, store, partial=True)
    name = _item_ids(manifest).get(item_id)
    if name is None:
        raise NotFoundException(message=f"The results of job '{job.job_id}' have no item '{item_id}'.")
    source = manifest.assets[name]
    expires = (utcnow() + timedelta(seconds=expires_in_s)).replace(microsecond=0)
    results_url = _results_url(base_url, job)
    item_url = f"{results_url}/items/{quote(item_id, safe='')}"
    properties: dict[str, Any] = {"title": name, **_item_datetime(source, manifest.properties, job)}
    properties["expires"] = isoformat_z(expires)
    # a saved model: the ml-model extension describes the Item (what `load_ml_model` loads)
    properties.update({key: copy.deepcopy(value) for key, value in source.items() if key.startswith("ml-model:")})
    bbox, geometry = _footprint(source, manifest)
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": item_id,
        "geometry": geometry,
        **({"bbox": bbox} if bbox else {}),
        "properties": properties,
        "collection": job.job_id,
        "assets": {name: _stac_asset(source, store.presign(source["key"], expires_in_s), expires)},
        "links": [
            {"rel": "self", "href": item_url, "type": ITEM_MEDIA_TYPE},
            {"rel": "canonical", "href": item_url, "type": ITEM_MEDIA_TYPE},
            {"rel": "collection", "href": results_url, "type": COLLECTION_MEDIA_TYPE},
            {"rel": "parent", "href": results_url, "type": COLLECTION_MEDIA_TYPE},
        ],
    }
    item["stac_extensions"] = _extensions(item)
    return item


def _manifest(job: Job, store: ResultStore, partial: bool) -> ResultsManifest:
    return _results_of(job, store, partial)[0]


def _results_of(job: Job, store: ResultStore, partial: bool) -> tuple[ResultsManifest, list[dict[str, Any]]]:
    """The run's manifest and, for a fanned-out run that ended `error` with missing tiles, the manifest of
    its finished tiles (`partial.json`) and the missing ones ([{tile_id, reason}])."""
    finished = job.status is JobStatus.FINISHED and job.run_id is not None
    if not finished and not partial:
        raise JobNotFinishedException()
    manifest, missing = None, []
    if job.run_id is not None:
        run = RunConfig.for_run(job.job_id, job.run_id)
        manifest = store.read_manifest(run.manifest_key)
        if manifest is None and job.status is JobStatus.ERROR:
            document = store.read_document(catalog_layout.partial_manifest_key(run.results_prefix))
            if document is not None:
                manifest = ResultsManifest.from_json(document)
                missing = [{"tile_id": str(m.get("tile_id")), "reason": str(m.get("reason", ""))}
                           for m in document.get("missing") or [] if isinstance(m, dict)]
    if manifest is None and finished:
        raise JobNotFinishedException(message="The job finished but its results are not available (anymore).")
    return manifest or ResultsManifest(), missing


def _results_url(base_url: str, job: Job) -> str:
    return f"{base_url}/jobs/{quote(job.job_id, safe='')}/results"


def asset_name_of_item(manifest: ResultsManifest, item_id: str) -> str | None:
    """The file a result Item (`/jobs/{job_id}/results/items/{item_id}`) stands for."""
    return _item_ids(manifest).get(item_id)


def _item_ids(manifest: ResultsManifest) -> dict[str, str]:
    """Item id -> asset name: one Item per result file, named after the file without its extension
    (`result.tif` -> `result`) unless two files share that stem; then the full file name."""
    names = list(manifest.assets)
    stems = [name.rpartition(".")[0] or name for name in names]
    return {stem if stems.count(stem) == 1 and stem not in names else name: name
            for name, stem in zip(names, stems, strict=True)}


def _footprint(asset: Mapping[str, Any], manifest: ResultsManifest) -> tuple[list[float] | None, dict[str, Any] | None]:
    """(WGS84 bbox, GeoJSON geometry) of a file; (None, None) for one without a location (e.g. JSON).

    Manifests written before assets carried their own have one footprint for all assets; it is each
    asset's when they all share one grid."""
    if asset.get("bbox"):
        return asset["bbox"], asset.get("geometry") or _bbox_polygon(asset["bbox"])
    grids = {(a.get("proj:epsg"), a.get("proj:wkt2"), tuple(a.get("proj:transform") or ()), tuple(a["proj:shape"]))
             for a in manifest.assets.values() if a.get("proj:shape")}
    if "proj:shape" in asset and len(grids) == 1 and manifest.bbox:
        return manifest.bbox, manifest.geometry or _bbox_polygon(manifest.bbox)
    return None, None


def _bbox_polygon(bbox: list[float]) -> dict[str, Any]:
    west, south, east, north = bbox[:4]
    return {"type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}


def _stac_asset(source: Mapping[str, Any], href: str, expires: datetime) -> dict[str, Any]:
    """A manifest asset as a STAC 1.1 asset: presigned `href`, `expires`, `proj:code`, `bands`."""
    asset = {key: copy.deepcopy(value) for key, value in source.items() if key not in _ITEM_FIELDS}
    asset["href"] = href
    asset["expires"] = isoformat_z(expires)
    epsg = asset.pop("proj:epsg", None)
    if epsg is not None and "proj:code" not in asset:
        asset["proj:code"] = f"EPSG:{epsg}"  # projection extension v2 replaced proj:epsg by proj:code
    bands = _bands(asset.pop("raster:bands", None) or [], asset.pop("eo:bands", None) or [])
    if bands:
        asset["bands"] = bands
    return asset


def _bands(raster_bands: list[dict[str, Any]], eo_bands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """STAC 1.1 `bands`: the raster and eo extensions' band lists (1.x) merged, fields renamed as in
    raster and eo 2.0 (`data_type`, `nodata`, `statistics` are common metadata now)."""
    merged = []
    for index in range(max(len(raster_bands), len(eo_bands))):
        band: dict[str, Any] = {}
        eo = eo_bands[index] if index < len(eo_bands) else {}
        for key, value in eo.items():
            band[key if key in _COMMON_BAND_FIELDS else f"eo:{key}"] = value
        raster = raster_bands[index] if index < len(raster_bands) else {}
        for key, value in raster.items():
            band[key if key in _COMMON_BAND_FIELDS else f"raster:{key}"] = value
        merged.append(band)
    return merged


def _item_datetime(asset: Mapping[str, Any], properties: Mapping[str, Any], job: Job) -> dict[str, Any]:
    """The file's time: its own instant or span, else the run's span, else when the job produced it."""
    if asset.get("datetime"):
        return {"datetime": asset["datetime"]}
    for source in (asset, properties):
        if source.get("start_datetime") and source.get("end_datetime"):
            return {"datetime": None, "start_datetime": source["start_datetime"],
                    "end_datetime": source["end_datetime"]}
    return {"datetime": isoformat_z(job.finished or job.updated)}


def _summaries(assets: Any) -> dict[str, Any]:
    codes = sorted({a["proj:code"] for a in assets if a.get("proj:code")})
    return {"proj:code": codes} if codes else {}


def _extensions(document: dict[str, Any]) -> list[str]:
    """The schemas of the extensions whose fields the document uses."""
    used: set[str] = set()

    def visit(fields: Any) -> None:
        if isinstance(fields, dict):
            for key, value in fields.items():
                prefix, colon, _ = key.partition(":")
                if colon and prefix in EXTENSION_SCHEMAS:
                    used.add(prefix)
                if key == "expires":
                    used.add("timestamps")
                if key == "bands" and isinstance(value, list):
                    for band in value:
                        visit(band)

    visit(document.get("properties"))
    visit(document.get("summaries"))
    for asset in (document.get("assets") or {}).values():
        visit(asset)
    return [schema for prefix, schema in EXTENSION_SCHEMAS.items() if prefix in used]
