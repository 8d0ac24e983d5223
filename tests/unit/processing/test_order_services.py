"""The shipped order services run on the demo collection: each service's process graph, with an order's
parameters bound as the API binds them, goes through the Batch entrypoint's `run_job` (graph from
S3, events, results and manifest), and its output is checked against numpy on the source COGs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Point, shape
from stratus import catalog_layout
from stratus.domain.order_inputs import bind_parameters, check_parameters, geometry_problems
from stratus.domain.orders import check_periods, no_data_problem
from stratus.domain.services import shipped_services
from stratus.events import EventPublisher
from stratus.run_contract import RunConfig
from stratus.settings import Settings
from stratus_local.demo_data import DEMO_COLLECTION_ID
from stratus_processing.io.cog import RasterReader
from stratus_processing.runner import EXIT_FAILED, EXIT_OK, run_job

from tests.unit.processing.conftest import DEMO_BUCKET
from tests import support_land_cover as land_cover
from tests.unit.processing.processing_testkit import RecordingSQS

RESULTS_BUCKET = "results"
STATUS_QUEUE, LOG_QUEUE = "https://sqs/status", "https://sqs/logs"
CLOUDY_SCL = (3, 8, 9, 10)
BOLZANO_WEST, BOLZANO_NORTH = 678000, 5153000  # the demo scenes' grid origin (EPSG:32632)
# inside the Bolzano scenes, in lon/lat as customers send it
AREA = {"type": "Polygon", "coordinates": [[[11.325, 46.485], [11.35, 46.485], [11.35, 46.5], [11.325, 46.5],
                                            [11.325, 46.485]]]}
FIELDS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"name": "south-west"}, "geometry": {"type": "Polygon", "coordinates": [[
        [11.325, 46.485], [11.335, 46.485], [11.335, 46.49], [11.325, 46.49], [11.325, 46.485]]]}},
    {"type": "Feature", "properties": {"name": "town"}, "geometry": {"type": "Polygon", "coordinates": [[
        [11.3495, 46.4942], [11.352, 46.4942], [11.3515, 46.4958], [11.3495, 46.4958], [11.3495, 46.4942]]]}}]}
TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)


@pytest.fixture(scope="module")
def services():
    return shipped_services(DEMO_COLLECTION_ID)


@pytest.fixture
def run_order(demo_s3, services):
    """Bind an order's parameters into a service's graph as the API does, and run it as a batch job."""
    written = []

    def run(service_id, parameters, job_id="j-order"):
        service = services[service_id]
        assert check_parameters(service.parameters, parameters) == []
        bound = bind_parameters(service.process_graph, service.parameters, parameters)
        assert check_periods(bound) == []
        config = RunConfig(job_id=job_id, run_id="r-1", graph_key=catalog_layout.graph_key(job_id, "r-1"),
                           results_prefix=catalog_layout.results_prefix(job_id, "r-1"))
        demo_s3.put_object(Bucket=RESULTS_BUCKET, Key=config.graph_key,
                           Body=json.dumps({"process_graph": bound}).encode())
        demo_s3.written.clear()
        sqs = RecordingSQS()
        settings = Settings(data_bucket=DEMO_BUCKET, results_bucket=RESULTS_BUCKET, status_queue_url=STATUS_QUEUE,
                            log_queue_url=LOG_QUEUE)
        exit_code = run_job(config, settings, s3=demo_s3, publisher=EventPublisher(sqs, STATUS_QUEUE, LOG_QUEUE),
                            rasters=RasterReader(resolve_href=demo_s3.resolve_href))
        written.extend([*demo_s3.written, config.graph_key])
        manifest_path = demo_s3.path(RESULTS_BUCKET, catalog_layout.manifest_key(config.results_prefix))
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        return exit_code, manifest, sqs

    yield run
    for key in written:
        demo_s3.path(RESULTS_BUCKET, key).unlink(missing_ok=True)


def _items(demo_s3, start, end):
    keys = demo_s3.list_objects_v2(Bucket=DEMO_BUCKET,
                                   Prefix=catalog_layout.items_prefix(DEMO_COLLECTION_ID))["Contents"]
    items = [json.loads(demo_s3.path(DEMO_BUCKET, k["Key"]).read_text()) for k in keys if k["Key"].endswith(".json")]
    return [i for i in items
            if i["properties"]["proj:epsg"] == 32632 and start <= i["properties"]["datetime"][:10] < end]


def _read(demo_s3, item, band):
    with rasterio.open(demo_s3.resolve_href(item["assets"][band]["href"])) as src:
        return src.read(1)


def _masked_ndvi(demo_s3, items, transform, shape_, *, mask_clouds=True):
    """(dates, rows, cols) NDVI on the output grid from the source COGs: no-data (0) and cloudy SCL
    pixels are NaN; SCL (20 m) is looked up at the 10 m pixel centre."""
    rows, cols = np.indices(shape_)
    xs = transform.c + (cols + 0.5) * transform.a
    ys = transform.f + (rows + 0.5) * transform.e
    r10, c10 = ((BOLZANO_NORTH - ys) // 10).astype(int), ((xs - BOLZANO_WEST) // 10).astype(int)
    r20, c20 = ((BOLZANO_NORTH - ys) // 20).astype(int), ((xs - BOLZANO_WEST) // 20).astype(int)
    stack = []
    for item in items:
        red, nir = (_read(demo_s3, item, b)[r10, c10].astype("float64") for b in ("B04", "B08"))
        scl = _read(demo_s3, item, "SCL")[r20, c20]
        valid = (red > 0) & (nir > 0) & (~np.isin(scl, CLOUDY_SCL) if mask_clouds else True)
        with np.errstate(invalid="ignore", divide="ignore"):
            stack.append(np.where(valid, (nir - red) / (nir + red), np.nan))  # the 0.0001 scale cancels out
    return np.stack(stack)


def _nan_reduce(function, stack):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels cloudy on every date stay no-data
        return function(stack, axis=0)


def _result_tif(demo_s3, manifest):
    asset = manifest["assets"]["result.tif"]
    with rasterio.open(demo_s3.path(RESULTS_BUCKET, asset["key"])) as src:
        return src.read(1).astype("float64"), src.transform, src.crs


def _inside(polygon_lonlat, transform, shape_):
    """Pixel centres in the polygon, reprojected with densified edges (a straight edge in lon/lat is
    a curve in UTM, and the engine follows the curve)."""
    ring = polygon_lonlat["coordinates"][0]
    dense = [(x0 + (x1 - x0) * k / 100, y0 + (y1 - y0) * k / 100)
             for (x0, y0), (x1, y1) in zip(ring, ring[1:]) for k in range(100)]
    polygon = shape({"type": "Polygon", "coordinates": [[TO_UTM.transform(x, y) for x, y in dense + [ring[0]]]]})
    rows, cols = np.indices(shape_)
    xs = transform.c + (cols + 0.5) * transform.a
    ys = transform.f + (rows + 0.5) * transform.e
    return np.vectorize(lambda x, y: polygon.contains(Point(x, y)))(xs, ys)


def test_ndvi_composite_is_the_median_of_cloud_masked_ndvi(run_order, demo_s3):
    exit_code, manifest, sqs = run_order("ndvi-composite", {"area": AREA, "start_date": "2022-06-01",
                                                            "end_date": "2022-07-01"})
    assert exit_code == EXIT_OK, [m["message"] for m in sqs.messages[LOG_QUEUE] if m["level"] == "error"]
    assert sqs.messages[STATUS_QUEUE][-1]["progress"] == 100
    result, transform, crs = _result_tif(demo_s3, manifest)
    assert crs.to_epsg() == 32632 and transform.a == 10
    stack = _masked_ndvi(demo_s3, _items(demo_s3, "2022-06-01", "2022-07-01"), transform, result.shape)
    assert len(stack) == 6
    expected = _nan_reduce(np.nanmedian, stack)
    # only pixels whose centre is in the area have values
    inside = _inside(AREA, transform, result.shape)
    assert not np.isfinite(result[~inside]).any()
    finite = np.isfinite(result)
    assert finite.sum() > 0.9 * inside.sum()
    np.testing.assert_array_equal(finite, inside & np.isfinite(expected))
    np.testing.assert_allclose(result[finite], expected[finite], atol=1e-6)
    # the cloud mask matters: without it many medians differ
    unmasked = _nan_reduce(np.nanmedian, _masked_ndvi(demo_s3, _items(demo_s3, "2022-06-01", "2022-07-01"),
                                                      transform, result.shape, mask_clouds=False))
    assert (np.abs(unmasked[finite] - result[finite]) > 0.01).sum() > 100


def test_vegetation_change_is_the_difference_of_period_means(run_order, demo_s3):
    exit_code, manifest, sqs = run_order("vegetation-change", {
        "area": AREA, "reference_start": "2022-06-01", "reference_end": "2022-06-15",
        "start_date": "2022-07-01", "end_date": "2022-08-01"})
    assert exit_code == EXIT_OK, [m["message"] for m in sqs.messages[LOG_QUEUE] if m["level"] == "error"]
    result, transform, _ = _result_tif(demo_s3, manifest)
    reference = _nan_reduce(np.nanmean, _masked_ndvi(demo_s3, _items(demo_s3, "2022-06-01", "2022-06-15"),
                                                     transform, result.shape))
    compared = _nan_reduce(np.nanmean, _masked_ndvi(demo_s3, _items(demo_s3, "2022-07-01", "2022-08-01"),
                                                    transform, result.shape))
    expected = compared - reference
    finite = np.isfinite(result)
    np.testing.assert_array_equal(finite, _inside(AREA, transform, result.shape) & np.isfinite(expected))
    np.testing.assert_allclose(result[finite], expected[finite], atol=1e-6)
    # the demo's crops change between early June and July: both signs occur
    assert (result[finite] > 0.05).any() and (result[finite] < -0.05).any()


def test_zonal_statistics_report_the_mean_ndvi_per_field(run_order, demo_s3):
    exit_code, manifest, sqs = run_order("zonal-statistics", {"area": FIELDS, "start_date": "2022-06-01",
                                                              "end_date": "2022-08-01"})
    assert exit_code == EXIT_OK, [m["message"] for m in sqs.messages[LOG_QUEUE] if m["level"] == "error"]
    asset = manifest["assets"]["result.json"]
    assert asset["type"] == "application/json"
    report = json.loads(demo_s3.path(RESULTS_BUCKET, asset["key"]).read_text())
    assert report["dimensions"] == ["geometry"] and len(report["data"]) == 2
    assert [p["name"] for p in report["properties"]] == ["south-west", "town"]
    # reference: the per-pixel mean NDVI over time on the 10 m grid around the fields, then the mean over
    # the pixels whose centre lies in each field
    from affine import Affine
    transform = Affine(10, 0, 678400, 0, -10, 5152300)
    grid_shape = (200, 260)
    mean = _nan_reduce(np.nanmean, _masked_ndvi(demo_s3, _items(demo_s3, "2022-06-01", "2022-08-01"), transform,
                                                grid_shape))
    for value, feature in zip(report["data"], FIELDS["features"], strict=True):
        inside = _inside(feature["geometry"], transform, grid_shape)
        assert value == pytest.approx(float(np.nanmean(mean[inside])), abs=1e-9)
    # fields are greener than the town
    assert report["data"][0] > report["data"][1] + 0.1


def test_an_area_without_data_fails_with_no_data_and_is_caught_by_the_dry_run(run_order, services):
    paris = {"type": "Polygon", "coordinates": [[[2.3, 48.85], [2.35, 48.85], [2.35, 48.87], [2.3, 48.87],
                                                 [2.3, 48.85]]]}
    parameters = {"area": paris, "start_date": "2022-06-01", "end_date": "2022-07-01"}
    exit_code, _, sqs = run_order("ndvi-composite", parameters)
    assert exit_code == EXIT_FAILED
    [error] = [m for m in sqs.messages[LOG_QUEUE] if m["level"] == "error"]
    assert error["code"] == "NoDataAvailable"
    # the API's dry run finds that before any run
    service = services["ndvi-composite"]
    bound = bind_parameters(service.process_graph, service.parameters, parameters)

    class Catalog:
        def collection(self, collection_id):
            return {"id": collection_id}

        def items(self, collection_id, search=None):
            return [{"bbox": [11.318949, 46.479257, 11.359167, 46.507033],
                     "properties": {"datetime": "2022-06-02T10:20:31Z"}}]

    assert no_data_problem(bound, Catalog()).error_code == "NoDataAvailable"
    assert geometry_problems(paris) == []


# --- land-cover classification ------------------------------------------------------------------------

def test_land_cover_service_delivers_a_map_and_a_held_out_accuracy_report(run_order, demo_s3):
    # Given training polygons labelled from the scenes' own land cover, inside a 1.4 km block of Bolzano
    rows, cols = slice(60, 200), slice(150, 290)
    polygons = land_cover.training_polygons(rows, cols, per_class=10)
    parameters = {"training_polygons": polygons, "area": land_cover.area_lonlat(rows, cols),
                  "start_date": "2022-06-01", "end_date": "2022-07-01", "num_trees": 30, "seed": 7}
    # When the order runs
    exit_code, manifest, _ = run_order("land-cover-classification", parameters)
    # Then a uint16 map that agrees with the truth, and a report on the held-out third of the polygons
    assert exit_code == EXIT_OK and set(manifest["assets"]) == {"result.tif", "result.json"}
    with rasterio.open(demo_s3.path(RESULTS_BUCKET, manifest["assets"]["result.tif"]["key"])) as dataset:
        classified, transform = dataset.read(1), dataset.transform
        assert dataset.dtypes[0] == "uint16" and dataset.nodata == 65535
    assert land_cover.agreement(classified.astype(float), transform) > 0.8
    report = json.loads(demo_s3.path(RESULTS_BUCKET, manifest["assets"]["result.json"]["key"]).read_text())
    classes = sorted({f["properties"]["target"] for f in polygons["features"]})
    assert report["classes"] == classes and len(classes) >= 4
    held_out = report["samples"] + report["samples_left_out"]
    assert held_out == pytest.approx(0.3 * len(polygons["features"]), abs=len(classes))
    assert report["overall_accuracy"] > 0.85 and 0.8 < report["kappa"] <= 1
    assert report["overall_accuracy"] == pytest.approx(np.trace(report["confusion_matrix"]) / report["samples"])
