"""Which precision a load takes (`precision`): the graph's outputs and the sources decide, and the
engine's result is then numpy's in that precision, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus_processing.frozen_loads import loads_from_json, loads_to_json
from stratus_processing.io.load import LoadPlan
from stratus_processing.graph import ProcessGraph
from stratus_processing.precision import DOUBLE, SINGLE, load_dtype, outputs_single_precision
from stratus_processing.runner import evaluate
from stratus_processing.tiling import plan_loads

from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, mean_ndvi_graph, reference_mean_ndvi
from tests.unit.processing.test_processing_io import demo_items, read_source


def mean_ndvi(**save_arguments):
    return mean_ndvi_graph(**save_arguments)


def single_precision(flat_graph):
    return outputs_single_precision(ProcessGraph(flat_graph))


# --- the graph's rule ---------------------------------------------------------------------------

@pytest.mark.parametrize("save_arguments", [
    {"format": "GTiff"}, {"format": "gtiff", "options": {}}, {"format": "netCDF"},
    {"format": "GTiff", "options": {"datatype": "float32"}}, {"format": "GTiff", "options": {"datatype": "uint16"}},
    {"format": "GTiff", "options": {"datatype": "int8", "nodata": -1}},
], ids=["gtiff", "gtiff-lowercase", "netcdf", "float32", "uint16", "int8"])
def test_graphs_storing_only_float32_or_narrower_rasters_allow_single_precision(save_arguments):
    assert single_precision(mean_ndvi(**save_arguments))


@pytest.mark.parametrize("save_arguments", [
    {"format": "JSON"}, {"format": "CSV"}, {"format": "GTiff", "options": {"datatype": "float64"}},
    {"format": "GTiff", "options": {"datatype": "int32"}}, {"format": "GTiff", "options": {"datatype": "uint32"}},
    {"format": {"from_parameter": "format"}}, {"format": "GTiff", "options": {"from_parameter": "options"}},
    {"format": "GTiff", "options": {"datatype": {"from_parameter": "type"}}},
], ids=["json", "csv", "float64", "int32", "uint32", "format-parameter", "options-parameter",
        "datatype-parameter"])
def test_graphs_storing_numbers_text_or_wider_rasters_keep_double_precision(save_arguments):
    assert not single_precision(mean_ndvi(**save_arguments))


def test_every_end_node_must_store_a_float32_raster():
    # A second output as JSON, or an end node that is not a save_result, keeps the graph in float64
    graph = mean_ndvi(format="GTiff")
    with_json = {**graph, "json": {"process_id": "save_result", "arguments": {
        "data": {"from_node": "mean"}, "format": "JSON"}}}
    model = {**graph, "other": {"process_id": "absolute", "arguments": {"x": 1}}}
    no_save = {key: node for key, node in graph.items() if key != "save"} | {
        "mean": {**graph["mean"], "result": True}}
    assert not single_precision(with_json)
    assert not single_precision(model)
    assert not single_precision(no_save)
    # and a save_result inside a callback is not an end node of the graph (its `from_node` are its own)
    inner = {**graph, "mean": {**graph["mean"], "arguments": {**graph["mean"]["arguments"], "reducer": {
        "process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
                          "save": {"process_id": "save_result", "arguments": {
                              "data": {"from_node": "m"}, "format": "JSON"}, "result": True}}}}}}
    assert single_precision(inner)


def test_only_sources_float32_holds_exactly_are_read_in_single_precision():
    assert load_dtype(["uint16", "uint16"], single_precision_outputs=True) == SINGLE
    assert load_dtype(["uint8", "int16", "float32"], single_precision_outputs=True) == SINGLE
    assert load_dtype(["uint16", "float64"], single_precision_outputs=True) == DOUBLE
    assert load_dtype(["uint16", "int32"], single_precision_outputs=True) == DOUBLE
    assert load_dtype(["uint16", None], single_precision_outputs=True) == DOUBLE  # not said: not known
    assert load_dtype([], single_precision_outputs=True) == DOUBLE
    assert load_dtype(["uint16"], single_precision_outputs=False) == DOUBLE


# --- what the engine computes -------------------------------------------------------------------

def read_result(store, dtype):
    [asset] = store.assets
    with rasterio.open(store.path_of(asset.key)) as src:
        assert src.dtypes[0] == dtype
        return src.read(1)


def test_a_float32_raster_is_computed_in_float32_and_a_float64_one_in_float64(demo_env, demo_s3, result_store):
    reference = {dtype: reference_mean_ndvi(lambda href: read_source(demo_s3, href), demo_items(demo_s3),
                                            BOLZANO_EXTENT, dtype=dtype) for dtype in (np.float32, np.float64)}
    # When the mean NDVI is stored as a float32 GTiff (the default)
    evaluate({"process_graph": mean_ndvi(format="GTiff")}, demo_env)
    single = read_result(result_store, "float32")
    # Then it is numpy's float32 computation bit for bit, within 2 float32 steps of the float64 one
    np.testing.assert_array_equal(single, reference[np.float32].astype(np.float32))
    assert np.nanmax(np.abs(single - reference[np.float64])) <= 2 * np.finfo(np.float32).eps
    assert np.array_equal(np.isnan(single), np.isnan(reference[np.float64]))
    # (and the two computations do differ here: the float32 one was made)
    assert not np.array_equal(single, reference[np.float64].astype(np.float32), equal_nan=True)

    # When it is stored as float64, it is numpy's float64 computation bit for bit
    demo_env.results.assets.clear()
    evaluate({"process_graph": mean_ndvi(format="GTiff", options={"datatype": "float64"})}, demo_env)
    np.testing.assert_array_equal(read_result(result_store, "float64"), reference[np.float64])


def test_a_json_result_keeps_every_digit_of_the_float64_computation(demo_env, demo_s3, result_store):
    # Given the mean NDVI of a few pixels returned as JSON
    extent = {**BOLZANO_EXTENT, "east": BOLZANO_EXTENT["west"] + 40, "south": BOLZANO_EXTENT["north"] - 30}
    graph = mean_ndvi(format="JSON")
    graph["load"]["arguments"]["spatial_extent"] = extent
    # When
    evaluate({"process_graph": graph}, demo_env)
    # Then the numbers are numpy's float64 ones
    [asset] = result_store.assets
    document = json.loads(result_store.path_of(asset.key).read_text())
    assert document["dimensions"] == ["y", "x"]
    values = np.array([[np.nan if v is None else v for v in row] for row in document["data"]], dtype=np.float64)
    expected = reference_mean_ndvi(lambda href: read_source(demo_s3, href), demo_items(demo_s3), extent)
    np.testing.assert_array_equal(values, expected)


def test_the_precision_of_a_load_plan_survives_freezing(demo_env):
    # Given the loads of a graph storing a float32 raster, planned as PlanRun plans a fanned-out run
    planned = plan_loads({"process_graph": mean_ndvi(format="GTiff")}, demo_env)
    context, _ = planned
    [plan] = context.loads.values()
    assert isinstance(plan, LoadPlan) and plan.dtype == SINGLE
    # When frozen and read back by a tile step, the tile reads float32 too
    [thawed] = loads_from_json(json.loads(json.dumps(loads_to_json(context.loads)))).values()
    assert thawed.dtype == SINGLE
    # and a plan frozen before plans had a dtype reads as float64
    document = loads_to_json(context.loads)
    for frozen in document["loads"].values():
        del frozen["dtype"]
    [old] = loads_from_json(document).values()
    assert old.dtype == DOUBLE
