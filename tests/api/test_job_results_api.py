"""Batch job results through the real handler: the STAC 1.1 Collection with its Items, `partial`,
and the job's `usage`. Results are written by the real processing code (save + manifest) into the
emulated results bucket, under the run the API started."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from pystac import Collection, Item, STACObjectType
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from stratus_processing.io.save import save_geotiff, save_json
from stratus_processing.manifest import build_manifest
from stratus_processing.results import S3ResultStore

from stratus import catalog_layout, resources
from stratus.backend import Backend
from stratus.domain.estimate import CostModel
from stratus.domain.jobs import apply_status_event
from stratus.events import JobStatus, StatusEvent
from tests.unit.processing.processing_testkit import red_nir_cube, small_grid, utc

GRAPH = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
PROJECTION_V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_V2 = "https://stac-extensions.github.io/raster/v2.0.0/schema.json"
FILE_V21 = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
USAGE = {"cpu": {"value": 12.5, "unit": "cpu-seconds"}, "memory": {"value": 3000.0, "unit": "mb-seconds"},
         "duration": {"value": 40.0, "unit": "seconds"}, "max_memory": {"value": 210.0, "unit": "mb"}}


def _job(api, user="alice") -> str:
    response = api.post("/openeo/1.2/jobs", user=user, json_body={"process": GRAPH, "title": "NDVI"})
    assert response.status == 201, response.body
    return response.headers["openeo-identifier"]


def _move_to(api, job_id: str, status: JobStatus) -> str:
    """Start a run and report it up to `status` (queued by the start, then running) as the status consumer would."""
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    repository = Backend(api.settings).jobs_repository
    run_id = repository.get(job_id).run_id
    steps = [JobStatus.RUNNING] + ([status] if status.rank > JobStatus.RUNNING.rank else [])  # queued by the start
    for step in steps:
        if step.rank > status.rank:
            break
        assert apply_status_event(repository, StatusEvent(job_id=job_id, run_id=run_id, status=step,
                                                          progress=100 if step is JobStatus.FINISHED else None))
    return run_id


def _write_results(api, job_id: str, run_id: str) -> S3ResultStore:
    """What the processing leaves for a run: two per-date COGs, a JSON file, then the manifest."""
    s3 = boto3.client("s3", region_name="eu-central-1")
    store = S3ResultStore(s3, api.settings.results_bucket, catalog_layout.results_prefix(job_id, run_id))
    red = np.array([[[0.1, 0.2, np.nan], [0.3, 0.4, 0.5]], [[0.2, 0.2, 0.2], [np.nan, 0.1, 0.0]]])
    nir = np.array([[[0.5, 0.6, np.nan], [0.1, 0.8, 0.9]], [[0.4, 0.4, 0.4], [0.3, np.nan, 1.0]]])
    cube = red_nir_cube(red, nir, grid=small_grid(3, 2, west=679720.0, north=5151920.0),
                        times=[utc(2022, 6, 2, 10, 20, 31), utc(2022, 6, 7, 10, 20, 31)])
    save_geotiff(cube, store)
    save_json({"mean": 0.42}, store)
    store.write_manifest(build_manifest(store.assets))
    return store


def _path(api, href: str) -> str:
    """The request path of an absolute link of this API."""
    assert href.startswith("http://testserver/openeo/1.2/"), href
    return href.removeprefix("http://testserver")


def _validate(document: dict, kind: STACObjectType) -> None:
    """STAC 1.1 core schema (offline, pystac's bundled schemas) and pystac's parser."""
    JsonSchemaSTACValidator().validate_core(document, kind, "1.1.0")
    (Item if kind is STACObjectType.ITEM else Collection).from_dict(document)


@pytest.fixture
def finished_job(api):
    job_id = _job(api)
    run_id = _move_to(api, job_id, JobStatus.FINISHED)
    store = _write_results(api, job_id, run_id)
    return job_id, store


def test_results_are_a_stac_collection_linking_one_item_per_file(api, finished_job):
    job_id, store = finished_job
    # When the results are listed
    response = api.get(f"/openeo/1.2/jobs/{job_id}/results", user="alice")
    # Then they are a valid STAC 1.1 Collection of a finished job
    assert response.status == 200, response.body
    collection = response.json()
    _validate(collection, STACObjectType.COLLECTION)
    assert (collection["type"], collection["stac_version"], collection["id"]) == ("Collection", "1.1.0", job_id)
    assert collection["openeo:status"] == "finished" and collection["title"] == "NDVI"
    assert collection["summaries"] == {"proj:code": ["EPSG:32632"]}
    assert collection["extent"]["temporal"]["interval"] == [["2022-06-02T10:20:31Z", "2022-06-07T10:20:31Z"]]
    west, south, east, north = collection["extent"]["spatial"]["bbox"][0]
    assert 11.34 < west < east < 11.36 and 46.49 < south < north < 46.51
    # And every file is a collection-level asset (as before Items existed), with a fresh presigned URL
    names = {"result_2022-06-02.tif", "result_2022-06-07.tif", "result.json"}
    assert set(collection["assets"]) == names
    for name, asset in collection["assets"].items():
        assert "X-Amz-Signature=" in asset["href"] and f"/{name}?" in asset["href"]
        assert asset["expires"].endswith("Z") and asset["roles"] == ["data"]
    # And each file is linked as an Item
    item_links = [link for link in collection["links"] if link["rel"] == "item"]
    assert {link["type"] for link in item_links} == {"application/geo+json"}
    assert sorted(link["href"].rsplit("/", 1)[1] for link in item_links) == [
        "result", "result_2022-06-02", "result_2022-06-07"]
    rels = {link["rel"]: link["href"] for link in collection["links"]}
    assert rels["self"] == rels["canonical"] == f"http://testserver/openeo/1.2/jobs/{job_id}/results"
    assert set(collection["stac_extensions"]) == {PROJECTION_V2, RASTER_V2, FILE_V21,
                                                  "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
                                                  "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json"}


def test_a_raster_item_has_footprint_time_projection_bands_and_file_info(api, finished_job):
    job_id, store = finished_job
    # When an Item linked from the results is fetched
    collection = api.get(f"/openeo/1.2/jobs/{job_id}/results", user="alice").json()
    link = next(link for link in collection["links"] if link["href"].endswith("/items/result_2022-06-07"))
    response = api.get(_path(api, link["href"]), user="alice")
    # Then it is a valid STAC 1.1 Item with its footprint in WGS84 and its date
    assert response.status == 200 and response.headers["content-type"] == "application/geo+json"
    item = response.json()
    _validate(item, STACObjectType.ITEM)
    assert item["id"] == "result_2022-06-07" and item["collection"] == job_id
    assert item["properties"]["datetime"] == "2022-06-07T10:20:31Z" and item["properties"]["expires"].endswith("Z")
    assert item["geometry"]["type"] == "Polygon"
    west, south, east, north = item["bbox"]
    ring = item["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and all(west - 1e-6 <= x <= east + 1e-6 and south - 1e-6 <= y <= north + 1e-6
                                       for x, y in ring)
    assert 11.34 < west < east < 11.36 and 46.49 < south < north < 46.51
    # And its one asset: presigned, with projection, bands and file size as the file really is
    [(name, asset)] = item["assets"].items()
    assert name == "result_2022-06-07.tif"
    assert "X-Amz-Signature=" in asset["href"] and asset["roles"] == ["data"]
    assert asset["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    record = next(r for r in store.assets if r.name == name)
    head = boto3.client("s3", region_name="eu-central-1").head_object(Bucket=store.bucket, Key=record.key)
    assert asset["file:size"] == head["ContentLength"]
    assert asset["proj:code"] == "EPSG:32632" and "proj:epsg" not in asset
    assert asset["proj:shape"] == [2, 3] and asset["proj:bbox"] == [679720.0, 5151900.0, 679750.0, 5151920.0]
    assert [b["name"] for b in asset["bands"]] == ["B04", "B08"]
    assert [b["eo:common_name"] for b in asset["bands"]] == ["red", "nir"]
    assert asset["bands"][0]["data_type"] == "float32" and asset["bands"][0]["nodata"] == "nan"
    assert asset["bands"][1]["statistics"]["maximum"] == pytest.approx(1.0)
    assert asset["raster:sampling"] == "area" and asset["raster:spatial_resolution"] == 10
    assert "raster:bands" not in asset and "eo:bands" not in asset
    # And pystac reads the extensions it knows from it
    parsed = Item.from_dict(item)
    assert ProjectionExtension.has_extension(parsed)
    projection = ProjectionExtension.ext(parsed.assets[name])
    assert (projection.code, projection.shape) == ("EPSG:32632", [2, 3])
    assert FileExtension.ext(parsed.assets[name]).size == asset["file:size"]
    assert set(item["stac_extensions"]) >= {PROJECTION_V2, RASTER_V2, FILE_V21}
    # And it links back to the results
    rels = {link["rel"]: link["href"] for link in item["links"]}
    assert rels["self"] == rels["canonical"] == link["href"]
    assert rels["collection"] == rels["parent"] == f"http://testserver/openeo/1.2/jobs/{job_id}/results"


def test_an_item_without_location_has_no_geometry_and_the_run_time_span(api, finished_job):
    job_id, _ = finished_job
    item = api.get(f"/openeo/1.2/jobs/{job_id}/results/items/result", user="alice").json()
    _validate(item, STACObjectType.ITEM)
    assert item["geometry"] is None and "bbox" not in item
    assert item["properties"]["datetime"] is None
    assert (item["properties"]["start_datetime"], item["properties"]["end_datetime"]) == (
        "2022-06-02T10:20:31Z", "2022-06-07T10:20:31Z")
    [asset] = item["assets"].values()
    assert asset["type"] == "application/json" and asset["file:size"] > 0
    assert not any(ext.startswith("https://stac-extensions.github.io/projection/") for ext in item["stac_extensions"])


def test_every_request_presigns_anew(api, finished_job, monkeypatch):
    job_id, _ = finished_job
    first = api.get(f"/openeo/1.2/jobs/{job_id}/results/items/result_2022-06-02", user="alice").json()
    monkeypatch.setattr("stratus.domain.results.utcnow", lambda: utc(2030, 1, 1))
    second = api.get(f"/openeo/1.2/jobs/{job_id}/results/items/result_2022-06-02", user="alice").json()
    assert first["properties"]["expires"] != second["properties"]["expires"]
    assert second["properties"]["expires"].startswith("2030-01-01T")


def test_unknown_items_and_other_users_jobs_are_not_found(api, finished_job):
    job_id, _ = finished_job
    missing = api.get(f"/openeo/1.2/jobs/{job_id}/results/items/nope", user="alice")
    assert missing.status == 404 and missing.json()["code"] == "NotFound"
    foreign = api.get(f"/openeo/1.2/jobs/{job_id}/results/items/result", user="bob")
    assert foreign.status == 404 and foreign.json()["code"] == "JobNotFound"


@pytest.mark.parametrize("status, expected", [
    (JobStatus.CREATED, "running"), (JobStatus.QUEUED, "running"), (JobStatus.RUNNING, "running"),
    (JobStatus.ERROR, "error"), (JobStatus.CANCELED, "canceled"),
])
def test_partial_results_of_an_unfinished_job(api, status, expected):
    # Given a job that has not finished
    job_id = _job(api)
    if status is JobStatus.CANCELED:
        _move_to(api, job_id, JobStatus.RUNNING)
        assert api.delete(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 204
    elif status is not JobStatus.CREATED:
        run_id = _move_to(api, job_id, min(status, JobStatus.RUNNING, key=lambda s: s.rank))
        if status is JobStatus.ERROR:
            assert apply_status_event(Backend(api.settings).jobs_repository,
                                      StatusEvent(job_id=job_id, run_id=run_id, status=status, reason="boom"))
    assert api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()["status"] == status.value
    # When its results are asked for without `partial` (or with partial=false), Then it is not finished
    for query in ("", "?partial=false"):
        refused = api.get(f"/openeo/1.2/jobs/{job_id}/results{query}", user="alice")
        assert refused.status == 400 and refused.json()["code"] == "JobNotFinished"
    # When with `partial`, Then a valid, empty Collection tells the job's status
    for query in ("?partial=true", "?partial"):
        response = api.get(f"/openeo/1.2/jobs/{job_id}/results{query}", user="alice")
        assert response.status == 200, response.body
        collection = response.json()
        _validate(collection, STACObjectType.COLLECTION)
        assert collection["openeo:status"] == expected
        assert collection["assets"] == {} and not [link for link in collection["links"] if link["rel"] == "item"]


def test_partial_results_of_a_run_that_completed_its_files(api):
    # Given a running job whose processing already wrote its outputs and manifest
    job_id = _job(api)
    run_id = _move_to(api, job_id, JobStatus.RUNNING)
    _write_results(api, job_id, run_id)
    # When its results are listed with partial=true
    collection = api.get(f"/openeo/1.2/jobs/{job_id}/results?partial=true", user="alice").json()
    # Then they are there, still marked running, and their Items are served
    assert collection["openeo:status"] == "running" and len(collection["assets"]) == 3
    items = [link["href"] for link in collection["links"] if link["rel"] == "item"]
    assert len(items) == 3 and all(api.get(_path(api, href), user="alice").status == 200 for href in items)


def test_partial_of_a_finished_job_and_bad_values(api, finished_job):
    job_id, _ = finished_job
    finished = api.get(f"/openeo/1.2/jobs/{job_id}/results?partial=true", user="alice").json()
    assert finished["openeo:status"] == "finished" and len(finished["assets"]) == 3
    bad = api.get(f"/openeo/1.2/jobs/{job_id}/results?partial=maybe", user="alice")
    assert bad.status == 400 and bad.json()["code"] == "BadRequest"


def test_job_metadata_carries_timestamps_progress_usage_and_costs(api):
    # Given a job whose run reported its usage on its last `running` event, which arrived after `finished`
    job_id = _job(api)
    run_id = _move_to(api, job_id, JobStatus.FINISHED)
    late = StatusEvent(job_id=job_id, run_id=run_id, status=JobStatus.RUNNING, progress=100, usage=USAGE)
    model = CostModel(resources.COST_PER_GB_PROCESSED, resources.PROCESSING_SECONDS_PER_GB,
                      resources.MIN_JOB_DURATION_S)
    repository = Backend(api.settings).jobs_repository
    assert apply_status_event(repository, late, model)
    # When the job is described
    job = api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()
    # Then it is finished with its whole history, usage and the costs derived from it
    assert job["status"] == "finished" and job["progress"] == 100
    assert all(job[key].endswith("Z") for key in ("created", "updated", "queued", "started", "finished"))
    assert job["created"] <= job["queued"] <= job["started"] <= job["finished"]
    assert job["usage"] == USAGE
    assert job["costs"] == pytest.approx(40.0 / resources.PROCESSING_SECONDS_PER_GB * resources.COST_PER_GB_PROCESSED)
    # And the job list shows the costs too
    listed = next(j for j in api.get("/openeo/1.2/jobs", user="alice").json()["jobs"] if j["id"] == job_id)
    assert listed["costs"] == job["costs"] and "usage" not in listed
    # And a restart forgets the previous run's usage
    assert api.post(f"/openeo/1.2/jobs/{job_id}/results", user="alice").status == 202
    restarted = api.get(f"/openeo/1.2/jobs/{job_id}", user="alice").json()
    assert "usage" not in restarted and "costs" not in restarted
