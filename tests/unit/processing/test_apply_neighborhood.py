"""apply_neighborhood: windows of x and y with an overlap of real neighbours (no-data beyond the
cube's edge), against the same focal process on the whole cube and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus.errors import ProcessParameterInvalidException
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.graph import ProcessGraph, evaluate_graph
from stratus_processing.processes.neighbourhoods import DataCubePropertiesImmutableException
from stratus_processing.tiling import tiling_obstacle

from tests.unit.processing.processing_testkit import small_grid, utc

KERNEL = [[1, 2, 1], [2, 4, 2], [1, 2, 1]]


@pytest.fixture
def cube():
    """(t: 2, bands: 1, y: 9, x: 11): sizes the windows don't divide, a few no-data pixels."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 10, (2, 1, 9, 11))
    values[0, 0, 4, 4] = values[1, 0, 0, 10] = np.nan
    return cubes.make_cube(values, grid=small_grid(11, 9), times=[utc(2022, 6, 1), utc(2022, 6, 6)], bands=["B04"])


def kernel_process(**arguments):
    return {"process_graph": {"k": {"process_id": "apply_kernel", "result": True, "arguments": {
        "data": {"from_parameter": "data"}, "kernel": KERNEL, **arguments}}}}


def neighbourhoods(cube, process, size, overlap):
    chunks = {name: [{"dimension": d, "value": v, "unit": u} for d, v, u in value] if value is not None else None
              for name, value in (("size", size), ("overlap", overlap))}
    graph = {"n": {"process_id": "apply_neighborhood", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "process": process, **chunks}}}
    return evaluate_graph(graph, EvalEnv(), arguments={"cube": cube})


def numpy_kernel(values, fill):
    """The 3 × 3 correlation with everything beyond the edge and every NaN counting as `fill`."""
    filled = np.where(np.isnan(values), fill, values)
    padded = np.pad(filled, [(0, 0)] * (values.ndim - 2) + [(1, 1), (1, 1)], constant_values=fill)
    height, width = values.shape[-2:]
    return sum(weight * padded[..., dy:dy + height, dx:dx + width] for (dy, dx), weight in np.ndenumerate(KERNEL))


def test_windows_with_overlap_equal_the_focal_process_on_the_whole_cube(cube):
    # Missing overlap at the cube's edge is no-data: replace_invalid decides what it counts as.
    result = neighbourhoods(cube, kernel_process(replace_invalid=100), size=[("x", 4, "px"), ("y", 4, "px")],
                            overlap=[("x", 1, "px"), ("y", 1, "px")])

    assert result.dims == cube.dims
    np.testing.assert_allclose(result.values, numpy_kernel(cube.values, fill=100), rtol=1e-12)


def test_without_overlap_each_window_sees_only_its_own_pixels(cube):
    result = neighbourhoods(cube, kernel_process(), size=[("x", 40, "m"), ("y", 40, "m")], overlap=None)

    expected = np.empty_like(cube.values)
    for row in range(0, 9, 4):
        for col in range(0, 11, 4):
            window = cube.values[..., row:row + 4, col:col + 4]
            expected[..., row:row + 4, col:col + 4] = numpy_kernel(window, fill=0)
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)


def test_a_process_changing_the_window_is_refused(cube):
    shrink = {"process_graph": {"r": {"process_id": "reduce_dimension", "result": True, "arguments": {
        "data": {"from_parameter": "data"}, "dimension": "t",
        "reducer": {"process_graph": {"m": {"process_id": "mean", "result": True,
                                            "arguments": {"data": {"from_parameter": "data"}}}}}}}}}
    with pytest.raises(DataCubePropertiesImmutableException):
        neighbourhoods(cube, shrink, size=[("x", 4, "px"), ("y", 4, "px")], overlap=None)


def test_only_x_and_y_are_split(cube):
    with pytest.raises(ProcessParameterInvalidException, match="only x and y"):
        neighbourhoods(cube, kernel_process(), size=[("x", 4, "px"), ("y", 4, "px"), ("t", 1, None)], overlap=None)


def test_a_graph_with_apply_neighborhood_is_evaluated_whole_not_tiled():
    graph = ProcessGraph({
        "load": {"process_id": "load_collection", "arguments": {"id": "S2", "spatial_extent": None,
                                                                "temporal_extent": None}},
        "n": {"process_id": "apply_neighborhood", "result": True, "arguments": {
            "data": {"from_node": "load"}, "process": kernel_process(),
            "size": [{"dimension": "x", "value": 128, "unit": "px"}, {"dimension": "y", "value": 128, "unit": "px"}],
            "overlap": [{"dimension": "x", "value": 8, "unit": "px"}, {"dimension": "y", "value": 8, "unit": "px"}]}},
    })
    assert "apply_neighborhood" in tiling_obstacle(graph)
