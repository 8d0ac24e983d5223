"""Which processes work pixel by pixel in x and y: the rule both the engine's in-task tiling
(`stratus_processing.tiling`) and the fan-out planner (`stratus.domain.fanout_plan`) decide by. Plain
Python, so the API side can import it."""

from __future__ import annotations

LOAD_PROCESSES = frozenset({"load_collection", "load_stac"})
SAVE_PROCESS = "save_result"
# The allow-list: processes whose result at a pixel depends on that pixel alone (in x and y). Math,
# logic and comparisons work per value; reducers, array and date processes run inside callbacks over
# `t` or `bands` (see DIMENSION_ARGUMENTS for the processes that name the dimension).
PIXEL_LOCAL = frozenset({
    # math
    "absolute", "add", "arccos", "arcosh", "arcsin", "arctan", "arctan2", "arsinh", "artanh", "ceil", "clip",
    "constant", "cos", "cosh", "divide", "e", "exp", "floor", "int", "linear_scale_range", "ln", "log", "mod",
    "multiply", "ndvi", "normalized_difference", "pi", "power", "round", "sgn", "sin", "sinh", "sqrt", "subtract",
    "tan", "tanh",
    # reducers and statistics (in callbacks over t or bands)
    "all", "any", "count", "extrema", "first", "last", "max", "mean", "median", "min", "product", "quantiles",
    "sd", "sum", "variance", "cummax", "cummin", "cumproduct", "cumsum",
    # logic and comparisons
    "and", "or", "xor", "not", "if", "between", "eq", "neq", "gt", "gte", "lt", "lte", "is_infinite", "is_nan",
    "is_nodata", "is_valid",
    # arrays (in callbacks)
    "array_append", "array_apply", "array_concat", "array_contains", "array_create", "array_element",
    "array_filter", "array_find", "array_find_label", "array_interpolate_linear", "array_labels", "order",
    "rearrange", "sort", "array_modify", "array_create_labeled", "nan",
    # texts and dates (scalars)
    "text_begins", "text_concat", "text_contains", "text_ends", "text_find", "date_between", "date_difference", "date_shift",
    # cubes: along t and bands only (dimension arguments checked below)
    "apply", "apply_dimension", "reduce_dimension", "filter_bands", "filter_temporal", "filter_labels",
    "aggregate_temporal", "aggregate_temporal_period", "anomaly", "climatological_normal", "mask",
    "merge_cubes", "rename_labels", "rename_dimension", "add_dimension", "drop_dimension", "dimension_labels",
    "resample_cube_temporal",
    # machine learning: a model is the same for every tile; prediction is per pixel (over bands)
    "load_ml_model", "predict_random_forest", "predict_class_probabilities",
    # in and out: planned and written by tile
    *LOAD_PROCESSES, SAVE_PROCESS,
})
# Processes whose input is their caller's cube (a UDF gets the cube a callback gets): inside a callback
# they are as local as the process calling them (whose dimension arguments are checked); at the top
# level they see the whole cube.
CALLER_LOCAL = frozenset({"run_udf"})
# Arguments naming a dimension: the process is pixel-local only when none names x or y.
DIMENSION_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "apply_dimension": ("dimension", "target_dimension"),
    "reduce_dimension": ("dimension",),
    "filter_labels": ("dimension",),
    "aggregate_temporal": ("dimension",),
    "aggregate_temporal_period": ("dimension",),
    "rename_labels": ("dimension",),
    "rename_dimension": ("source", "target"),
    "add_dimension": ("name",),
    "drop_dimension": ("name",),
    "dimension_labels": ("dimension",),
    "resample_cube_temporal": ("dimension",),
}
