"""aggregate_spatial's parts over tiles: merged, they give the single task's reducers (xarray on the
whole pixel array), with no-data, ±inf, empty parts and geometries without pixels."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from stratus_processing.partials import Parts, Statistic, combinable_statistics
from stratus_processing.graph import GraphCallback, ProcessGraph
from stratus_processing.registry import DEFAULT_REGISTRY


def single_task(pixels: np.ndarray, statistic: Statistic) -> np.ndarray:
    """What `processes.reducers` computes along the pixels (the last axis)."""
    data = xr.DataArray(pixels)
    dim, skip = data.dims[-1], statistic.ignore_nodata
    with np.errstate(all="ignore"):
        if statistic.name == "count":
            return (np.ones_like(pixels) if statistic.count_all else np.isfinite(pixels)).sum(axis=-1).astype(float)
        if statistic.name in ("first", "last"):
            ordered = pixels if statistic.name == "first" else pixels[..., ::-1]
            position = (~np.isnan(ordered)).argmax(axis=-1) if skip else np.zeros(pixels.shape[:-1], dtype=int)
            return np.take_along_axis(ordered, position[..., None], -1)[..., 0]
        reduce = {"mean": lambda: data.mean(dim, skipna=skip), "sum": lambda: data.sum(dim, skipna=skip, min_count=1),
                  "min": lambda: data.min(dim, skipna=skip), "max": lambda: data.max(dim, skipna=skip),
                  "sd": lambda: data.std(dim, skipna=skip, ddof=1),
                  "variance": lambda: data.var(dim, skipna=skip, ddof=1)}[statistic.name]
        return reduce().values


STATISTICS = [Statistic(name) for name in ("mean", "sum", "min", "max", "sd", "variance", "count", "first", "last")]
STATISTICS += [Statistic("count", count_all=True), Statistic("mean", ignore_nodata=False),
               Statistic("first", ignore_nodata=False), Statistic("last", ignore_nodata=False)]


@pytest.mark.parametrize("statistic", STATISTICS, ids=lambda s: f"{s.name}-{s.ignore_nodata}-{s.count_all}")
def test_parts_of_tiles_merge_to_the_single_tasks_statistic(statistic):
    rng = np.random.default_rng(12)
    geometries, dates, pixels = 5, 3, 40
    values = rng.normal(100.0, 30.0, size=(geometries, dates, pixels))
    values[rng.random(values.shape) < 0.2] = np.nan
    values[1, 0, :] = np.nan  # a date without any value
    values[2, 1, 7] = np.inf  # band math divided by zero
    values[3, :, :] = np.nan
    positions = np.arange(pixels) * 3 + 1000  # row-major order in the grid
    # split the pixels of every geometry over three tiles (unevenly, one tile without any of geometry 4)
    bounds = [(0, 9), (9, 30), (30, 40)]
    tiles = []
    for start, stop in bounds:
        parts = Parts.empty((geometries + 1, dates), ordered=True)  # geometry 5 has no pixel anywhere
        indices = [0, 1, 2, 3] + ([4] if start else [])
        parts.set(indices, values[indices, :, start:stop], np.tile(positions[start:stop], (len(indices), 1)))
        tiles.append(Parts.from_json(parts.to_json()))  # through the tile record's JSON
    merged = Parts.merged(tiles[::-1])  # in any order

    got = merged.statistic(statistic)
    # geometry 4 has no pixel in the first tile
    expected = np.concatenate([single_task(values[:4], statistic), single_task(values[4:, :, 9:], statistic)])
    np.testing.assert_array_equal(np.isnan(got[:5]), np.isnan(expected))
    np.testing.assert_allclose(got[:5], expected, rtol=1e-13)
    assert np.isnan(got[5]).all()  # no pixels: no-data, as the single task leaves it


def reducer(graph):
    return GraphCallback(ProcessGraph(graph), parameter="reducer", registry=DEFAULT_REGISTRY, outer_arguments={})


def test_only_reducers_of_the_callbacks_data_combine():
    data = {"from_parameter": "data"}
    assert combinable_statistics(reducer({"m": {"process_id": "mean", "arguments": {"data": data}, "result": True}})) \
        == [Statistic("mean")]
    several = {"a": {"process_id": "sd", "arguments": {"data": data, "ignore_nodata": False}},
               "b": {"process_id": "count", "arguments": {"data": data, "condition": True}},
               "all": {"process_id": "array_create", "result": True,
                       "arguments": {"data": [{"from_node": "a"}, {"from_node": "b"}]}}}
    assert combinable_statistics(reducer(several)) == [Statistic("sd", False), Statistic("count", count_all=True)]
    for graph in ({"m": {"process_id": "median", "arguments": {"data": data}, "result": True}},
                  {"q": {"process_id": "quantiles", "arguments": {"data": data, "probabilities": [0.5]},
                         "result": True}},
                  {"c": {"process_id": "count", "arguments": {"data": data, "condition": {"process_graph": {
                      "g": {"process_id": "gt", "arguments": {"x": {"from_parameter": "x"}, "y": 0},
                            "result": True}}}}, "result": True}}):
        assert combinable_statistics(reducer(graph)) is None
