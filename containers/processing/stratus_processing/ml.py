"""Random-forest models for the openEO machine-learning processes: training on labelled samples,
prediction over pixels, and the model file (docs/machine-learning.md says why scikit-learn and skops).

A model is a fitted scikit-learn forest plus what the processes need around it: the kind
(classification or regression), the predictor labels it was trained on, and how it was trained.

The file is a skops archive, never a pickle: loading it builds only the types skops knows to be safe
plus the one scikit-learn type named in `TRUSTED_TYPES`, so a crafted file cannot run code. The
engine also reads model files only from its own results bucket (`load_ml_model`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # imported where used: every run imports the processes, few train or predict (~1 s)
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

Kind = Literal["classification", "regression"]
CLASSIFICATION: Kind = "classification"
REGRESSION: Kind = "regression"

MEDIA_TYPE = "application/octet-stream; application=skops"
FILE_SUFFIX = ".skops"
FORMAT = "skops"
# The only type of a forest archive outside skops' own safe set (the trees' node arrays).
TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)
# Pixels predicted per call: bounds the transposed features (rows × predictors × 4 bytes, twice when
# some rows have no-data) and scikit-learn's votes (rows × classes × 8 bytes, three arrays per
# thread) while keeping the thread pool's start-up small against the work. A 512 px tile of 40
# predictors predicted in 64 Ki-row calls peaks at 25 MiB, in one call at 86 MiB, in the same time.
PREDICTION_CHUNK_ROWS = 1 << 16
MAX_VARIABLES_RULES = ("all", "log2", "onethird", "sqrt")


class ModelFileError(ValueError):
    """The bytes are not a model file this engine wrote."""


@dataclass(frozen=True)
class RandomForestModel:
    estimator: RandomForestClassifier | RandomForestRegressor
    kind: Kind
    predictors: tuple[str, ...]  # labels of the predictor dimension, in training order
    training: dict[str, Any] = field(default_factory=dict)  # samples, trees, max_variables, seed

    @property
    def classes(self) -> list[float] | None:
        return [float(c) for c in self.estimator.classes_] if self.kind == CLASSIFICATION else None

    @property
    def feature_count(self) -> int:
        return len(self.predictors)


def fit(kind: Kind, features: np.ndarray, target: np.ndarray, predictors: Sequence[str], *,
        max_variables: int | str | None, num_trees: int, seed: int | None) -> RandomForestModel:
    """Fit on `features` (samples × predictors, finite) and `target` (samples). Deterministic for a seed,
    whatever the number of threads (each tree gets its own seed drawn from it)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    max_features = _max_features(max_variables, features.shape[1], kind)
    # n_jobs -1: every CPU the task may use (joblib counts the affinity and cgroup quota), also after loading
    common = {"n_estimators": num_trees, "max_features": max_features, "random_state": seed, "n_jobs": -1}
    estimator = RandomForestClassifier(**common) if kind == CLASSIFICATION else RandomForestRegressor(**common)
    estimator.fit(np.ascontiguousarray(features, dtype=np.float32), target)
    training = {"samples": int(features.shape[0]), "num_trees": num_trees, "max_variables": max_variables,
                "seed": seed}
    return RandomForestModel(estimator, kind, tuple(str(p) for p in predictors), training)


def _max_features(max_variables: int | str | None, count: int, kind: Kind) -> int | float | str | None:
    if max_variables is None:  # the spec has no default; the openeo client documents null as a third
        return max(1, count // 3)
    if isinstance(max_variables, int):
        return min(max_variables, count)
    return {"all": None, "log2": "log2", "sqrt": "sqrt", "onethird": max(1, count // 3)}[max_variables]


def predict(model: RandomForestModel, features: np.ndarray, *, probabilities: bool = False,
            threads: int | None = None) -> np.ndarray:
    """Predict for `features` shaped (predictors, n): values shaped (n,), or class probabilities shaped
    (classes, n). Columns with any non-finite predictor give NaN. Works through the columns in chunks,
    so memory stays the input plus the output plus one chunk. `threads`: how many the trees are
    traversed in (default: the model's, every CPU)."""
    count = features.shape[1]
    width = len(model.estimator.classes_) if probabilities else 1
    estimator = model.estimator
    if threads is not None and threads != estimator.n_jobs:
        estimator = copy.copy(estimator)  # shares the trees; the model may be predicting in other threads
        estimator.n_jobs = threads
    out = np.full((width, count), np.nan)
    for start in range(0, count, PREDICTION_CHUNK_ROWS):
        block = features[:, start:start + PREDICTION_CHUNK_ROWS]
        rows = np.ascontiguousarray(block.T, dtype=np.float32)
        valid = np.isfinite(rows).all(axis=1)
        if not valid.any():
            continue
        rows = rows if valid.all() else rows[valid]
        target = out[:, start:start + block.shape[1]]
        if probabilities:
            target[:, valid] = estimator.predict_proba(rows).T
        else:
            target[0, valid] = estimator.predict(rows)
    return out if probabilities else out[0]


def dumps(model: RandomForestModel) -> bytes:
    import skops.io as skops

    return skops.dumps({"format": FORMAT, "kind": model.kind, "predictors": list(model.predictors),
                        "training": dict(model.training), "estimator": model.estimator})


def loads(data: bytes) -> RandomForestModel:
    """The model in `data`. Raises `ModelFileError` for anything but a forest archive of this engine."""
    import skops.io as skops
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    try:
        untrusted = skops.get_untrusted_types(data=data)
        if not set(untrusted) <= set(TRUSTED_TYPES):
            raise ModelFileError(f"the file holds types a model file never has: {', '.join(sorted(untrusted))}")
        document = skops.loads(data, trusted=list(untrusted))
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable archive is the same answer
        raise ModelFileError(f"not a model archive ({type(exc).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError("not a model archive of this back-end")
    estimator, kind = document.get("estimator"), document.get("kind")
    expected = {CLASSIFICATION: RandomForestClassifier, REGRESSION: RandomForestRegressor}.get(kind)
    if expected is None or type(estimator) is not expected:
        raise ModelFileError("the archive holds no random forest")
    estimator.n_jobs = -1  # this machine's CPUs, not the training machine's
    return RandomForestModel(estimator, kind, tuple(document.get("predictors") or ()), dict(document.get("training")
                                                                                            or {}))


def stac_properties(model: RandomForestModel) -> dict[str, Any]:
    """STAC ml-model extension (v1.0) fields describing the model."""
    properties: dict[str, Any] = {
        "ml-model:type": "ml-model",
        "ml-model:learning_approach": "supervised",
        "ml-model:prediction_type": model.kind,
        "ml-model:architecture": "random-forest",
        "ml-model:training-processor-type": "cpu",
        "ml-model:training-os": "linux",
        "stratus:predictors": list(model.predictors),
        "stratus:training": dict(model.training),
    }
    if model.classes is not None:
        properties["stratus:classes"] = model.classes
    return properties


def split(labels: np.ndarray, test_fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the training and the test part, stratified by label when every class has two samples
    or more. Raises `ValueError` when a part would be empty."""
    from sklearn.model_selection import train_test_split

    indexes = np.arange(len(labels))
    known = np.isfinite(labels)
    classes, counts = np.unique(labels[known], return_counts=True)
    stratify = labels[known] if classes.size > 1 and counts.min() >= 2 else None
    try:
        training, test = train_test_split(indexes[known], test_size=test_fraction, random_state=seed,
                                          stratify=stratify)
    except ValueError:
        if stratify is None:
            raise
        training, test = train_test_split(indexes[known], test_size=test_fraction, random_state=seed)
    return np.sort(training), np.sort(test)


def accuracy_report(reference: np.ndarray, predicted: np.ndarray, classes: Sequence[float]) -> dict[str, Any]:
    """Confusion matrix (rows reference, columns predicted, in `classes` order), overall accuracy,
    Cohen's kappa, producer's (recall) and user's (precision) accuracy per class; null where undefined."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    labels = sorted(set(classes) | set(reference.tolist()) | set(predicted.tolist()))
    matrix = confusion_matrix(reference, predicted, labels=labels)
    diagonal = np.diag(matrix)
    reference_totals, predicted_totals = matrix.sum(axis=1), matrix.sum(axis=0)
    kappa = cohen_kappa_score(reference, predicted, labels=labels)

    def ratio(numerators: np.ndarray, denominators: np.ndarray) -> list[float | None]:
        return [float(n / d) if d else None for n, d in zip(numerators, denominators, strict=True)]

    return {
        "classes": [_number(c) for c in labels],
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_axes": "rows: reference class, columns: predicted class",
        "samples": int(matrix.sum()),
        "overall_accuracy": float(diagonal.sum() / matrix.sum()),
        "kappa": float(kappa) if np.isfinite(kappa) else None,
        "producers_accuracy": ratio(diagonal, reference_totals),
        "users_accuracy": ratio(diagonal, predicted_totals),
    }


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
