"""The conformance runner's decoding and comparison: strict enough that a wrong result can't pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from tests.conformance.openeo_json5 import (
    LABEL_DIMENSION,
    TESTS_DIR,
    Case,
    Mismatch,
    Unencodable,
    datacube,
    decode,
    matches,
)

NODATA = {"type": "nodata"}


def labeled(*pairs):
    return {"type": "labeled-array", "data": [{"key": k, "value": v} for k, v in pairs]}


def cube_spec(data=None, *, bands=("red", "nir"), times=("2020-06-01T00:00:00Z",), nodata=None):
    spec = {
        "type": "datacube",
        "order": ["bands", "t", "y", "x"],
        "dimensions": {
            "bands": {"type": "bands", "values": list(bands)},
            "t": {"type": "temporal", "values": list(times)},
            "y": {"type": "spatial", "axis": "y", "values": [5757495.0, 5757485.0], "reference_system": "EPSG:25832"},
            "x": {"type": "spatial", "axis": "x", "values": [404835.0, 404845.0, 404855.0],
                  "reference_system": "EPSG:25832"},
        },
        "data": data,
    }
    if nodata is not None:
        spec["nodata"] = nodata
    return spec


def values(n_bands=2, n_times=1, start=0.0):
    return (np.arange(n_bands * n_times * 6, dtype=float) + start).reshape(n_bands, n_times, 2, 3).tolist()


# --- numbers, no-data, scalars -------------------------------------------------------------------

def test_numbers_to_ten_decimals():
    assert matches(1.5, 1.5 + 1e-11)
    assert not matches(1.5, 1.5 + 1e-9)
    assert matches(7, 7.0) and matches(7.0, np.int64(7)) and matches(2.5, np.float64(2.5))
    assert not matches(7, 8)


def test_delta_of_the_test_is_used():
    assert matches(1.0, 1.0005, delta=0.001)
    assert not matches(1.0, 1.002, delta=0.001)


def test_nan_and_infinity():
    assert matches(math.nan, math.nan)
    assert matches(math.nan, np.float64("nan"))
    assert not matches(math.nan, 1.0)
    assert not matches(1.0, math.nan)
    assert not matches(math.nan, None)
    assert matches(math.inf, math.inf) and matches(-math.inf, -math.inf)
    assert not matches(math.inf, -math.inf)
    assert not matches(math.inf, 1e308)


def test_nodata_is_null_only():
    assert matches(NODATA, None)
    assert not matches(NODATA, math.nan)  # a plain NaN is a number, not no-data
    assert not matches(NODATA, 0)
    assert not matches(0, None)
    assert matches(None, None) and not matches(None, 0)


def test_booleans_and_strings_are_strict():
    assert matches(True, True) and matches(False, np.bool_(False))
    assert not matches(True, 1) and not matches(1, True) and not matches(False, None)
    assert matches("A", "A") and not matches("A", "a") and not matches("1", 1)


def test_datetimes_compare_as_instants():
    expected = {"type": "datetime", "value": "2021-03-24T00:00:00+02:00"}
    assert matches(expected, "2021-03-23T22:00:00Z")
    assert matches(expected, np.datetime64("2021-03-23T22:00:00"))
    assert matches({"type": "datetime", "value": "2018-12-31T17:22:46.150Z"}, "2018-12-31T17:22:46.15Z")
    assert not matches(expected, "2021-03-24T00:00:00Z")
    assert not matches(expected, "not a date")


# --- arrays and labeled arrays ----------------------------------------------------------------------

def test_arrays_recursively():
    assert matches([1, NODATA, [2.0, "a"]], [1, None, [2, "a"]])
    assert not matches([1, 2], [1, 2, 3])
    assert not matches([1, 2], [2, 1])
    assert not matches([1, NODATA], [1, 0])
    assert not matches([1, 2], 1)
    assert matches([1.0, NODATA], np.array([1.0, np.nan]))  # NaN is no-data inside numpy arrays


def test_labeled_array_round_trip_and_mismatches():
    expected = labeled(("B01", 1.23), ("B02", NODATA))
    actual = decode(expected)
    assert actual.dims == (LABEL_DIMENSION,)
    assert list(actual[LABEL_DIMENSION].values) == ["B01", "B02"]
    assert actual.values[0] == 1.23 and np.isnan(actual.values[1])
    assert matches(expected, actual)
    assert not matches(labeled(("B01", 1.23), ("B03", NODATA)), actual)  # label differs
    assert not matches(labeled(("B01", 1.24), ("B02", NODATA)), actual)  # value differs
    assert not matches(labeled(("B01", 1.23)), actual)  # length differs
    assert not matches(expected, [1.23, None])  # labels missing
    assert not matches(labeled((1, 1.23), (2, NODATA)), actual)  # numeric vs string labels


def test_labeled_array_with_mixed_values_and_keys():
    actual = decode(labeled((1, True), ("2", False)))
    assert actual.dtype == bool and list(actual[LABEL_DIMENSION].values) == [1, "2"]
    assert matches(labeled((1, True), ("2", False)), actual)
    assert not matches(labeled((1, True), ("2", True)), actual)


# --- data cubes ------------------------------------------------------------------------------------

def test_cube_decoding():
    cube = datacube(cube_spec(values(), nodata=[0.0]))
    assert cube.dims == ("bands", "t", "y", "x") and cube.dtype == np.float64
    assert cube["t"].dtype == np.dtype("datetime64[ns]") and list(cube["bands"].values) == ["red", "nir"]
    assert np.isnan(cube.values[0, 0, 0, 0]) and cube.values[0, 0, 0, 1] == 1.0  # nodata value -> NaN
    from stratus_processing import cube as cubes
    assert cubes.is_cube(cube)
    grid = cubes.grid_of(cube)
    assert grid.epsg == 25832 and grid.resolution == (10.0, 10.0)
    np.testing.assert_allclose(grid.x_coords(), cube["x"].values)


def test_cube_values_compare_allclose_with_nan():
    spec = cube_spec(values(), nodata=[0.0])
    actual = datacube(spec)
    assert matches(spec, actual)
    assert matches(spec, actual + 1e-11)
    assert not matches(spec, actual + 1e-9)
    changed = actual.copy()
    changed[1, 0, 1, 2] = np.nan
    assert not matches(spec, changed)
    assert matches(spec, actual.transpose("x", "y", "t", "bands"))  # dimension order is irrelevant


def test_cube_labels_and_dimensions_must_match():
    spec = cube_spec(values())
    actual = datacube(spec)
    assert not matches(spec, actual.assign_coords(bands=["red", "nir08"]))
    assert not matches(spec, actual.assign_coords(t=[np.datetime64("2020-06-02", "ns")]))
    assert not matches(spec, actual.assign_coords(x=actual["x"].values + 5))
    assert not matches(spec, actual.isel(t=0, drop=True))
    assert not matches(spec, actual.rename(bands="b"))
    assert not matches(spec, actual.values)
    assert not matches(spec, actual.drop_vars("spatial_ref"))  # the CRS is part of the cube


def test_cube_crs_must_match():
    spec = cube_spec(values())
    other = cube_spec(values())
    for name in ("x", "y"):
        other["dimensions"][name]["reference_system"] = "EPSG:32632"
    assert not matches(spec, datacube(other))
    wkt_ref = cube_spec(values())
    wkt_ref["dimensions"]["x"]["reference_system"] = {"$ref": "assets/epsg25832.wkt2"}
    wkt_ref["dimensions"]["y"]["reference_system"] = {"$ref": "assets/epsg25832.wkt2"}
    if (TESTS_DIR / "assets/epsg25832.wkt2").exists():
        assert matches(wkt_ref, datacube(spec))


def test_cube_without_data_checks_structure_only():
    spec = cube_spec(None)
    actual = datacube(cube_spec(values()))
    assert matches(spec, actual)
    assert not matches(spec, actual.assign_coords(bands=["nir", "red"]))


def test_legacy_dimension_list():
    spec = cube_spec(values())
    legacy = {**spec, "dimensions": [{"name": n, **spec["dimensions"][n]} for n in spec["order"]]}
    del legacy["order"]
    assert matches(legacy, datacube(spec))
    assert datacube(legacy).dims == ("bands", "t", "y", "x")


def test_boolean_cube_values():
    spec = cube_spec([[[[True, False, True], [False, False, True]]]], bands=("red",))
    actual = datacube(spec)
    assert actual.values[0, 0, 0, 0] == 1.0
    assert matches(spec, actual.astype(bool))
    assert not matches(spec, 1 - actual)


def test_missing_reference_is_unencodable():
    with pytest.raises(Unencodable, match="missing"):
        decode({"$ref": "assets/does-not-exist.json5"})
    with pytest.raises(Unencodable, match="external"):
        decode({"$ref": "https://example.com/cube.json"})


# --- process graphs and the runner ----------------------------------------------------------------

def test_from_argument_erratum_and_bare_graph():
    decoded = decode({"process_graph": {
        "a": {"process_id": "array_element", "arguments": {"data": {"from_argument": "data"}, "index": 0}},
        "b": {"process_id": "add", "arguments": {"x": {"from_argument": "a"}, "y": NODATA}, "result": True}}})
    nodes = decoded["process_graph"]
    assert nodes["a"]["arguments"]["data"] == {"from_parameter": "data"}
    assert nodes["b"]["arguments"] == {"x": {"from_node": "a"}, "y": None}
    bare = decode({"gt": {"process_id": "gt", "arguments": {"x": {"from_parameter": "x"}}, "result": True}})
    assert set(bare) == {"process_graph"}
    assert decode({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}) == {
        "type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}


@pytest.fixture
def runner():
    """The runner imports the whole engine; only the tests that evaluate need it."""
    from tests.conformance import test_openeo_processes

    return test_openeo_processes


def _case(process_id, entry):
    return Case(process_id, 0, TESTS_DIR / f"{process_id}.json5", entry)


def test_runner_checks_results(runner):
    runner.run_case(_case("add", {"arguments": {"x": 1, "y": 2}, "returns": 3}))
    with pytest.raises(Mismatch):
        runner.run_case(_case("add", {"arguments": {"x": 1, "y": 2}, "returns": 4}))
    with pytest.raises(Mismatch):
        runner.run_case(_case("add", {"arguments": {"x": 1, "y": NODATA}, "returns": 1}))


def test_runner_checks_exception_codes(runner):
    missing = {"arguments": {"data": [1]}}
    runner.run_case(_case("array_element", {**missing, "throws": "ArrayElementParameterMissing"}))
    runner.run_case(_case("array_element", {**missing, "throws": True}))
    with pytest.raises(Mismatch, match="ArrayElementNotAvailable"):
        runner.run_case(_case("array_element", {**missing, "throws": "ArrayElementNotAvailable"}))
    with pytest.raises(Mismatch, match="expected the exception"):
        runner.run_case(_case("add", {"arguments": {"x": 1, "y": 2}, "throws": True}))
    # returns *or* throws: either outcome passes, a wrong value or a wrong code doesn't
    runner.run_case(_case("add", {"arguments": {"x": 1, "y": 2}, "returns": 3, "throws": "Foo"}))
    with pytest.raises(Mismatch):
        runner.run_case(_case("add", {"arguments": {"x": 1, "y": 2}, "returns": 4, "throws": "Foo"}))
    with pytest.raises(Mismatch):
        runner.run_case(_case("array_element", {**missing, "returns": 1, "throws": "ArrayElementNotAvailable"}))


def test_runner_returns_cube(runner):
    spec = cube_spec(values())
    graph_case = _case("add", {"arguments": {"x": spec, "y": 1}, "returns": cube_spec(values(start=1.0))})
    runner.run_case(graph_case)
    with pytest.raises(Mismatch):
        runner.run_case(_case("add", {"arguments": {"x": spec, "y": 1}, "returns": cube_spec(values(start=2.0))}))


def test_labeled_array_is_a_dataarray_with_one_dimension():
    assert isinstance(decode(labeled()), xr.DataArray) and decode(labeled()).shape == (0,)
