"""Land cover with a random forest, end to end with the real openEO client: training polygons labelled from
the demo scenes' own land cover, samples from aggregate_spatial, a model trained and saved by a batch job
(its result Item carries the STAC ml-model extension), loaded again by job id for a classified map, the
same map from the same seed, and the accuracy on held-out polygons; then the same as a customer's order."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import rasterio
import requests

from tests import support_land_cover as land_cover
from tests.e2e.test_order_service import admin, base, register  # noqa: F401  (fixtures and the sign-up flow)

pytestmark = pytest.mark.e2e

COLLECTION = "sentinel-2-l2a-demo"
BANDS = ["B02", "B03", "B04", "B08"]
JUNE = ["2022-06-01", "2022-07-01"]
ROWS, COLS = slice(60, 200), slice(150, 290)  # 1.4 km of Bolzano: river, town, fields, wood lots
SEED = 7


def read_map(path_or_bytes):
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with rasterio.open(source) as dataset:
        return dataset.read(1), dataset.transform


def test_random_forest_land_cover_with_the_openeo_client(connection, tmp_path):
    polygons = land_cover.training_polygons(ROWS, COLS, per_class=10)
    composite = connection.load_collection(COLLECTION, spatial_extent=land_cover.area_lonlat(ROWS, COLS),
                                           temporal_extent=JUNE, bands=BANDS).reduce_dimension("t", reducer="median")
    samples = composite.aggregate_spatial(polygons, reducer="mean")
    model = samples.fit_class_random_forest(target=polygons, num_trees=30, seed=SEED)

    # a batch job trains and saves the model
    job = model.save_ml_model().create_job(title="land-cover model")
    job.start_and_wait()
    results = job.get_results().get_metadata()
    (link,) = [link for link in results["links"] if link["rel"] == "item"]
    item = connection.session.get(link["href"], auth=connection.auth, timeout=30).json()
    assert item["properties"]["ml-model:prediction_type"] == "classification"
    assert item["properties"]["ml-model:architecture"] == "random-forest"
    assert any("ml-model" in extension for extension in item["stac_extensions"])
    (asset,) = item["assets"].values()
    assert "ml-model:checkpoint" in asset["roles"]

    # the saved model, loaded by job id, classifies the area like the truth
    by_job = composite.predict_random_forest(model=job.job_id, dimension="bands")
    by_job.download(tmp_path / "by_job.tif", format="GTiff")
    classified, transform = read_map(tmp_path / "by_job.tif")
    agreement = land_cover.agreement(classified, transform)
    print(f"\nrandom forest map agrees with the truth on {agreement:.1%} of the pixels")
    assert agreement > 0.8  # 86.8% measured; the largest class everywhere: 46%

    # the same training with the same seed gives the same map; another seed another forest
    composite.predict_random_forest(model=model, dimension="bands").download(tmp_path / "again.tif", format="GTiff")
    np.testing.assert_array_equal(read_map(tmp_path / "again.tif")[0], classified)

    # and the accuracy on polygons held out of training is reported
    def part(name):
        return samples.process("split_training_samples", data=samples, test_fraction=0.3, seed=SEED, part=name)

    training, test = part("training"), part("test")
    held_out_model = training.fit_class_random_forest(target=training, num_trees=30, seed=SEED)
    report = test.process("class_accuracy_report", model=held_out_model, predictors=test, target=test).execute()
    print(f"held-out accuracy: overall {report['overall_accuracy']:.3f}, kappa {report['kappa']:.3f} "
          f"on {report['samples']} polygons")
    assert report["overall_accuracy"] > 0.85 and report["kappa"] > 0.8
    assert np.array(report["confusion_matrix"]).sum() == report["samples"]


def test_land_cover_order_delivers_map_and_accuracy_report(base, admin, local_system):  # noqa: F811
    customer = register(base, "clc", local_system)
    service = "land-cover-classification"
    assert customer.order(service, {}).status_code == 403  # granted by an admin, not by default
    granted = admin.request("POST", "/auth/scopes", json={"customer_id": customer.customer_id,
                                                           "scope": f"service:{service}"})
    assert granted.status_code in (200, 201), granted.text
    polygons = land_cover.training_polygons(ROWS, COLS, per_class=10)
    response = customer.order(service, {"training_polygons": polygons, "area": land_cover.area_lonlat(ROWS, COLS),
                                        "start_date": JUNE[0], "end_date": JUNE[1], "num_trees": 30, "seed": SEED})
    assert response.status_code == 201, response.text
    order, seen = customer.wait(response.json()["order_id"])
    assert order["status"] == "SUCCESS", (order, seen)
    (product,) = [p for p in customer.request("GET", "/products").json()["products"]
                  if p["order_id"] == order["order_id"]]
    downloads = {d["type"].split(";")[0]: d["href"] for d in product["downloads"]}
    classified, transform = read_map(requests.get(downloads["image/tiff"], timeout=30).content)
    assert land_cover.agreement(classified.astype(float), transform) > 0.8
    report = json.loads(requests.get(downloads["application/json"], timeout=30).content)
    assert report["overall_accuracy"] > 0.85 and report["kappa"] > 0.8
    assert report["classes"] == sorted({f["properties"]["target"] for f in polygons["features"]})
