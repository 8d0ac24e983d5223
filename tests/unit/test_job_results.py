"""The results documents built from a run's manifest: Collection, Items, `partial`, and manifests
written before assets carried their own footprint (no AWS: the store is a dict of manifests)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pystac import STACObjectType
from pystac.validation.stac_validator import JsonSchemaSTACValidator

from stratus import catalog_layout
from stratus.domain.jobs import Job
from stratus.domain.results import RESULT_STATUS, job_result_item, job_results
from stratus.errors import JobNotFinishedException, NotFoundException
from stratus.events import JobStatus
from stratus.run_contract import ResultsManifest

BASE = "https://api.example/openeo/1.2"
FINISHED = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
# A manifest as the processing wrote it before assets carried bbox, geometry and proj:code.
LEGACY_MANIFEST = {
    "bbox": [11.34, 46.49, 11.36, 46.51],
    "geometry": {"type": "Polygon", "coordinates": [[[11.34, 46.49], [11.36, 46.49], [11.36, 46.51],
                                                     [11.34, 46.51], [11.34, 46.49]]]},
    "properties": {"datetime": None, "start_datetime": "2022-06-02T10:00:00Z",
                   "end_datetime": "2022-06-07T10:00:00Z", "proj:epsg": 32632},
    "assets": {
        "result.tif": {"key": "k/result.tif", "type": "image/tiff", "roles": ["data"], "title": "Result",
                       "file:size": 10, "start_datetime": "2022-06-02T10:00:00Z",
                       "end_datetime": "2022-06-07T10:00:00Z", "proj:epsg": 32632, "proj:shape": [2, 3],
                       "proj:transform": [10, 0, 679720, 0, -10, 5151920],
                       "proj:bbox": [679720, 5151900, 679750, 5151920],
                       "raster:bands": [{"data_type": "float32", "nodata": "nan", "scale": 0.5,
                                         "statistics": {"minimum": 0, "maximum": 1}}],
                       "eo:bands": [{"name": "ndvi", "common_name": None}]},
        "result.json": {"key": "k/result.json", "type": "application/json", "roles": ["data"], "title": "Result",
                        "file:size": 5},
    },
}


class DictStore:
    """`ResultStore` over a dict of manifests; presigning is a pure function of key and expiry."""

    def __init__(self, manifests: dict[str, dict]):
        self.manifests = manifests

    def read_manifest(self, key):
        return ResultsManifest.from_json(self.manifests[key]) if key in self.manifests else None

    def read_document(self, key):
        return self.manifests.get(key)

    def presign(self, key, expires_in_s):
        return f"https://bucket.example/{key}?X-Amz-Expires={expires_in_s}"


def job(status=JobStatus.FINISHED, run_id="r-1") -> Job:
    return Job(job_id="j-1", user_id="alice", process={}, status=status, run_id=run_id, finished=FINISHED)


def store_with(manifest) -> DictStore:
    return DictStore({catalog_layout.manifest_key(catalog_layout.results_prefix("j-1", "r-1")): manifest})


def valid(document, kind):
    JsonSchemaSTACValidator().validate_core(document, kind, "1.1.0")
    return document


def test_a_legacy_manifest_becomes_stac_1_1():
    store = store_with(LEGACY_MANIFEST)
    collection = valid(job_results(job(), store, BASE, 60), STACObjectType.COLLECTION)
    # proj:epsg became proj:code, raster and eo bands became `bands` (raster 2.0 names)
    asset = collection["assets"]["result.tif"]
    assert asset["proj:code"] == "EPSG:32632" and "proj:epsg" not in asset
    assert asset["bands"] == [{"name": "ndvi", "eo:common_name": None, "data_type": "float32", "nodata": "nan",
                               "raster:scale": 0.5, "statistics": {"minimum": 0, "maximum": 1}}]
    assert asset["href"] == "https://bucket.example/k/result.tif?X-Amz-Expires=60" and "key" not in asset
    assert collection["summaries"] == {"proj:code": ["EPSG:32632"]}
    # the one gridded asset takes the manifest's footprint; the JSON file has none
    tif = valid(job_result_item(job(), store, BASE, "result.tif", 60), STACObjectType.ITEM)
    assert tif["bbox"] == LEGACY_MANIFEST["bbox"] and tif["geometry"] == LEGACY_MANIFEST["geometry"]
    assert tif["properties"]["start_datetime"] == "2022-06-02T10:00:00Z"
    assert tif["id"] == "result.tif"  # `result` would be ambiguous: result.tif and result.json
    json_item = valid(job_result_item(job(), store, BASE, "result.json", 60), STACObjectType.ITEM)
    assert json_item["geometry"] is None and "bbox" not in json_item
    assert not any("projection" in ext or "raster" in ext for ext in json_item["stac_extensions"])


def test_item_ids_are_file_stems_unless_ambiguous():
    store = store_with(LEGACY_MANIFEST)
    links = [link for link in job_results(job(), store, BASE, 60)["links"] if link["rel"] == "item"]
    assert [link["href"] for link in links] == [f"{BASE}/jobs/j-1/results/items/result.tif",
                                                f"{BASE}/jobs/j-1/results/items/result.json"]
    with pytest.raises(NotFoundException):
        job_result_item(job(), store, BASE, "result", 60)


def test_an_item_of_a_file_without_time_takes_the_time_it_was_made():
    manifest = {"bbox": None, "geometry": None, "properties": {"datetime": None, "start_datetime": None,
                                                               "end_datetime": None},
                "assets": {"result.json": LEGACY_MANIFEST["assets"]["result.json"]}}
    item = valid(job_result_item(job(), store_with(manifest), BASE, "result", 60), STACObjectType.ITEM)
    assert item["properties"]["datetime"] == "2024-05-01T12:00:00Z"
    collection = valid(job_results(job(), store_with(manifest), BASE, 60), STACObjectType.COLLECTION)
    assert collection["extent"]["spatial"]["bbox"] == [[-180, -90, 180, 90]]
    assert collection["summaries"] == {}


def test_unfinished_jobs_need_partial():
    for status in (JobStatus.CREATED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.ERROR, JobStatus.CANCELED):
        with pytest.raises(JobNotFinishedException):
            job_results(job(status), store_with(LEGACY_MANIFEST), BASE, 60)
        partial = valid(job_results(job(status), store_with(LEGACY_MANIFEST), BASE, 60, partial=True),
                        STACObjectType.COLLECTION)
        assert partial["openeo:status"] == RESULT_STATUS[status] and len(partial["assets"]) == 2
    never_started = job_results(job(JobStatus.CREATED, run_id=None), DictStore({}), BASE, 60, partial=True)
    assert never_started["openeo:status"] == "running" and never_started["assets"] == {}
    assert never_started["stac_extensions"] == []


def test_a_finished_job_without_manifest_has_no_results():
    with pytest.raises(JobNotFinishedException, match="not available"):
        job_results(job(), DictStore({}), BASE, 60, partial=True)
    with pytest.raises(JobNotFinishedException):
        job_result_item(job(), DictStore({}), BASE, "result", 60)


def test_a_saved_model_is_an_item_of_the_ml_model_extension():
    model = {"key": "jobs/j-1/runs/r-1/results/model.skops", "type": "application/octet-stream; application=skops",
             "roles": ["ml-model:checkpoint"], "title": "Random forest classification model", "file:size": 2048,
             "ml-model:type": "ml-model", "ml-model:prediction_type": "classification",
             "ml-model:architecture": "random-forest", "stratus:classes": [1, 2, 5]}
    manifest = {"bbox": None, "geometry": None, "properties": {}, "assets": {"model.skops": model}}
    item = valid(job_result_item(job(), store_with(manifest), BASE, "model", 60), STACObjectType.ITEM)
    assert item["properties"]["ml-model:prediction_type"] == "classification"
    assert item["properties"]["ml-model:architecture"] == "random-forest"
    assert "https://stac-extensions.github.io/ml-model/v1.0.0/schema.json" in item["stac_extensions"]
    assert item["assets"]["model.skops"]["roles"] == ["ml-model:checkpoint"]


def tile_asset(tile_id, west):
    return {"key": f"jobs/j-1/runs/r-1/results/tiles/{tile_id}/result.tif", "type": "image/tiff; application=geotiff",
            "roles": ["data"], "datetime": "2022-06-02T10:00:00Z", "bbox": [west, 46.0, west + 0.1, 46.1]}


def test_an_errored_fan_out_run_lists_its_finished_tiles_and_names_the_missing_ones_when_partial():
    # Given a fanned-out run whose combine step found one of three tiles failed (`partial.json`, no manifest)
    partial = {"bbox": [11.0, 46.0, 11.2, 46.1], "geometry": None, "properties": {},
               "assets": {"result_r0000c0000.tif": tile_asset("r0000c0000", 11.0),
                          "result_r0000c0002.tif": tile_asset("r0000c0002", 11.1)},
               "missing": [{"tile_id": "r0000c0001", "reason": "NoDataAvailable: the source COG is unreadable"}]}
    store = DictStore({catalog_layout.partial_manifest_key(catalog_layout.results_prefix("j-1", "r-1")): partial})
    errored = job(JobStatus.ERROR)
    # Then without `partial` the job answers as any errored job
    with pytest.raises(JobNotFinishedException):
        job_results(errored, store, BASE, 60)
    # and with it the finished tiles are the items, the missing tile is named, the status is `error`
    collection = valid(job_results(errored, store, BASE, 60, partial=True), STACObjectType.COLLECTION)
    assert collection["openeo:status"] == "error"
    assert sorted(collection["assets"]) == ["result_r0000c0000.tif", "result_r0000c0002.tif"]
    assert [link["title"] for link in collection["links"] if link["rel"] == "item"] == [
        "result_r0000c0000.tif", "result_r0000c0002.tif"]
    assert collection["stratus:missing_tiles"] == partial["missing"]
    assert "r0000c0001" in collection["description"]
    item = valid(job_result_item(errored, store, BASE, "result_r0000c0002", 60), STACObjectType.ITEM)
    assert item["bbox"] == [11.1, 46.0, 11.2, 46.1]
