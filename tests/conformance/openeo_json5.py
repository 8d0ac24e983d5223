"""The openEO process conformance tests (openeo-processes `tests/*.json5`) for the Stratus engine.

Loading, decoding the test encoding into engine values, and comparing results with the expectation.

Decoding (test encoding -> engine value, used for arguments):
- `{"type": "nodata"}` -> `None`;
- `{"type": "datetime", "value": s}` -> the RFC 3339 string `s` (the engine takes datetimes as strings);
- `{"type": "labeled-array", "data": [{key, value}, ...]}` -> a 1-D `xarray.DataArray` whose only
  dimension is `LABEL_DIMENSION`, coordinate = the keys; numeric values (null -> NaN) are float64,
  anything else (booleans, strings, mixtures) an object array;
- `{"type": "datacube", ...}` -> an engine cube: dims in `order` (or in the order of a legacy list of
  `dimensions` with `name`s), temporal labels datetime64[ns] naive UTC, spatial labels float64, bands
  and other labels as given; values float64 with null and the `nodata` values as NaN (`data: null`
  gives an all-NaN cube); with `x` and `y` a `spatial_ref` coordinate from the `reference_system`;
- `{"$ref": "assets/..."}` -> the decoded JSON5 file, or the text of any other file (a WKT2 CRS);
- everything else recursively as is.

Comparison (`assert_matches(expected, actual)`, expected in the test encoding) is strict: numbers to
10 decimals (or the test's `delta`), NaN only equals NaN, no-data only equals `None` (or NaN inside
numpy/xarray arrays, the engine's no-data there), booleans only booleans, datetimes as instants,
arrays element-wise with equal length, labeled arrays with equal labels in order, and data cubes with
the same dimension names (order-insensitive), the same labels per dimension, the same CRS and values
allclose (NaN == NaN) unless the test omits them (`data: null`).

Upstream errata: the test files contain two systematic encoding mistakes, repaired while decoding
(and only those): `{"from_argument": name}` for `from_node` (when `name` is a node of the same graph)
or `from_parameter` (otherwise), and child process graphs given as a bare flat graph without the
`{"process_graph": ...}` wrapper. Single entries that are plainly wrong (typos, expectations out of
date with their assets or contradicting the process spec and its examples) are corrected by `ERRATA`,
each with the reason, on a copy of the entry; `BROKEN` lists the entries too inconsistent to correct
(skipped). Entries the runner can't encode raise `Unencodable` with the reason.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from numbers import Real
from pathlib import Path
from typing import Any

import json5
import numpy as np
import pandas as pd
import xarray as xr

from tests.support import CONFORMANCE

TESTS_DIR = CONFORMANCE / "openeo-processes" / "tests"
LABEL_DIMENSION = "labels"
DEFAULT_DELTA = 1e-10
# Relative tolerance on top of the absolute one (~9 ulp): float rounding of large magnitudes only.
REL_TOLERANCE = 2e-15
# Spatial labels are computed from grids (pixel centres); absorb float noise only.
COORD_TOLERANCE = 1e-6

class Unencodable(Exception):
    """The test entry needs something this runner can't express; the message says what."""


# --- loading ---------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _load_json5(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json5.load(f)


@lru_cache(maxsize=None)
def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass
class Case:
    process_id: str
    index: int
    path: Path
    entry: Mapping[str, Any]
    experimental: bool = False
    processes_used: set[str] = field(default_factory=set)
    erratum: str | None = None  # why the entry was corrected (see ERRATA)
    broken: str | None = None  # why the entry is skipped (see BROKEN)

    @property
    def test_id(self) -> str:
        return f"{self.process_id}-{self.index}"

    @property
    def delta(self) -> float:
        delta = self.entry.get("delta")
        return float(delta) if isinstance(delta, Real) and not isinstance(delta, bool) and delta > 0 else DEFAULT_DELTA


def load_cases(tests_dir: Path = TESTS_DIR, *, process_ids: Iterable[str] | None = None) -> list[Case]:
    """The test entries of the given processes (all when None), files parsed only for those."""
    wanted = None if process_ids is None else set(process_ids)
    cases = []
    for path in sorted(tests_dir.glob("*.json5")):
        if wanted is not None and path.stem not in wanted:
            continue  # files are named after their process id (checked below)
        document = _load_json5(path)
        process_id = document["id"]
        if process_id != path.stem:
            raise ValueError(f"{path}: id '{process_id}' does not match the file name")
        for index, entry in enumerate(document.get("tests") or []):
            erratum = ERRATA.get(f"{process_id}-{index}")
            if erratum is not None:
                entry = {**copy.deepcopy(entry), "__process__": process_id}
                erratum[1](entry)
                del entry["__process__"]
            cases.append(Case(process_id, index, path, entry,
                              experimental=bool(document.get("experimental") or entry.get("experimental")),
                              processes_used=set(entry.get("required") or []) | processes_in(entry.get("arguments")),
                              erratum=erratum[0] if erratum else None,
                              broken=BROKEN.get(f"{process_id}-{index}")))
    return cases


# --- corrections of single wrong entries, by test id ---------------------------------------------------
# Each fixer edits a deep copy of the entry (with "__process__" set to the file's process id).

Fixer = Callable[[dict[str, Any]], None]


def _at(data: Any, index: tuple[int, ...]) -> tuple[Any, int]:
    for i in index[:-1]:
        data = data[i]
    return data, index[-1]




def _set_argument(name: str, value: Any) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["arguments"][name] = value
    return fix


def _set_returns(value: Any) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["returns"] = value
    return fix


def _renamed_parameter(old: str, new: str) -> Fixer:
    def rename(value: Any) -> Any:
        if isinstance(value, Mapping):
            if set(value) == {"from_parameter"} and value["from_parameter"] == old:
                return {"from_parameter": new}
            return {key: rename(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rename(item) for item in value]
        return value

    def fix(entry: dict[str, Any]) -> None:
        entry["arguments"] = rename(entry["arguments"])
    return fix


def _returns_of(index: int) -> Fixer:
    """The expectation of the entry `index` of the same file."""
    def fix(entry: dict[str, Any]) -> None:
        document = _load_json5(TESTS_DIR / f"{entry['__process__']}.json5")
        entry["returns"] = copy.deepcopy(document["tests"][index]["returns"])
    return fix


def _asset(ref: str) -> dict[str, Any]:
    return copy.deepcopy(_load_json5(TESTS_DIR / ref))


def _returns_asset_with_nan(ref: str, *indices: tuple[int, ...]) -> Fixer:
    """The expectation `ref` with NaN at the given positions of its data."""
    def fix(entry: dict[str, Any]) -> None:
        cube = _asset(ref)
        for index in indices:
            data, last = _at(cube["data"], index)
            data[last] = math.nan
        entry["returns"] = cube
    return fix


def _argument_asset_with_times(name: str, ref: str, times: list[str]) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        cube = _asset(ref)
        cube["dimensions"]["t"]["values"] = times
        entry["arguments"][name] = cube
    return fix


def _argument_asset_inverted(name: str, ref: str) -> Fixer:
    def invert(data: Any) -> Any:
        return [invert(v) for v in data] if isinstance(data, list) else int(not data)

    def fix(entry: dict[str, Any]) -> None:
        cube = _asset(ref)
        cube["data"] = invert(cube["data"])
        entry["arguments"][name] = cube
    return fix


def _argument_asset_value(name: str, ref: str, index: tuple[int, ...], value: Any) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        cube = _asset(ref)
        data, last = _at(cube["data"], index)
        data[last] = value
        entry["arguments"][name] = cube
    return fix


def _delta(delta: float) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["delta"] = delta
    return fix


def _source_is_target(entry: dict[str, Any]) -> None:
    entry["arguments"]["target"] = entry["arguments"].pop("source")


def _labels_moved_out_of_reducer(entry: dict[str, Any]) -> None:
    entry["arguments"]["labels"] = entry["arguments"]["reducer"].pop("labels")


def _reducer_process(node: str, process_id: str) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["arguments"]["reducer"]["process_graph"][node]["process_id"] = process_id
    return fix


def _returns_dimensions(order: list[str], names: dict[str, str]) -> Fixer:
    """Expected cube dimensions renamed (`names`: name in the file -> right name), in `order`."""
    def fix(entry: dict[str, Any]) -> None:
        returns = entry["returns"]
        returns["dimensions"] = {names.get(n, n): d for n, d in returns["dimensions"].items()}
        returns["order"] = order
    return fix


def _returns_labels(dimension: str, labels: list[Any]) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["returns"]["dimensions"][dimension]["values"] = labels
    return fix


def _returns_nan_slice(position: int) -> Fixer:
    """Insert an all-NaN slice along the first axis of the expected data."""
    def fix(entry: dict[str, Any]) -> None:
        data = entry["returns"]["data"]
        data.insert(position, np.full(np.shape(data[0]), np.nan).tolist())
    return fix


def _renamed_argument(old: str, new: str) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["arguments"][new] = entry["arguments"].pop(old)
    return fix


def _labeled_returns(entry: dict[str, Any]) -> None:
    entry["returns"] = {"type": "labeled-array", "data": entry["returns"]}


def _callback_process(argument: str, node: str, process_id: str) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["arguments"][argument]["process_graph"][node]["process_id"] = process_id
    return fix


def _returns_element(index: int, value: Any) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        entry["returns"][index] = value
    return fix


def _all(*fixers: Fixer) -> Fixer:
    def fix(entry: dict[str, Any]) -> None:
        for fixer in fixers:
            fixer(entry)
    return fix


_OLD_ASSET = ("assets/xyb-minimal-int.json5 has no-data (255) in band 'blue' at y=5757495, x=404865; "
              "the expectation still uses that pixel's former value 165: run with 165 there")
_FORMER_BLUE = _argument_asset_value("data", "assets/xyb-minimal-int.json5", (2, 0, 3), 165)
_JANUARY = ["2020-01-01T00:00:00Z", "2020-01-03T00:00:00Z", "2020-01-05T00:00:00Z", "2020-01-07T00:00:00Z",
            "2020-01-09T00:00:00Z"]
_MOVED_TO_JUNE = ("intervals and expectations are for assets/xyt-more-timestamps.json5 with its former dates "
                  "(2020-01-01..09, two days apart), the asset now has 2020-06-01..09; run on the January dates")
_ROUNDED = "; the expected means are rounded to 2 decimals: delta 0.005"
_JANUARY_ASSET = _argument_asset_with_times("data", "assets/xyt-more-timestamps.json5", _JANUARY)
_INVERTED_MASK = ("the expectation replaces where assets/xyb-mask.json5 is 0; mask replaces where it is non-zero: "
                  "run with the inverted mask")
_NOT_SOURCE = "the new labels are passed as `source` (`target` is required); meant: target, source omitted"
_ELEMENT = "the condition reads the parameter 'element'; count's condition gets 'x' (and context)"
_SEASON_DIMENSION = "the result keeps the aggregated dimension's name 't2', the expectation calls it 't'"

_FILTER_CONDITION = "the callback is passed as `process`; array_filter's parameter is `condition`"
_FILTER_LABELED = "; the expectation lists {key, value} objects as a plain array: it is the labeled array they encode"

ERRATA: dict[str, tuple[str, Fixer]] = {
    "aggregate_temporal-5": (_MOVED_TO_JUNE + _ROUNDED, _all(_JANUARY_ASSET, _delta(0.005))),
    "aggregate_temporal-6": (_MOVED_TO_JUNE + _ROUNDED, _all(_JANUARY_ASSET, _delta(0.005))),
    "aggregate_temporal-7": (_MOVED_TO_JUNE + _ROUNDED, _all(_JANUARY_ASSET, _delta(0.005))),
    "aggregate_temporal-8": (_MOVED_TO_JUNE, _JANUARY_ASSET),
    "aggregate_temporal-9": (_MOVED_TO_JUNE + _ROUNDED + "; `labels` is misplaced inside `reducer`",
                             _all(_JANUARY_ASSET, _delta(0.005), _labels_moved_out_of_reducer)),
    "aggregate_temporal-10": ("the reducer is `mean` while `required` and the expected values are `median`",
                              _reducer_process("mean", "median")),
    "aggregate_temporal_period-3": (
        "expectation copied from the 'day' entry: for period 'hour' the labels are YYYY-MM-DD-HH, complete for "
        "the extent (00..04, hours 02 and 03 empty)",
        _all(_returns_labels("t", [f"2020-06-01-{h:02d}" for h in range(5)]), _returns_nan_slice(3))),
    "aggregate_temporal_period-4": ("labels in the 'hour' format; for period 'day' they are YYYY-DDD",
                                    _returns_labels("t", ["2020-153", "2020-154", "2020-155", "2020-156"])),
    "aggregate_temporal_period-8": (_SEASON_DIMENSION, _returns_dimensions(["t2", "y", "x"], {"t": "t2"})),
    "aggregate_temporal_period-9": (_SEASON_DIMENSION, _returns_dimensions(["t2", "y", "x"], {"t": "t2"})),
    "array_append-0": ("expects [1] for appending 0 to []", _set_returns([0])),
    "array_apply-8": ("the process id 'mulitply' (typo) for multiply; and (-4.725 + 1.5) * 2 is -6.45, "
                      "the expectation says 6.45",
                      _all(_callback_process("process", "mulitply", "multiply"), _returns_element(3, -6.45))),
    **{f"array_filter-{i}": (_FILTER_CONDITION, _renamed_argument("process", "condition")) for i in (0, 1, 2, 6)},
    **{f"array_filter-{i}": (_FILTER_CONDITION + _FILTER_LABELED,
                             _all(_renamed_argument("process", "condition"), _labeled_returns)) for i in (3, 4)},
    "array_modify-3": ("omits `length` to remove one element (as the spec's example does), but the spec's default "
                       "length is 0 (insert only): run with length 1", _set_argument("length", 1)),
    "all-8": ("expects true for [null] with ignore_nodata=false; the truth table and the example in all.json "
              "say no-data", _set_returns({"type": "nodata"})),
    "any-8": ("expects false for [null] with ignore_nodata=false; the truth table and the example in any.json "
              "say no-data", _set_returns({"type": "nodata"})),
    "apply-2": (_OLD_ASSET, _FORMER_BLUE),
    "apply_dimension-1": (_OLD_ASSET, _FORMER_BLUE),
    "apply_dimension-2": ("applied over 'bands', which assets/xyt-more-timestamps.json5 lacks; the expected "
                          "values are min/mean/max over 't'", _set_argument("dimension", "t")),
    "array_element-3": ("label 'BO2' (letter O) for the key 'B02' (zero); the expected 5 is B02's value",
                        _set_argument("label", "B02")),
    "array_find-6": ("expects 1 for the first occurrence of 3 in [3, 4]; it is at index 0", _set_returns(0)),
    "count-4": (_ELEMENT, _renamed_parameter("element", "x")),
    "count-5": (_ELEMENT, _renamed_parameter("element", "x")),
    "filter_bands-4": ("same arguments as entry 3 (red, blue) but expects blue, green: meant bands [blue, green]",
                       _set_argument("bands", ["blue", "green"])),
    "lte-15": ("expects Infinity <= Infinity to be false; IEEE 754 (and gte-15) say true", _set_returns(True)),
    "mask-0": (_INVERTED_MASK, _argument_asset_inverted("mask", "assets/xyb-mask.json5")),
    "mask-1": ("the data assets/xyb-minimal-float.json5 does not exist, the expectation is "
               "assets/xyt-minimal-float.json5 masked; " + _INVERTED_MASK,
               _all(_set_argument("data", {"$ref": "assets/xyt-minimal-float.json5"}),
                    _argument_asset_inverted("mask", "assets/xyb-mask.json5"))),
    "mask_polygon-0": ("expectations of entries 0 and 1 swapped: the polygon (Vienna) misses the cube "
                       "(Muenster), so inside=true replaces nothing", _returns_of(1)),
    "mask_polygon-1": ("expectations of entries 0 and 1 swapped: the polygon (Vienna) misses the cube "
                       "(Muenster), so inside=false (the default) replaces every pixel", _returns_of(0)),
    "mask_polygon-6": ("assets/xytb-s2-small-masked-inside.json5 leaves 4 pixels inside the polygon unmasked in "
                       "band nir at t=2020-06-13 (y=5757475, x=404865..404895), masked in every other slice",
                       _returns_asset_with_nan("assets/xytb-s2-small-masked-inside.json5",
                                               *[(3, 5, 2, x) for x in range(3, 7)])),
    "product-10": ("expects NaN for 1 * -Infinity * 3 * Infinity; IEEE 754 gives -Infinity (copied from sum)",
                   _set_returns(-math.inf)),
    "reduce_dimension-1": (_OLD_ASSET, _FORMER_BLUE),
    "rename_dimension-3": ("expected dimensions swapped: renaming x to lon gives t, y, lon",
                           _returns_dimensions(["t", "y", "lon"], {"lon": "y", "x": "lon"})),
    "rename_dimension-4": ("expected dimensions swapped: renaming y to lat gives t, lat, x",
                           _returns_dimensions(["t", "lat", "x"], {"y": "lat", "lat": "x"})),
    "rename_labels-5": (_NOT_SOURCE, _source_is_target),
    "rename_labels-7": (_NOT_SOURCE, _source_is_target),
}

# Entries too inconsistent to correct: skipped with the reason.
BROKEN: dict[str, str] = {
    "array_filter-5": "the condition is `subtract` (x - 1), a number, where array_filter needs a boolean; the "
                      "expectation keeps 1.23 and drops 0.98, both non-zero: no reading of the condition gives it",
    "mask-2": "the expectation replaces where assets/xyb-mask.json5 is 0 (the spec: non-zero), and also the "
              "no-data pixel at y=5757475, x=404855 where the mask is 1: no single mask gives it",
}


def processes_in(value: Any) -> set[str]:
    """Process ids used by the child process graphs in an argument value."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        if isinstance(value.get("process_id"), str):
            found.add(value["process_id"])
        for item in value.values():
            found |= processes_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= processes_in(item)
    return found


# --- decoding: test encoding -> engine values --------------------------------------------------------

def decode(value: Any, base_dir: Path = TESTS_DIR) -> Any:
    """A test argument value as the engine value (see the module docstring)."""
    if isinstance(value, list):
        return [decode(item, base_dir) for item in value]
    if not isinstance(value, Mapping):
        return value
    if "$ref" in value:
        return resolve_ref(value["$ref"], base_dir)
    kind = value.get("type")
    if kind == "nodata" and set(value) == {"type"}:
        return None
    if kind == "datetime" and isinstance(value.get("value"), str):
        return value["value"]
    if kind == "labeled-array" and isinstance(value.get("data"), list):
        return labeled_array([decode(item.get("key"), base_dir) for item in value["data"]],
                             [decode(item.get("value"), base_dir) for item in value["data"]])
    if kind == "datacube" and "dimensions" in value:
        return datacube(value, base_dir)
    if isinstance(value.get("process_graph"), Mapping):
        return {**value, "process_graph": _decode_graph(value["process_graph"], base_dir)}
    if _is_bare_flat_graph(value):
        # Upstream erratum: a child process graph without its {"process_graph": ...} wrapper.
        return {"process_graph": _decode_graph(value, base_dir)}
    return {key: decode(item, base_dir) for key, item in value.items()}


def _decode_graph(graph: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    nodes = set(graph)

    def fix(value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) == {"from_argument"}:
            # Upstream erratum: `from_argument` is not openEO; it stands for a node or a parameter.
            name = value["from_argument"]
            return {"from_node": name} if name in nodes else {"from_parameter": name}
        if isinstance(value, Mapping) and not isinstance(value.get("process_graph"), Mapping) \
                and not _is_bare_flat_graph(value):
            return {key: fix(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fix(item) for item in value]
        return value

    return {node_id: {**node, "arguments": decode(fix(node.get("arguments") or {}), base_dir)}
            for node_id, node in graph.items()}


def _is_bare_flat_graph(value: Mapping[str, Any]) -> bool:
    return bool(value) and all(isinstance(node, Mapping) and isinstance(node.get("process_id"), str)
                               and "arguments" in node for node in value.values()) \
        and any(node.get("result") is True for node in value.values())


def resolve_ref(ref: Any, base_dir: Path) -> Any:
    if not isinstance(ref, str) or "://" in ref:
        raise Unencodable(f"external reference {ref!r} (only local files are supported)")
    path = (base_dir / ref).resolve()
    if not path.exists():
        raise Unencodable(f"referenced file {ref!r} is missing from the test suite")
    if path.suffix in (".json5", ".json"):
        return decode(_load_json5(path), path.parent)
    return _read_text(path)


def labeled_array(keys: list[Any], values: list[Any]) -> xr.DataArray:
    return xr.DataArray(_array_values(values), dims=[LABEL_DIMENSION], coords={LABEL_DIMENSION: _label_values(keys)})


def _array_values(values: list[Any]) -> np.ndarray:
    if all(v is None or (isinstance(v, Real) and not isinstance(v, bool)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _label_values(keys: list[Any]) -> np.ndarray:
    if keys and all(isinstance(k, str) for k in keys):
        return np.array(keys, dtype=object)
    if keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
        return np.array(keys, dtype=np.int64)
    if keys and all(isinstance(k, Real) and not isinstance(k, bool) for k in keys):
        return np.array(keys, dtype=np.float64)
    array = np.empty(len(keys), dtype=object)
    array[:] = keys
    return array


def cube_dimensions(spec: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, dimension) in the cube's axis order: `order` with a `dimensions` object, or the legacy
    list of dimensions with `name`s."""
    dimensions = spec["dimensions"]
    if isinstance(dimensions, list):
        named = [(d["name"], dict(d)) for d in dimensions]
        if "order" in spec and list(spec["order"]) != [n for n, _ in named]:
            named = [(n, next(d for m, d in named if m == n)) for n in spec["order"]]
        return named
    order = spec.get("order") or list(dimensions)
    missing = [n for n in order if n not in dimensions]
    if missing or set(order) != set(dimensions):
        raise Unencodable(f"datacube 'order' {order} does not match its dimensions {list(dimensions)}")
    return [(name, dict(dimensions[name])) for name in order]


def datacube(spec: Mapping[str, Any], base_dir: Path = TESTS_DIR) -> xr.DataArray:
    from stratus_processing import cube as cubes
    from stratus_processing.grid import Grid, parse_crs

    dims = cube_dimensions(spec)
    coords: dict[str, Any] = {}
    for name, dimension in dims:
        kind = dimension.get("type")
        if kind in ("geometry", "vector"):
            raise Unencodable("vector data cubes")
        coords[name] = dimension_labels(dimension)
    shape = tuple(len(coords[name]) for name, _ in dims)
    values = cube_values(spec, shape)
    cube = xr.DataArray(values, dims=[name for name, _ in dims], coords=coords)
    spatial = {name: d for name, d in dims if d.get("type") == "spatial"}
    if cubes.X in spatial and cubes.Y in spatial:
        reference = spatial[cubes.X].get("reference_system", spatial[cubes.Y].get("reference_system"))
        if reference is None:
            raise Unencodable("a spatial dimension without reference_system")
        crs = parse_crs(decode(reference, base_dir))
        x, y = coords[cubes.X], coords[cubes.Y]
        res_x, res_y = _step(x), _step(y)
        res_x, res_y = res_x or res_y or 1.0, res_y or res_x or 1.0
        grid = Grid.from_coords(crs, x, y, (res_x, res_y))
        cube = cube.assign_coords({cubes.SPATIAL_REF: cubes.spatial_ref_coord(grid)})
    return cube


def _step(values: np.ndarray) -> float | None:
    return float(abs(values[1] - values[0])) if len(values) > 1 else None


def dimension_labels(dimension: Mapping[str, Any]) -> np.ndarray:
    labels = list(dimension.get("values") or [])
    kind = dimension.get("type")
    if kind == "temporal":
        return np.array([to_instant(v).tz_convert("UTC").tz_localize(None).to_datetime64() for v in labels],
                        dtype="datetime64[ns]")
    if kind == "spatial":
        return np.asarray(labels, dtype=np.float64)
    return _label_values(labels)


def cube_values(spec: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    data = spec.get("data")
    if data is None:
        return np.full(shape, np.nan)
    values = np.array(_nulls_to_nan(data), dtype=np.float64)
    if values.size == 0 and math.prod(shape) == 0:
        values = values.reshape(shape)  # `[]` for a cube with an empty dimension
    elif values.size == 0 and shape == ():
        values = np.full((), np.nan)  # `[]` for a cube without dimensions: the engine's 0-d no-data
    if values.shape != shape:
        raise ValueError(f"datacube data has shape {values.shape}, its dimensions say {shape}")
    for nodata in _nodata_values(spec):
        if not (isinstance(nodata, float) and math.isnan(nodata)):
            values[values == float(nodata)] = np.nan
    return values


def _nodata_values(spec: Mapping[str, Any]) -> list[Any]:
    nodata = spec.get("nodata")
    if nodata is None:
        return []
    return [v for v in (nodata if isinstance(nodata, list) else [nodata]) if isinstance(v, Real)]


def _nulls_to_nan(data: Any) -> Any:
    if isinstance(data, list):
        return [_nulls_to_nan(v) for v in data]
    if data is None:
        return np.nan
    if isinstance(data, bool):
        return float(data)
    return data


def to_instant(value: Any) -> pd.Timestamp:
    """An RFC 3339 string, datetime or datetime64 as an aware UTC timestamp (naive means UTC)."""
    if isinstance(value, str):
        text = value.strip()
        stamp = pd.Timestamp(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    elif isinstance(value, (datetime, np.datetime64, pd.Timestamp)):
        stamp = pd.Timestamp(value)
    else:
        raise TypeError(f"not a datetime: {value!r}")
    if stamp is pd.NaT:
        raise TypeError(f"not a datetime: {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# --- comparing: expected (test encoding) vs actual (engine value) -----------------------------------

class Mismatch(AssertionError):
    pass


def matches(expected: Any, actual: Any, *, delta: float = DEFAULT_DELTA, base_dir: Path = TESTS_DIR) -> bool:
    try:
        assert_matches(expected, actual, delta=delta, base_dir=base_dir)
    except Mismatch:
        return False
    return True


def assert_matches(expected: Any, actual: Any, *, delta: float = DEFAULT_DELTA, base_dir: Path = TESTS_DIR,
                   path: str = "result") -> None:
    """Raise `Mismatch` naming the first difference, at `path`."""
    _Comparator(delta, base_dir).compare(expected, actual, path, in_array=False)


def describe(value: Any) -> str:
    if isinstance(value, xr.DataArray):
        return f"DataArray(dims={list(value.dims)}, shape={value.shape}, dtype={value.dtype})"
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."


class _Comparator:
    def __init__(self, delta: float, base_dir: Path) -> None:
        self.delta = delta
        self.base_dir = base_dir

    def fail(self, path: str, message: str) -> None:
        raise Mismatch(f"at {path}: {message}")

    def compare(self, expected: Any, actual: Any, path: str, *, in_array: bool) -> None:
        if isinstance(expected, Mapping) and "$ref" in expected:
            ref = expected["$ref"]
            if not isinstance(ref, str) or "://" in ref:
                raise Unencodable(f"external reference {ref!r}")
            target = (self.base_dir / ref).resolve()
            if not target.exists():
                raise Unencodable(f"referenced file {ref!r} is missing from the test suite")
            if target.suffix in (".json5", ".json"):
                return _Comparator(self.delta, target.parent).compare(_load_json5(target), actual, path,
                                                                      in_array=in_array)
            return self.compare(_read_text(target), actual, path, in_array=in_array)
        # A 0-d array is a scalar in an array context (its NaN is no-data), unless a cube is expected
        # (a cube without dimensions, e.g. of create_data_cube).
        expects_cube = isinstance(expected, Mapping) and expected.get("type") == "datacube"
        if isinstance(actual, (xr.DataArray, np.ndarray)) and actual.ndim == 0 and not expects_cube:
            actual, in_array = actual.item() if isinstance(actual, np.ndarray) else actual.values.item(), True
        elif isinstance(actual, np.generic):
            actual = actual.item()

        kind = expected.get("type") if isinstance(expected, Mapping) else None
        if kind == "nodata" and set(expected) == {"type"}:
            if actual is None or (in_array and isinstance(actual, float) and math.isnan(actual)):
                return
            self.fail(path, f"expected no-data (null), got {describe(actual)}")
        elif kind == "datetime" and "value" in expected:
            self.compare_datetime(expected["value"], actual, path)
        elif kind == "labeled-array" and isinstance(expected.get("data"), list):
            self.compare_labeled_array(expected["data"], actual, path)
        elif kind == "datacube" and "dimensions" in expected:
            self.compare_cube(expected, actual, path)
        elif isinstance(expected, bool):
            if not isinstance(actual, bool) or actual != expected:
                self.fail(path, f"expected {expected}, got {describe(actual)}")
        elif isinstance(expected, Real):
            self.compare_number(float(expected), actual, path)
        elif isinstance(expected, str):
            if not isinstance(actual, str) or actual != expected:
                self.fail(path, f"expected {expected!r}, got {describe(actual)}")
        elif expected is None:
            if actual is not None:
                self.fail(path, f"expected null, got {describe(actual)}")
        elif isinstance(expected, list):
            self.compare_list(expected, actual, path)
        elif isinstance(expected, Mapping):
            if not isinstance(actual, Mapping):
                self.fail(path, f"expected an object, got {describe(actual)}")
            if set(expected) != set(actual):
                self.fail(path, f"expected keys {sorted(expected)}, got {sorted(actual)}")
            for key in expected:
                self.compare(expected[key], actual[key], f"{path}.{key}", in_array=False)
        else:
            raise TypeError(f"unsupported expected value {expected!r}")

    def compare_number(self, expected: float, actual: Any, path: str) -> None:
        if isinstance(actual, bool) or not isinstance(actual, Real):
            self.fail(path, f"expected the number {expected!r}, got {describe(actual)}")
        actual = float(actual)
        if math.isnan(expected) or math.isnan(actual):
            if not (math.isnan(expected) and math.isnan(actual)):
                self.fail(path, f"expected {expected!r}, got {actual!r}")
            return
        if math.isinf(expected) or math.isinf(actual):
            if expected != actual:
                self.fail(path, f"expected {expected!r}, got {actual!r}")
            return
        if not math.isclose(actual, expected, rel_tol=REL_TOLERANCE, abs_tol=self.delta):
            self.fail(path, f"expected {expected!r}, got {actual!r} (difference {actual - expected:.3g}, "
                            f"allowed {self.delta:g})")

    def compare_datetime(self, expected: str, actual: Any, path: str) -> None:
        try:
            got = to_instant(actual)
        except (TypeError, ValueError):
            self.fail(path, f"expected the datetime {expected!r}, got {describe(actual)}")
        if got != to_instant(expected):
            self.fail(path, f"expected the datetime {expected!r}, got {describe(actual)} ({got.isoformat()})")

    def compare_list(self, expected: list[Any], actual: Any, path: str) -> None:
        in_array = isinstance(actual, (np.ndarray, xr.DataArray))
        if isinstance(actual, (np.ndarray, xr.DataArray)):
            if actual.ndim != 1:
                self.fail(path, f"expected an array, got {describe(actual)}")
            items = list(actual.values if isinstance(actual, xr.DataArray) else actual)
        elif isinstance(actual, (list, tuple)):
            items = list(actual)
        else:
            self.fail(path, f"expected an array of {len(expected)} elements, got {describe(actual)}")
        if len(items) != len(expected):
            self.fail(path, f"expected {len(expected)} elements, got {len(items)}: {describe(items)}")
        for i, (e, a) in enumerate(zip(expected, items, strict=True)):
            self.compare(e, a, f"{path}[{i}]", in_array=in_array)

    def compare_labeled_array(self, expected: list[Mapping[str, Any]], actual: Any, path: str) -> None:
        if not isinstance(actual, xr.DataArray) or actual.ndim != 1:
            self.fail(path, f"expected a labeled array (1-D DataArray), got {describe(actual)}")
        dimension = actual.dims[0]
        labels = list(actual[dimension].values) if dimension in actual.coords else None
        if labels is None:
            self.fail(path, "expected a labeled array, got a DataArray without labels")
        if len(labels) != len(expected):
            self.fail(path, f"expected {len(expected)} elements, got {len(labels)}")
        for i, (item, label, value) in enumerate(zip(expected, labels, actual.values, strict=True)):
            self.compare_label(item.get("key"), label, f"{path} label [{i}]")
            self.compare(item.get("value"), value, f"{path}[{item.get('key')!r}]", in_array=True)

    def compare_label(self, expected: Any, actual: Any, path: str) -> None:
        if isinstance(actual, np.generic):
            actual = actual.item() if not isinstance(actual, np.datetime64) else actual
        if isinstance(actual, (np.datetime64, datetime)) and isinstance(expected, str):
            return self.compare_datetime(expected, actual, path)
        if isinstance(expected, str):
            if not isinstance(actual, str) or actual != expected:
                self.fail(path, f"expected the label {expected!r}, got {actual!r}")
        elif isinstance(expected, Real) and not isinstance(expected, bool):
            if isinstance(actual, bool) or not isinstance(actual, Real) or float(actual) != float(expected):
                self.fail(path, f"expected the label {expected!r}, got {actual!r}")
        elif actual != expected:
            self.fail(path, f"expected the label {expected!r}, got {actual!r}")

    def compare_cube(self, expected: Mapping[str, Any], actual: Any, path: str) -> None:
        if not isinstance(actual, xr.DataArray):
            self.fail(path, f"expected a data cube, got {describe(actual)}")
        dims = cube_dimensions(expected)
        names = [name for name, _ in dims]
        if set(names) != set(actual.dims) or len(actual.dims) != len(names):
            self.fail(path, f"expected the dimensions {sorted(names)}, got {sorted(map(str, actual.dims))}")
        for name, dimension in dims:
            self.compare_dimension_labels(name, dimension, actual, f"{path} dimension '{name}'")
        self.compare_crs(dims, actual, path)
        if expected.get("data") is None:
            return  # the test leaves the values open
        want = cube_values(expected, tuple(len(dimension.get("values") or []) for _, dimension in dims))
        try:
            got = np.asarray(actual.transpose(*names).values, dtype=np.float64)
        except (TypeError, ValueError):
            self.fail(path, f"expected numeric values, got dtype {actual.dtype}")
        close = np.isclose(got, want, rtol=REL_TOLERANCE, atol=self.delta, equal_nan=True)
        if not close.all():
            bad = np.argwhere(~close)
            first = tuple(int(i) for i in bad[0])
            where = ", ".join(f"{n}={_label_repr(actual, n, i)}" for n, i in zip(names, first, strict=True))
            self.fail(path, f"{len(bad)} of {got.size} values differ; first at {where}: "
                            f"expected {want[first]!r}, got {got[first]!r}")

    def compare_dimension_labels(self, name: str, dimension: Mapping[str, Any], actual: xr.DataArray,
                                 path: str) -> None:
        want = list(dimension.get("values") or [])
        if name not in actual.coords:
            if actual.sizes[name] != len(want):
                self.fail(path, f"expected {len(want)} labels, got {actual.sizes[name]} (without labels)")
            self.fail(path, "the dimension has no labels")
        got = list(actual[name].values)
        if len(got) != len(want):
            self.fail(path, f"expected the labels {want}, got {[_plain(v) for v in got]}")
        kind = dimension.get("type")
        if kind == "spatial":
            try:
                ok = np.allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                                 rtol=0, atol=COORD_TOLERANCE)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                self.fail(path, f"expected the labels {want}, got {[_plain(v) for v in got]}")
            return
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            if kind == "temporal":
                # Datetimes compare as instants; other temporal labels (e.g. "2020-W01" periods) as strings.
                same = isinstance(w, str) and isinstance(g, str) and w == g
                if not same:
                    try:
                        same = to_instant(g) == to_instant(w)
                    except (TypeError, ValueError):
                        same = False
                if not same:
                    self.fail(path, f"expected the labels {want}, got {[_plain(v) for v in got]} (label {i})")
            else:
                try:
                    self.compare_label(w, g, path)
                except Mismatch:
                    self.fail(path, f"expected the labels {want}, got {[_plain(v) for v in got]} (label {i})")

    def compare_crs(self, dims: list[tuple[str, dict[str, Any]]], actual: xr.DataArray, path: str) -> None:
        spatial = {name: d for name, d in dims if d.get("type") == "spatial"}
        if not ("x" in spatial and "y" in spatial):
            return
        reference = spatial["x"].get("reference_system", spatial["y"].get("reference_system"))
        ref = actual.coords.get("spatial_ref")
        if ref is None or "crs_wkt" not in ref.attrs:
            self.fail(path, "the cube has x and y but no spatial_ref coordinate with a crs_wkt")
        if reference is None:
            return
        if isinstance(reference, Mapping) and "$ref" in reference:
            reference = resolve_ref(reference["$ref"], self.base_dir)
        if not _same_crs(reference, ref.attrs["crs_wkt"]):
            self.fail(path, f"expected the CRS {str(reference)[:60]!r}, got {ref.attrs['crs_wkt'][:60]!r}...")


@lru_cache(maxsize=64)
def _same_crs(expected: Any, actual_wkt: str) -> bool:
    from pyproj import CRS

    want = CRS.from_user_input(expected if not isinstance(expected, int) else f"EPSG:{expected}")
    got = CRS.from_wkt(actual_wkt)
    if want.equals(got, ignore_axis_order=True):
        return True
    return want.to_epsg() is not None and want.to_epsg() == got.to_epsg()


def _plain(value: Any) -> Any:
    if isinstance(value, np.datetime64):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def _label_repr(cube: xr.DataArray, name: str, index: int) -> str:
    if name in cube.coords:
        return repr(_plain(cube[name].values[index]))
    return f"#{index}"
