"""array_interpolate_linear on a cube (the usual gap-fill in apply_dimension over t), against numpy."""

from __future__ import annotations

import numpy as np
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus_processing.cube import make_cube
from stratus_processing.env import EvalEnv
from stratus_processing.graph import ProcessGraph, evaluate_graph
from stratus_processing.tiling import tiling_obstacle

from tests.unit.processing.processing_testkit import small_grid, utc

NAN, INF = np.nan, np.inf
# Uneven dates: the gaps are filled along time, not along positions.
DAYS = [1, 2, 6, 10, 11]
# (t, y, x): pixel (0, 0) gaps inside, (0, 1) leading and trailing gaps, (1, 0) no valid date,
# (1, 1) an infinite neighbour.
VALUES = np.array([
    [[1.0, NAN], [NAN, -INF]],
    [[NAN, 4.0], [NAN, NAN]],
    [[NAN, NAN], [NAN, 2.0]],
    [[9.0, 8.0], [NAN, NAN]],
    [[NAN, NAN], [NAN, 3.0]],
])

GAP_FILL = {
    "load": {"process_id": "load_collection", "arguments": {"id": "S2", "spatial_extent": None,
                                                            "temporal_extent": None}},
    "fill": {"process_id": "apply_dimension", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "t",
        "process": {"process_graph": {"i": {"process_id": "array_interpolate_linear", "result": True,
                                            "arguments": {"data": {"from_parameter": "data"}}}}}}},
}


def interpolate_with_numpy(values: np.ndarray, days: list[int]) -> np.ndarray:
    """np.interp per pixel between its first and last valid date (finite values only)."""
    expected = values.copy()
    for row in range(values.shape[1]):
        for col in range(values.shape[2]):
            series = values[:, row, col]
            valid = np.flatnonzero(~np.isnan(series))
            if valid.size < 2 or not np.isfinite(series[valid]).all():
                continue
            inside = slice(valid[0], valid[-1] + 1)
            expected[inside, row, col] = np.interp(np.array(days)[inside], np.array(days)[valid], series[valid])
    return expected


def test_gaps_are_filled_linearly_in_time():
    cube = make_cube(VALUES, grid=small_grid(2, 2), times=[utc(2022, 6, d) for d in DAYS])
    graph = {"fill": {**GAP_FILL["fill"]}}

    filled = evaluate_graph(graph, EvalEnv(), arguments={"cube": cube})

    assert filled.dims == cube.dims
    assert list(filled.t.values) == list(cube.t.values)  # same length: apply_dimension keeps the dates
    expected = interpolate_with_numpy(VALUES, DAYS)
    # np.interp gives NaN next to an infinite value; the spec: the infinite limit
    expected[1, 1, 1], expected[3, 1, 1] = -INF, 2.0 + (3.0 - 2.0) * 4 / 5
    np.testing.assert_allclose(filled.values[:, 0, 0], [1.0, 1 + 8 / 9, 1 + 8 * 5 / 9, 9.0, NAN])
    np.testing.assert_allclose(filled.values, expected, equal_nan=True)


def test_gap_fill_over_time_runs_tiled():
    assert tiling_obstacle(ProcessGraph(GAP_FILL | {"fill": {**GAP_FILL["fill"], "arguments": {
        **GAP_FILL["fill"]["arguments"], "data": {"from_node": "load"}}}})) is None
