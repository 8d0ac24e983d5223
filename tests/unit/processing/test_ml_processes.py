"""The random-forest processes on small arrays: training from a vector cube, prediction per pixel equal to
plain scikit-learn, probabilities, the seed, the model file (skops, refused when foreign) and its loading."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import skops.io
import stratus_processing.processes  # noqa: F401  (registers the processes)
from shapely.geometry import Point
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing import ml
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import Features
from stratus_processing.graph import evaluate_graph
from stratus_processing.grid import WGS84
from stratus_processing.reporting import RecordingReporter
from stratus_processing.results import DirectoryResultStore

from tests.unit.processing.processing_testkit import small_grid

BANDS = ["B02", "B04", "B08"]


def samples(count=60, seed=0):
    """Three separable classes (1, 2, 5) in three bands, with a little noise."""
    rng = np.random.default_rng(seed)
    labels = np.array([1, 2, 5])[np.arange(count) % 3]
    centres = {1: (0.1, 0.1, 0.5), 2: (0.2, 0.3, 0.2), 5: (0.6, 0.5, 0.4)}
    values = np.array([centres[int(label)] for label in labels]) + rng.normal(0, 0.03, (count, 3))
    return values, labels


def training_cube(values):
    features = Features(tuple(Point(11 + i * 1e-3, 46) for i in range(len(values))), tuple({} for _ in values),
                        tuple(None for _ in values), WGS84)
    return vectors.make_vector_cube(features, values, dims=["bands"], coords={"bands": BANDS})


def target_geojson(labels):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [11 + i * 1e-3, 46]},
         "properties": {"target": int(label)}} for i, label in enumerate(labels)]}


def pixel_cube(seed=1):
    """(bands: 3, y: 6, x: 7) of values around the classes' centres, one no-data pixel."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.05, 0.65, (3, 6, 7))
    values[1, 2, 3] = np.nan
    return cubes.make_cube(values, grid=small_grid(7, 6), bands=BANDS)


def run(graph, env=None, **parameters):
    return evaluate_graph(graph, env or EvalEnv(), arguments=parameters)


def fit_node(process_id="fit_class_random_forest", **extra):
    return {"process_id": process_id, "arguments": {"predictors": {"from_parameter": "predictors"},
                                                    "target": {"from_parameter": "target"}, **extra}}


def predict_graph(fit, predictor="predict_random_forest", over="reduce_dimension"):
    callback = {"process_graph": {"p": {"process_id": predictor, "result": True, "arguments": {
        "data": {"from_parameter": "data"}, "model": {"from_parameter": "context"}}}}}
    reducer_argument = "reducer" if over == "reduce_dimension" else "process"
    return {"fit": fit, "predict": {"process_id": over, "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "bands", reducer_argument: callback,
        "context": {"from_node": "fit"}}}}


def test_classification_per_pixel_equals_plain_scikit_learn():
    values, labels = samples()
    cube = pixel_cube()
    graph = predict_graph(fit_node(num_trees=25, seed=7, max_variables="sqrt"))
    # When
    result = run(graph, predictors=training_cube(values), target=target_geojson(labels), cube=cube)
    # Then the classes per pixel are scikit-learn's, with the same seed, on the same samples
    reference = RandomForestClassifier(n_estimators=25, max_features="sqrt", random_state=7).fit(
        values.astype(np.float32), labels)
    pixels = cube.values.reshape(3, -1).T
    expected = np.full(len(pixels), np.nan)
    valid = np.isfinite(pixels).all(axis=1)
    expected[valid] = reference.predict(pixels[valid].astype(np.float32))
    assert result.dims == ("y", "x")
    np.testing.assert_array_equal(result.values.ravel(), expected)
    assert np.isnan(result.values[2, 3]) and set(np.unique(expected[valid])) <= {1, 2, 5}


def test_class_probabilities_sum_to_one_in_class_order_and_follow_the_seed():
    values, labels = samples()
    cube = pixel_cube()

    def probabilities(seed):
        graph = predict_graph(fit_node(num_trees=15, seed=seed), "predict_class_probabilities", "apply_dimension")
        return run(graph, predictors=training_cube(values), target=target_geojson(labels), cube=cube)

    first, again, other = probabilities(3), probabilities(3), probabilities(4)
    assert first.dims == ("bands", "y", "x") and first.sizes["bands"] == 3  # classes 1, 2, 5
    np.testing.assert_allclose(np.nansum(first.values, axis=0)[np.isfinite(cube.values).all(axis=0)], 1.0)
    np.testing.assert_array_equal(first.values, again.values)
    assert not np.array_equal(np.nan_to_num(first.values), np.nan_to_num(other.values))
    # max_variables null: a third of the predictors (as the openeo client documents it)
    reference = RandomForestClassifier(n_estimators=15, max_features=1, random_state=3).fit(
        values.astype(np.float32), labels)
    np.testing.assert_allclose(first.values[:, 0, 0],
                               reference.predict_proba(cube.values[:, 0, 0][None].astype(np.float32))[0])


def test_regression_from_a_vector_cube_target():
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 1, (80, 3))
    truth = 2 * values[:, 0] + values[:, 2]
    target = training_cube(values).isel(bands=0, drop=True).copy(data=truth)
    graph = predict_graph(fit_node("fit_regr_random_forest", num_trees=30, seed=1, max_variables="all"))
    result = run(graph, predictors=training_cube(values), target=target, cube=pixel_cube())
    reference = RandomForestRegressor(n_estimators=30, max_features=None, random_state=1).fit(
        values.astype(np.float32), truth)
    expected = reference.predict(pixel_cube().values[:, 0, :].T.astype(np.float32))
    np.testing.assert_allclose(result.values[0], expected)


def test_training_leaves_out_geometries_without_values_and_reports_it():
    values, labels = samples()
    values[0, 1] = np.nan  # a polygon that covered no valid pixel of one band
    reporter = RecordingReporter()
    model = run({"fit": {**fit_node(seed=1), "result": True}}, EvalEnv(reporter=reporter),
                predictors=training_cube(values), target=target_geojson(labels))
    assert model.training["samples"] == 59 and model.predictors == tuple(BANDS) and model.classes == [1, 2, 5]
    assert any("1 of 60 training geometries left out" in log["message"] for log in reporter.logs)


@pytest.mark.parametrize(("target", "reason"), [
    (lambda labels: target_geojson(labels[:-1]), "59 training geometries, but the predictors have 60"),
    (lambda labels: target_geojson(np.ones_like(labels)), "at least two classes"),
    (lambda labels: {"type": "FeatureCollection", "features": [
        {**f, "properties": {"target": "forest"}} for f in target_geojson(labels)["features"]]}, "must be a number"),
])
def test_bad_training_targets_are_the_users_error(target, reason):
    values, labels = samples()
    with pytest.raises(ProcessParameterInvalidException, match=reason):
        run({"fit": {**fit_node(), "result": True}}, predictors=training_cube(values), target=target(labels))


def test_prediction_needs_the_trained_number_of_predictors():
    values, labels = samples()
    cube = pixel_cube().isel(bands=[0, 1])
    with pytest.raises(ProcessParameterInvalidException, match="trained on 3 predictors"):
        run(predict_graph(fit_node(num_trees=3)), predictors=training_cube(values), target=target_geojson(labels),
            cube=cube)


def test_saved_model_loads_by_reference_and_predicts_the_same(tmp_path):
    values, labels = samples()
    store = DirectoryResultStore(tmp_path, prefix="jobs/j-1/runs/r-1/results/")
    run({"fit": fit_node(num_trees=10, seed=2), "save": {"process_id": "save_ml_model", "result": True,
                                                          "arguments": {"data": {"from_node": "fit"}}}},
        EvalEnv(results=store), predictors=training_cube(values), target=target_geojson(labels))
    [asset] = store.assets
    assert asset.name == "model.skops" and asset.roles == ("ml-model:checkpoint",)
    assert asset.extra["ml-model:prediction_type"] == "classification"
    assert asset.extra["stratus:predictors"] == BANDS and asset.extra["stratus:classes"] == [1, 2, 5]
    # When a later graph loads it by the reference its owner's run resolved
    env = EvalEnv(results=store, ml_models={"j-1": {"key": asset.key}})
    graph = predict_graph({"process_id": "load_ml_model", "arguments": {"id": "j-1"}})
    loaded = run(graph, env, cube=pixel_cube())
    trained = run(predict_graph(fit_node(num_trees=10, seed=2)), predictors=training_cube(values),
                  target=target_geojson(labels), cube=pixel_cube())
    np.testing.assert_array_equal(loaded.values, trained.values)


@pytest.mark.parametrize("models", [{}, {"j-9": {"error": "job 'j-9' is not one of your jobs"}}])
def test_unresolved_model_references_are_the_users_error(models):
    graph = {"load": {"process_id": "load_ml_model", "arguments": {"id": "j-9"}, "result": True}}
    with pytest.raises(ProcessParameterInvalidException, match="j-9|your finished batch jobs"):
        run(graph, EvalEnv(ml_models=models))


def test_model_files_other_than_forests_of_this_engine_are_refused():
    values, labels = samples()
    model = ml.fit(ml.CLASSIFICATION, values, labels, BANDS, max_variables=None, num_trees=2, seed=0)
    assert ml.loads(ml.dumps(model)).classes == [1, 2, 5]
    # a pickle never loads, nor does a skops file with a function in it
    with pytest.raises(ml.ModelFileError):
        ml.loads(pickle.dumps(model))
    hostile = skops.io.dumps({"format": ml.FORMAT, "kind": "classification",
                              "estimator": make_pipeline(FunctionTransformer(np.ctypeslib.load_library))})
    with pytest.raises(ml.ModelFileError, match="types a model file never has"):
        ml.loads(hostile)


def test_chunked_prediction_equals_one_call(monkeypatch):
    values, labels = samples()
    model = ml.fit(ml.CLASSIFICATION, values, labels, BANDS, max_variables=2, num_trees=5, seed=0)
    pixels = np.random.default_rng(2).uniform(0, 0.7, (3, 1000))
    pixels[:, 17] = np.nan
    whole = ml.predict(model, pixels, probabilities=True)
    monkeypatch.setattr(ml, "PREDICTION_CHUNK_ROWS", 64)
    np.testing.assert_array_equal(ml.predict(model, pixels, probabilities=True), whole)
    assert np.isnan(whole[:, 17]).all()


def labelled_samples(values, labels):
    """aggregate_spatial's samples over polygons that carry their class in the property `target`."""
    features = Features(tuple(Point(11 + i * 1e-3, 46) for i in range(len(values))),
                        tuple({"target": int(label)} for label in labels), tuple(None for _ in values), WGS84)
    return vectors.make_vector_cube(features, values, dims=["bands"], coords={"bands": BANDS})


def split_node(part, seed=11):
    return {"process_id": "split_training_samples", "arguments": {
        "data": {"from_parameter": "samples"}, "test_fraction": 0.25, "seed": seed, "part": part}}


def test_split_parts_are_complementary_stratified_and_seeded():
    values, labels = samples(40)
    cube = labelled_samples(values, labels)

    def part(name, seed=11):
        return run({"s": {**split_node(name, seed), "result": True}}, samples=cube)[vectors.GEOMETRY].values

    training, test = part("training"), part("test")
    assert sorted([*training, *test]) == list(range(40)) and len(test) == 10
    assert {int(labels[i]) for i in test} == {1, 2, 5}
    np.testing.assert_array_equal(part("test"), test)
    assert not np.array_equal(part("test", seed=12), test)


def test_accuracy_report_by_hand():
    report = ml.accuracy_report(np.array([1, 1, 2, 2, 2.0]), np.array([1, 2, 2, 2, 1.0]), [1, 2])
    assert report["classes"] == [1, 2] and report["confusion_matrix"] == [[1, 1], [1, 2]]
    assert report["overall_accuracy"] == pytest.approx(0.6)
    assert report["kappa"] == pytest.approx((0.6 - 0.52) / 0.48)  # p_e = 0.4·0.4 + 0.6·0.6
    assert report["producers_accuracy"] == pytest.approx([0.5, 2 / 3]) and report["users_accuracy"] == \
        pytest.approx([0.5, 2 / 3])


def test_held_out_accuracy_report_of_a_graph_matches_the_models_predictions():
    values, labels = samples(90)
    values[::7] += np.random.default_rng(3).normal(0, 0.15, values[::7].shape)  # some hard samples
    graph = {
        "training": split_node("training"), "test": split_node("test"),
        "fit": {"process_id": "fit_class_random_forest", "arguments": {
            "predictors": {"from_node": "training"}, "target": {"from_node": "training"}, "num_trees": 20, "seed": 4}},
        "report": {"process_id": "class_accuracy_report", "result": True, "arguments": {
            "model": {"from_node": "fit"}, "predictors": {"from_node": "test"}, "target": {"from_node": "test"}}},
    }
    report = run(graph, samples=labelled_samples(values, labels))
    training, test = ml.split(labels.astype(float), 0.25, 11)
    reference = RandomForestClassifier(n_estimators=20, max_features="sqrt", random_state=4).fit(
        values[training].astype(np.float32), labels[training])
    predicted = reference.predict(values[test].astype(np.float32))
    assert report["samples"] == len(test) and report["classes"] == [1, 2, 5]
    assert report["overall_accuracy"] == pytest.approx(np.mean(predicted == labels[test]))
    assert sum(map(sum, report["confusion_matrix"])) == len(test) and report["samples_left_out"] == 0

