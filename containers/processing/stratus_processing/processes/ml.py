"""Machine learning (openEO category "machine learning"): random forests trained on the vector cube of
`aggregate_spatial` over labelled polygons, applied per pixel, saved as a job result with the STAC
ml-model extension and loaded again by job id or results URL.

    fit_class_random_forest / fit_regr_random_forest (predictors, target, max_variables, num_trees, seed)
    reduce_dimension(bands, predict_random_forest(data, model))          -> the class (or value) per pixel
    apply_dimension(bands, predict_class_probabilities(data, model))     -> one probability per class,
                                                                            classes in ascending order
    save_ml_model(model) / load_ml_model(job id | results URL)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from stratus.events import LogLevel

from stratus_processing.deferred import xr
from stratus_processing import ml
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.geometry import GeometryError, parse_geojson
from stratus_processing.registry import ProcessArgs, process
from stratus_processing.results import AssetRecord, ResultStore

# Trees are held in memory while training and predicting: a bound keeps a typo from exhausting the task.
MAX_TREES = 1000
# The property of a labelled GeoJSON feature that holds its class or value (the openeo client's and
# the geopyspark back-end's convention).
TARGET_PROPERTY = "target"
MODEL_FILE = "model" + ml.FILE_SUFFIX
MODEL_ROLES = ("ml-model:checkpoint",)
# Models read in a run, by the run's result store and key: tiled execution evaluates the graph once per
# tile, and a forest is read and rebuilt once per run, not once per tile (100 trees take ~0.1 s).
_models_read: weakref.WeakKeyDictionary[ResultStore, dict[str, ml.RandomForestModel]] = weakref.WeakKeyDictionary()
_models_read_lock = threading.Lock()


@process("fit_class_random_forest")
def fit_class_random_forest(args: ProcessArgs, env: EvalEnv) -> ml.RandomForestModel:
    return _fit(args, env, ml.CLASSIFICATION)


@process("fit_regr_random_forest")
def fit_regr_random_forest(args: ProcessArgs, env: EvalEnv) -> ml.RandomForestModel:
    return _fit(args, env, ml.REGRESSION)


@process("predict_random_forest")
def predict_random_forest(args: ProcessArgs, env: EvalEnv) -> Any:
    model = _model(args)
    data = args.get_required("data")
    if isinstance(data, list):  # a plain array: one sample
        values = _sample(args, data, model)
        result = ml.predict(model, values)[0]
        return None if np.isnan(result) else float(result)
    features, dimension = _features(args, env, data, model)
    predicted = ml.predict(model, _predictor_rows(features, dimension), threads=_prediction_threads(env))
    template = features.isel({dimension: 0}, drop=True)
    return xr.DataArray(predicted.reshape(template.shape), dims=template.dims, coords=template.coords)


@process("predict_class_probabilities")
def predict_class_probabilities(args: ProcessArgs, env: EvalEnv) -> Any:
    model = _model(args)
    if model.kind != ml.CLASSIFICATION:
        raise args.invalid("model", "class probabilities need a classification model (fit_class_random_forest)")
    data = args.get_required("data")
    if isinstance(data, list):
        probabilities = ml.predict(model, _sample(args, data, model), probabilities=True)[:, 0]
        return [None if np.isnan(p) else float(p) for p in probabilities]
    features, dimension = _features(args, env, data, model)
    probabilities = ml.predict(model, _predictor_rows(features, dimension), probabilities=True,
                               threads=_prediction_threads(env))
    template = features.isel({dimension: 0}, drop=True)
    return xr.DataArray(probabilities.reshape(-1, *template.shape), dims=(dimension, *template.dims),
                        coords=template.coords)


@process("save_ml_model")
def save_ml_model(args: ProcessArgs, env: EvalEnv) -> bool:
    model = _model(args, "data")
    args.get_optional("options", {}, expected_type=dict)  # no options are defined for this format
    store = env.require_results()
    name = store.unique_name(MODEL_FILE)
    published = store.publish(name, ml.MEDIA_TYPE, lambda path: path.write_bytes(ml.dumps(model)))
    store.add_asset(AssetRecord(name=name, key=published.key, media_type=ml.MEDIA_TYPE,
                                title=f"Random forest {model.kind} model", file_size=published.size,
                                roles=MODEL_ROLES, file_checksum=published.checksum, extra=ml.stac_properties(model)))
    env.reporter.log(f"save_ml_model: wrote {name} ({model.kind}, {model.training.get('num_trees')} trees, "
                     f"{model.feature_count} predictors)", path=args.path)
    return True


@process("load_ml_model")
def load_ml_model(args: ProcessArgs, env: EvalEnv) -> ml.RandomForestModel:
    reference = args.get_required("id", expected_type=str)
    resolved = env.ml_models.get(reference)
    if resolved is None:
        raise args.invalid("id", "give the id of one of your finished batch jobs that saved a model, or the URL of "
                                 "its result item")
    if "error" in resolved:
        raise args.invalid("id", str(resolved["error"]))
    try:
        model = _read_model(env.require_results(), str(resolved["key"]))
    except ml.ModelFileError as exc:
        raise args.invalid("id", f"the result is not a model of this back-end: {exc}") from None
    env.reporter.log(f"load_ml_model: {model.kind} model with {model.training.get('num_trees')} trees over "
                     f"{', '.join(model.predictors)}", path=args.path)
    return model


def _read_model(store: ResultStore, key: str) -> ml.RandomForestModel:
    with _models_read_lock:  # tiles wait for the first one's read rather than each reading the file
        models = _models_read.setdefault(store, {})
        if key not in models:
            models[key] = ml.loads(store.read_bytes(key))
        return models[key]


# --- training -----------------------------------------------------------------------------------

def _fit(args: ProcessArgs, env: EvalEnv, kind: ml.Kind) -> ml.RandomForestModel:
    predictors = args.get_required("predictors")
    if not vectors.is_vector_cube(predictors):
        raise args.invalid("predictors", "expected a vector data cube, e.g. the result of aggregate_spatial over "
                                         "the training polygons")
    predictors = _squeezed(predictors)
    if predictors.ndim != 2:
        raise args.invalid("predictors", f"expected the dimensions geometry and one of bands or other, got "
                                         f"{list(predictors.dims)}: reduce the others first (e.g. t)")
    dimension = str(predictors.dims[1])
    target = _target(args, predictors.sizes[vectors.GEOMETRY])
    max_variables = _max_variables(args)
    num_trees = args.get_optional("num_trees", 100, expected_type=int)
    if not 1 <= num_trees <= MAX_TREES:
        raise args.invalid("num_trees", f"expected 1 to {MAX_TREES} trees, got {num_trees}")
    seed = args.get_optional("seed", expected_type=int)

    features = predictors.values.astype(np.float64)
    usable = np.isfinite(features).all(axis=1) & np.isfinite(target)
    if kind == ml.CLASSIFICATION and usable.sum() < 2 or not usable.any():
        raise args.invalid("predictors", f"only {int(usable.sum())} of {len(target)} training geometries have a "
                                         f"target and a value for every predictor")
    labels = target[usable]
    if kind == ml.CLASSIFICATION:
        if np.unique(labels).size < 2:
            raise args.invalid("target", "a classification needs at least two classes")
        if np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
    if not usable.all():
        env.reporter.log(f"{args.process_id}: {int((~usable).sum())} of {len(target)} training geometries left out "
                         f"(no target, or no-data in a predictor)", level=LogLevel.WARNING, path=args.path)
    names = [vectors._label_text(v) for v in predictors[dimension].values]  # noqa: SLF001 - same label text
    model = ml.fit(kind, features[usable], labels, names, max_variables=max_variables, num_trees=num_trees,
                   seed=seed)
    env.reporter.log(f"{args.process_id}: {num_trees} trees on {int(usable.sum())} samples × {len(names)} predictors"
                     + (f", classes {', '.join(f'{c:g}' for c in model.classes)}" if model.classes else ""),
                     path=args.path)
    return model


def _squeezed(cube: xr.DataArray) -> xr.DataArray:
    """Without the dimensions (other than geometry) of a single label, e.g. `t` of one date."""
    single = [d for d in cube.dims if d != vectors.GEOMETRY and cube.sizes[d] == 1]
    return cube.isel({d: 0 for d in single}, drop=True) if single else cube


def _target(args: ProcessArgs, count: int) -> np.ndarray:
    """One number per training geometry: a vector cube of one value per geometry, or the `target`
    property of each feature (inline GeoJSON, or the properties of a vector cube's features, such as
    aggregate_spatial's samples over labelled polygons)."""
    target = args.get_required("target")
    if vectors.is_vector_cube(target):
        target = _squeezed(target)
        values = target.values.astype(np.float64) if target.ndim == 1 else None
        if values is None or np.isnan(values).all():  # e.g. the samples themselves, labelled by their polygons
            values = _property_values(args, list(target[vectors.FEATURE_PROPERTIES].values))
    elif isinstance(target, Mapping):
        try:
            features = parse_geojson(target)
        except GeometryError as exc:
            raise args.invalid("target", str(exc)) from None
        values = _property_values(args, list(features.properties))
    else:
        raise args.invalid("target", "expected a vector data cube or GeoJSON features with the property "
                                     f"'{TARGET_PROPERTY}'")
    if len(values) != count:
        raise args.invalid("target", f"{len(values)} training geometries, but the predictors have {count}: give both "
                                     f"for the same geometries in the same order")
    return values


def _property_values(args: ProcessArgs, properties: list[Any]) -> np.ndarray:
    values = []
    for index, feature_properties in enumerate(properties):
        value = (feature_properties or {}).get(TARGET_PROPERTY)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise args.invalid("target", f"feature {index}: the property '{TARGET_PROPERTY}' must be a number, got "
                                         f"{value!r}")
        values.append(np.nan if value is None else float(value))
    if not values or np.isnan(values).all():
        raise args.invalid("target", f"no training geometry has a numeric property '{TARGET_PROPERTY}'")
    return np.array(values, dtype=np.float64)


def _max_variables(args: ProcessArgs) -> int | str | None:
    value = args.get_optional("max_variables", expected_type=(int, str))
    if isinstance(value, str) and value not in ml.MAX_VARIABLES_RULES:
        raise args.invalid("max_variables", f"'{value}' is not one of: {', '.join(ml.MAX_VARIABLES_RULES)}")
    if isinstance(value, int) and value < 1:
        raise args.invalid("max_variables", "expected at least 1")
    return value


# --- prediction ---------------------------------------------------------------------------------

def _model(args: ProcessArgs, name: str = "model") -> ml.RandomForestModel:
    model = args.get_required(name)
    if not isinstance(model, ml.RandomForestModel):
        raise args.invalid(name, "expected a model from fit_class_random_forest, fit_regr_random_forest or "
                                 "load_ml_model")
    return model


def _features(args: ProcessArgs, env: EvalEnv, data: Any, model: ml.RandomForestModel) -> tuple[xr.DataArray, str]:
    """The cube and its predictor dimension (the one the callback runs over)."""
    dimension = env.array_dimension_of(data)
    if not isinstance(data, xr.DataArray) or dimension is None:
        raise args.invalid("data", "expected the array of predictors, e.g. as the reducer of reduce_dimension over "
                                   "bands")
    if data.sizes[dimension] != model.feature_count:
        raise args.invalid("data", f"the model was trained on {model.feature_count} predictors "
                                   f"({', '.join(model.predictors)}), the data has {data.sizes[dimension]} along "
                                   f"'{dimension}'")
    return data, dimension


def _predictor_rows(features: xr.DataArray, dimension: str) -> np.ndarray:
    """The cube's values as (predictors, pixels), the other dimensions in the cube's order: a view of the
    cube when the predictors lead or the dimensions before them have one label (`t` of one date), so
    `ml.predict`'s chunks are the only copies."""
    values = np.moveaxis(features.values, features.get_axis_num(dimension), 0)
    return values.reshape(values.shape[0], -1)


def _prediction_threads(env: EvalEnv) -> int | None:
    """Threads for one prediction: all CPUs, or in tiled execution, where tiles are predicted side by
    side, the tile's share of them (more threads than CPUs cost about a fifth more CPU time)."""
    if env.tile is None or env.tile.workers <= 1:
        return None
    from joblib import cpu_count  # noqa: PLC0415 - comes with scikit-learn, imported where predicted

    return max(1, cpu_count() // env.tile.workers)


def _sample(args: ProcessArgs, data: list[Any], model: ml.RandomForestModel) -> np.ndarray:
    if len(data) != model.feature_count:
        raise args.invalid("data", f"the model was trained on {model.feature_count} predictors, got {len(data)} values")
    try:
        return np.array([np.nan if v is None else float(v) for v in data], dtype=np.float64).reshape(-1, 1)
    except (TypeError, ValueError):
        raise args.invalid("data", "expected an array of numbers") from None


# --- quality assurance (Stratus's processes for the land-cover service) -------------------------------

@process("split_training_samples")
def split_training_samples(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """One part of a seeded split of labelled samples, stratified by class where every class has two
    samples or more: the same arguments with `part` training and test give complementary parts."""
    data = args.get_required("data")
    if not vectors.is_vector_cube(data):
        raise args.invalid("data", "expected a vector data cube of labelled samples (aggregate_spatial over "
                                   f"polygons with the property '{TARGET_PROPERTY}')")
    test_fraction = args.get_optional("test_fraction", 0.3, expected_type=(int, float))
    if not 0 < test_fraction < 1:
        raise args.invalid("test_fraction", "expected a number between 0 and 1 (exclusive)")
    part = args.get_enum("part", ["training", "test"], default="training")
    seed = args.get_optional("seed", expected_type=int)
    labels = _property_values(args, list(data[vectors.FEATURE_PROPERTIES].values))
    try:
        training, test = ml.split(labels, test_fraction, seed)
    except ValueError as exc:
        raise args.invalid("data", f"can't split {len(labels)} samples: {exc}") from None
    return data.isel({vectors.GEOMETRY: training if part == "training" else test})


@process("class_accuracy_report")
def class_accuracy_report(args: ProcessArgs, env: EvalEnv) -> dict[str, Any]:
    """The model's accuracy on labelled samples it was not trained on: confusion matrix (rows the
    reference classes, columns the predicted ones), overall accuracy, Cohen's kappa, and producer's and
    user's accuracy per class."""
    model = _model(args)
    if model.kind != ml.CLASSIFICATION:
        raise args.invalid("model", "an accuracy report needs a classification model")
    predictors = args.get_required("predictors")
    if not vectors.is_vector_cube(predictors) or _squeezed(predictors).ndim != 2:
        raise args.invalid("predictors", "expected a vector data cube with the dimensions geometry and bands")
    predictors = _squeezed(predictors)
    if predictors.sizes[predictors.dims[1]] != model.feature_count:
        raise args.invalid("predictors", f"the model was trained on {model.feature_count} predictors, the samples "
                                         f"have {predictors.sizes[predictors.dims[1]]}")
    reference = _target(args, predictors.sizes[vectors.GEOMETRY])
    predicted = ml.predict(model, predictors.values.T)
    usable = np.isfinite(predicted) & np.isfinite(reference)
    if not usable.any():
        raise args.invalid("predictors", "no test sample has a target and a value for every predictor")
    report = ml.accuracy_report(reference[usable], predicted[usable], model.classes or [])
    report["samples_left_out"] = int((~usable).sum())
    env.reporter.log(f"class_accuracy_report: overall accuracy {report['overall_accuracy']:.3f}, kappa "
                     f"{report['kappa']:.3f} on {report['samples']} test samples", path=args.path)
    return report
