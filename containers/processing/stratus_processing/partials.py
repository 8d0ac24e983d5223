"""`aggregate_spatial` over the tiles of a fanned-out run: per tile the combinable parts of each
geometry's statistics, and the combine step's statistics from the parts of all tiles.

Each pixel belongs to exactly one tile's window (halos are read, never aggregated), so a geometry
crossing tile borders gets each of its pixels once. Per geometry (and per cell of the cube's other
dimensions: dates, bands) a tile keeps the number of its pixels (`total`), of those with a value
(`present`: not NaN), of its finite ones (`count`), and of the values their sum, min, max and `m2`,
the sum of squared deviations from the tile's own mean. The combine step merges them with Chan et
al.'s pairwise update (more stable than a sum of squares): mean = Σsum / Σpresent, sample variance
= M2 / (N - 1), as the single task's reducers (`processes.reducers`: `ddof=1`). The numbers equal
the single task's up to the order of the floating-point additions (relative differences of ~1e-15;
counts, min, max, first and last exactly). For `first` and `last` a tile also keeps the value and
grid position of its first and last pixel of each geometry: the single task takes the pixels of a
geometry row by row over the grid, so the earliest position over all tiles is the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stratus_processing.deferred import xr

# What the combine step can compute from the parts; `aggregate_spatial`'s reducer must be one of
# these (on the callback's `data`) or `array_create` of several.
COMBINABLE = frozenset({"mean", "sum", "min", "max", "sd", "variance", "count", "first", "last"})
_PARTS = ("total", "present", "count", "sum", "m2", "min", "max")
# For first and last: the value and the position (row-major in the whole grid) of the first and last
# valid pixel and of the first and last pixel at all (`ignore_nodata: false`); no position: NaN.
_ORDERED = ("first", "first_at", "last", "last_at", "first_any", "first_any_at", "last_any", "last_any_at")
ORDERED_STATISTICS = frozenset({"first", "last"})


@dataclass(frozen=True)
class Statistic:
    name: str
    ignore_nodata: bool = True
    count_all: bool = False  # `count` with `condition: true`: no-data pixels count too


def combinable_statistics(reducer: Any) -> list[Statistic] | None:
    """The statistics the reducer computes, when the combine step can compute them from parts;
    None when it cannot (the planner runs such a graph as one task)."""
    graph = getattr(reducer, "graph", None)
    if graph is None:
        return None
    result = graph.nodes[graph.result_node_id]
    nodes = [result]
    if result.process_id == "array_create":
        items = result.arguments.get("data")
        if not isinstance(items, list) or not items or not all(
                isinstance(i, Mapping) and i.get("from_node") in graph.nodes for i in items):
            return None
        nodes = [graph.nodes[i["from_node"]] for i in items]
    statistics = []
    for node in nodes:
        arguments = node.arguments
        if node.process_id not in COMBINABLE or arguments.get("data") != {"from_parameter": "data"}:
            return None
        ignore_nodata = arguments.get("ignore_nodata", True)
        condition = arguments.get("condition")
        if not isinstance(ignore_nodata, bool) or condition not in (None, True):
            return None
        statistics.append(Statistic(node.process_id, ignore_nodata, condition is True))
    return statistics


class Parts:
    """The parts of every geometry (first axis) and cell of the other dimensions."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        names = _PARTS + (_ORDERED if "first" in arrays else ())
        self.arrays = {name: np.asarray(arrays[name], dtype=np.float64) for name in names}

    @property
    def ordered(self) -> bool:
        return "first" in self.arrays

    @classmethod
    def empty(cls, shape: tuple[int, ...], *, ordered: bool = False) -> Parts:
        zeros = {name: np.zeros(shape) for name in ("total", "present", "count", "sum", "m2")}
        missing = {name: np.full(shape, np.nan) for name in ("min", "max", *(_ORDERED if ordered else ()))}
        return cls({**zeros, **missing})

    def set(self, indices: Sequence[int], pixels: np.ndarray, positions: np.ndarray | None = None) -> None:
        """The parts of the geometries `indices` from their pixels, shaped (geometries, *other, pixels);
        `positions` (geometries, pixels) orders the pixels in the whole grid, for first and last."""
        # As the reducers on a cube: NaN is no-data, ±inf a number (the sum, mean and sd propagate
        # it); `count` counts the finite values only (`is_valid`).
        valid = ~np.isnan(pixels)
        present = valid.sum(axis=-1)
        values = np.where(valid, pixels, 0.0)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            total = values.sum(axis=-1)
            mean = total / present
            deviations = np.where(valid, pixels - mean[..., np.newaxis], 0.0)
            m2 = (deviations * deviations).sum(axis=-1)
        has_valid = present > 0
        self.arrays["total"][indices] = pixels.shape[-1]
        self.arrays["present"][indices] = present
        self.arrays["count"][indices] = np.isfinite(pixels).sum(axis=-1)
        self.arrays["sum"][indices] = total
        self.arrays["m2"][indices] = m2
        self.arrays["min"][indices] = np.where(has_valid, np.where(valid, pixels, np.inf).min(axis=-1), np.nan)
        self.arrays["max"][indices] = np.where(has_valid, np.where(valid, pixels, -np.inf).max(axis=-1), np.nan)
        if self.ordered and positions is not None and pixels.shape[-1]:
            self._set_ordered(indices, pixels, valid, has_valid, positions)

    def _set_ordered(self, indices: Sequence[int], pixels: np.ndarray, valid: np.ndarray, has_valid: np.ndarray,
                     positions: np.ndarray) -> None:
        at = np.broadcast_to(positions.reshape(positions.shape[0], *([1] * (pixels.ndim - 2)), -1).astype(np.float64),
                             pixels.shape)

        def pick(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            index = index[..., np.newaxis]
            return (np.take_along_axis(pixels, index, -1)[..., 0], np.take_along_axis(at, index, -1)[..., 0])

        last_index = pixels.shape[-1] - 1
        first, first_at = pick(valid.argmax(axis=-1))
        last, last_at = pick(last_index - valid[..., ::-1].argmax(axis=-1))
        first_any, first_any_at = pick(np.zeros(valid.shape[:-1], dtype=np.intp))
        last_any, last_any_at = pick(np.full(valid.shape[:-1], last_index, dtype=np.intp))
        for name, values in (("first", first), ("first_at", first_at), ("last", last), ("last_at", last_at)):
            self.arrays[name][indices] = np.where(has_valid, values, np.nan)
        for name, values in (("first_any", first_any), ("first_any_at", first_any_at), ("last_any", last_any),
                             ("last_any_at", last_any_at)):
            self.arrays[name][indices] = values

    @classmethod
    def merged(cls, tiles: Sequence[Parts]) -> Parts:
        """The parts of all tiles together (Chan et al.'s pairwise update for m2)."""
        merged = tiles[0]
        for other in tiles[1:]:
            a, b = merged.arrays, other.arrays
            present = a["present"] + b["present"]
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                delta = np.where(b["present"] > 0, b["sum"] / b["present"], 0.0) - np.where(
                    a["present"] > 0, a["sum"] / a["present"], 0.0)
                m2 = a["m2"] + b["m2"] + np.where(present > 0, delta * delta * a["present"] * b["present"] / present,
                                                  0.0)
            arrays = {"total": a["total"] + b["total"], "present": present, "count": a["count"] + b["count"],
                      "sum": a["sum"] + b["sum"], "m2": m2,
                      "min": np.fmin(a["min"], b["min"]), "max": np.fmax(a["max"], b["max"])}
            if merged.ordered and other.ordered:
                for name, earlier in (("first", True), ("last", False), ("first_any", True), ("last_any", False)):
                    mine, theirs = a[f"{name}_at"], b[f"{name}_at"]
                    with np.errstate(invalid="ignore"):
                        better = theirs < mine if earlier else theirs > mine
                    take = ~np.isnan(theirs) & (np.isnan(mine) | better)
                    arrays[name] = np.where(take, b[name], a[name])
                    arrays[f"{name}_at"] = np.where(take, theirs, mine)
            merged = cls(arrays)
        return merged

    def statistic(self, statistic: Statistic) -> np.ndarray:
        """The statistic per geometry and cell, no-data (NaN) as the single task's reducer gives it:
        for a geometry without pixels, without valid values (count: 0), or with a no-data pixel when
        the reducer does not ignore no-data."""
        total, present, count, summed, m2 = (self.arrays[n] for n in ("total", "present", "count", "sum", "m2"))
        with np.errstate(invalid="ignore", divide="ignore"):
            if statistic.name == "count":
                values = total if statistic.count_all else count
            elif statistic.name == "sum":
                values = np.where(present > 0, summed, np.nan)
            elif statistic.name == "mean":
                values = summed / present
            elif statistic.name in ("min", "max"):
                values = self.arrays[statistic.name].copy()
            elif statistic.name in ORDERED_STATISTICS:
                values = self.arrays[statistic.name if statistic.ignore_nodata else f"{statistic.name}_any"].copy()
            else:
                variance = np.where(present > 1, m2 / (present - 1), np.nan)
                values = variance if statistic.name == "variance" else np.sqrt(variance)
        values = np.where(total > 0, values, np.nan)
        if not statistic.ignore_nodata and statistic.name not in ("count", *ORDERED_STATISTICS):
            values = np.where(present == total, values, np.nan)
        return values

    def to_json(self) -> dict[str, Any]:
        return {name: _nested(array) for name, array in self.arrays.items()}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Parts:
        names = _PARTS + (_ORDERED if "first" in document else ())
        return cls({name: np.array(document[name], dtype=np.float64) for name in names})


def coords_to_json(coords: Mapping[str, xr.DataArray]) -> list[dict[str, Any]]:
    """The labels of the cube's other dimensions, to rebuild the vector cube in the combine step."""
    encoded = []
    for name, coord in coords.items():
        values = coord.values
        if np.issubdtype(values.dtype, np.datetime64):
            listed: Any = np.datetime_as_string(values).tolist()
        else:
            listed = values.tolist()
        encoded.append({"name": str(name), "dims": [str(d) for d in coord.dims], "dtype": values.dtype.str,
                        "values": listed})
    return encoded


def coords_from_json(encoded: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    for entry in encoded:
        dtype = np.dtype(entry["dtype"])
        values = np.array(entry["values"], dtype=dtype) if dtype != object else _object_array(entry["values"])
        coords[entry["name"]] = (tuple(entry["dims"]), values) if entry["dims"] else values
    return coords


def _object_array(values: Any) -> np.ndarray:
    if not isinstance(values, list):
        array = np.empty((), dtype=object)
        array[()] = values
        return array
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _nested(array: np.ndarray) -> Any:
    """Nested lists, NaN as null (JSON has no NaN)."""
    return np.where(np.isnan(array), None, array).tolist()
