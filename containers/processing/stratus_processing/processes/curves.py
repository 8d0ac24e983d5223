"""Curve fitting (proposals): `fit_curve` fits `y = f(x, parameters)` by non-linear least squares,
`predict_curve` evaluates the fitted model at new labels.

x is the label: numbers as they are, dates and date-times as seconds since 1970-01-01 UTC (so a yearly
harmonic is `cos(2π / 31557600 · x)`, as in the openEO examples). Inside a callback over a cube
dimension every pixel is fitted at once: one least-squares problem whose Jacobian is block-diagonal per
pixel (`scipy.optimize.least_squares` with `jac_sparsity`), so the model graph runs a few times per
iteration for all pixels instead of once per pixel. A pixel with fewer valid values than parameters
(or with no-data and `ignore_nodata` false) gets no-data parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stratus_processing.deferred import pd, scipy_optimize, scipy_sparse, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.processes.arrays import CubeArray, array_argument, is_number
from stratus_processing.registry import Callback, ProcessArgs, process

# The dimensions of the model's inputs while fitting: the pixels, the x values.
_PIXELS, _X = "__pixels__", "__x__"
MAX_FUNCTION_EVALUATIONS = 200


def label_positions(args: ProcessArgs, name: str, labels: Any) -> np.ndarray:
    """Labels as x values: numbers, or instants as seconds since the epoch."""
    values = np.asarray(labels)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ns]").astype(np.int64) / 1e9
    if all(is_number(v) for v in labels):
        return np.asarray(labels, dtype=np.float64)
    try:
        return np.array([pd.Timestamp(cubes.parse_utc(str(v))).value / 1e9 for v in labels])
    except ValueError as exc:
        raise args.invalid(name, "the labels must be numbers, dates or date-times") from exc


def _model(function: Callback, env: EvalEnv, x: xr.DataArray, parameters: list[Any], shape: tuple[int, ...],
           args: ProcessArgs) -> np.ndarray:
    result = function(env.for_array_dimension(None), x=x, parameters=parameters)
    if isinstance(result, xr.DataArray):
        result = result.transpose(*[d for d in (_PIXELS, _X) if d in result.dims]).values
    if result is None or isinstance(result, (str, list, dict)):
        raise args.invalid("function", "the model function must compute a number")
    try:
        return np.broadcast_to(np.asarray(result, dtype=np.float64), shape)
    except ValueError as exc:
        raise args.invalid("function", f"the model's result has an unexpected shape: {exc}") from None


def fit(function: Callback, env: EvalEnv, args: ProcessArgs, x: np.ndarray, y: np.ndarray, p0: list[float],
        ignore_nodata: bool) -> np.ndarray:
    """Parameters (pixels, k) fitting y (pixels, n) at x (n,), all pixels in one sparse problem."""
    pixels, n = y.shape
    k = len(p0)
    valid = np.isfinite(y) & np.isfinite(x)[None, :]
    fittable = valid.sum(axis=1) >= k
    if not ignore_nodata:
        fittable &= valid.all(axis=1)
    result = np.full((pixels, k), np.nan)
    rows = np.flatnonzero(fittable)
    if not rows.size:
        return result
    y_fit, mask = y[rows], valid[rows]
    x_values = xr.DataArray(x, dims=[_X])

    def residuals(flat: np.ndarray) -> np.ndarray:
        params = flat.reshape(len(rows), k)
        parameters = [xr.DataArray(params[:, j], dims=[_PIXELS]) for j in range(k)]
        modelled = _model(function, env, x_values, parameters, (len(rows), n), args)
        return np.where(mask, np.nan_to_num(modelled - np.nan_to_num(y_fit), nan=1e12), 0.0).ravel()

    sparsity = scipy_sparse.kron(scipy_sparse.eye(len(rows), format="csr"), np.ones((n, k)), format="csr")
    solution = scipy_optimize.least_squares(residuals, np.tile(np.asarray(p0, dtype=np.float64), len(rows)),
                                            jac_sparsity=sparsity, method="trf", x_scale="jac",
                                            max_nfev=MAX_FUNCTION_EVALUATIONS)
    result[rows] = solution.x.reshape(len(rows), k)
    return result


@process("fit_curve")
def fit_curve(args: ProcessArgs, env: EvalEnv) -> Any:
    array = array_argument(args, env)
    p0 = args.get_required("parameters", expected_type=list)
    function = args.get_callback("function")
    ignore_nodata = args.get_optional("ignore_nodata", True, expected_type=bool)
    if not p0 or not all(is_number(p) for p in p0):
        raise args.invalid("parameters", "expected at least one number (the initial guess)")
    if isinstance(array, CubeArray):
        data = array.data.astype(cubes.CUBE_DTYPE)
        if array.dimension not in data.indexes:
            raise args.invalid("data", f"the dimension '{array.dimension}' has no labels to use as x")
        x = label_positions(args, "data", data[array.dimension].values)
        others = [d for d in data.dims if d != array.dimension]
        ordered = data.transpose(*others, array.dimension)
        fitted = fit(function, env, args, x, ordered.values.reshape(-1, len(x)), p0, ignore_nodata)
        shape = [data.sizes[d] for d in others] + [len(p0)]
        result = xr.DataArray(fitted.reshape(shape), dims=[*others, array.dimension],
                              coords={n: c for n, c in data.coords.items() if array.dimension not in c.dims})
        return array.as_array_result(result)
    if array.labels is None:
        raise args.invalid("data", "expected a labeled array: its labels are the x values")
    x = label_positions(args, "data", array.labels)
    y = np.array([[np.nan if v is None else v for v in array.values]], dtype=np.float64)
    return [None if np.isnan(v) else float(v) for v in fit(function, env, args, x, y, p0, ignore_nodata)[0]]


@process("predict_curve")
def predict_curve(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """The model at `labels` per pixel, the parameters read along `dimension` (e.g. apply_dimension's
    result of fit_curve); the dimension gets the labels."""
    parameters = args.get_required("parameters")
    function = args.get_callback("function")
    dimension = args.get_required("dimension", expected_type=str)
    labels = args.get_optional("labels", expected_type=list)
    if not isinstance(parameters, xr.DataArray) or dimension not in parameters.dims:
        raise args.invalid("parameters", f"expected a data cube with the dimension '{dimension}' holding the "
                                         f"parameters")
    if not labels:
        raise args.invalid("labels", "give the labels to predict for")
    x = label_positions(args, "labels", labels)
    others = [d for d in parameters.dims if d != dimension]
    plain = parameters.drop_vars([n for n, c in parameters.coords.items() if dimension in c.dims])
    values = [plain.isel({dimension: j}) for j in range(parameters.sizes[dimension])]
    result = function(env.for_array_dimension(None), x=xr.DataArray(x, dims=[dimension]), parameters=values)
    if not isinstance(result, xr.DataArray):
        raise args.invalid("function", "the model function must compute a number per pixel and label")
    template = xr.zeros_like(plain.isel({dimension: 0}, drop=True)).expand_dims({dimension: len(x)})
    result = (result + template).transpose(*[d for d in parameters.dims if d in (*others, dimension)])
    is_time = not all(is_number(v) for v in labels)
    coordinate = pd.DatetimeIndex(np.round(x * 1e9).astype(np.int64)).values if is_time else np.asarray(labels)
    return cubes.carry_metadata(result.assign_coords({dimension: coordinate}).astype(cubes.CUBE_DTYPE),
                                parameters)
