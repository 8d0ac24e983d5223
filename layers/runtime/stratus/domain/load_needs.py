"""What each load node of a process graph really needs: the area, time span and bands that the
processes downstream of it keep (openeo-python-driver calls these the "source constraints" of its
dry run). Pure Python, so the API's dry run (`estimate`) and the engine narrow loads the same way.

For every path from a load node to an end of the graph, the first `filter_bbox`, `filter_spatial`,
`aggregate_spatial` or `mask_polygon` (area), `filter_temporal` (time) and `filter_bands` (bands)
the cube reaches as its `data` says what that path needs, provided every process before it on the
path works pixel by pixel along that dimension (a kernel before a `filter_bbox` needs pixels
outside the box; a `rename_labels` before a `filter_bands` changes the names). A path that reaches
its end without such a filter needs everything, so the load is narrowed only when every path is;
where paths need different areas, times or bands the load gets their union.

Only `from_parameter` values given to the analysis are resolved; a filter whose extent comes from
another node (e.g. a vector cube) does not narrow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

LOAD_PROCESSES = frozenset({"load_collection", "load_stac"})
DEFAULT_CRS = 4326

# Processes whose result at a pixel depends on that pixel alone in x and y (as in the engine's
# tiling allow-list), so a later spatial filter needs no more of the load than its area.
_ELEMENTWISE = frozenset({
    "absolute", "add", "arccos", "arcosh", "arcsin", "arctan", "arctan2", "arsinh", "artanh", "ceil", "clip",
    "cos", "cosh", "divide", "exp", "floor", "int", "linear_scale_range", "ln", "log", "mod", "multiply", "power",
    "round", "sgn", "sin", "sinh", "sqrt", "subtract", "tan", "tanh", "and", "or", "xor", "not", "if", "between",
    "eq", "neq", "gt", "gte", "lt", "lte", "is_infinite", "is_nan", "is_nodata", "is_valid",
})
_PASS_THROUGH = frozenset({"apply", "mask", "filter_bbox", "filter_spatial", "filter_temporal", "filter_bands",
                           "filter_labels", "mask_polygon"})
_ALONG_TIME = frozenset({"aggregate_temporal", "aggregate_temporal_period", "anomaly", "climatological_normal",
                         "resample_cube_temporal"})
_SPATIALLY_LOCAL = _ELEMENTWISE | _PASS_THROUGH | _ALONG_TIME | {
    "ndvi", "merge_cubes", "rename_labels", "rename_dimension", "add_dimension", "drop_dimension",
    "reduce_dimension", "apply_dimension"}
_TEMPORALLY_LOCAL = _ELEMENTWISE | _PASS_THROUGH | {
    "ndvi", "merge_cubes", "rename_labels", "rename_dimension", "add_dimension", "drop_dimension",
    "reduce_dimension", "apply_dimension", "resample_spatial", "resample_cube_spatial", "apply_kernel",
    "aggregate_spatial"}
# Band names survive these unchanged (no band computed, renamed or merged in).
_BANDS_KEPT = _ELEMENTWISE | _PASS_THROUGH | _ALONG_TIME | {
    "reduce_dimension", "apply_dimension", "resample_spatial", "resample_cube_spatial"}
# Processes whose result is an array: as a reducer's result, several statistics that become bands.
_ARRAY_RESULTS = frozenset({"array_create", "array_concat", "extrema", "quantiles"})
# Arguments naming the dimension a process works along.
_DIMENSION_ARGUMENTS = {
    "reduce_dimension": ("dimension",), "apply_dimension": ("dimension", "target_dimension"),
    "filter_labels": ("dimension",), "rename_labels": ("dimension",), "rename_dimension": ("source", "target"),
    "add_dimension": ("name",), "drop_dimension": ("name",), "aggregate_temporal": ("dimension",),
    "aggregate_temporal_period": ("dimension",), "resample_cube_temporal": ("dimension",),
}

SPATIAL_FILTERS = {"filter_bbox": "extent", "filter_spatial": "geometries", "aggregate_spatial": "geometries",
                   "mask_polygon": "mask"}
TEMPORAL_FILTERS = {"filter_temporal": "extent"}
BAND_FILTERS = {"filter_bands": "bands"}


@dataclass(frozen=True)
class Source:
    """Where a need comes from: the filter node and its argument."""

    node_id: str
    process_id: str
    parameter: str

    def describe(self) -> str:
        return f"{self.process_id} '{self.node_id}' ({self.parameter})"


@dataclass(frozen=True)
class Region:
    """A bounding box (west, south, east, north) in `crs`: an EPSG code or the CRS text given."""

    west: float
    south: float
    east: float
    north: float
    crs: int | str
    source: Source

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.west, self.south, self.east, self.north


@dataclass(frozen=True)
class Interval:
    """[start, end) in UTC, either side open when None."""

    start: datetime | None
    end: datetime | None
    source: Source


@dataclass(frozen=True)
class BandSelection:
    bands: tuple[str, ...]
    source: Source


@dataclass(frozen=True)
class LoadNeeds:
    """What the graph keeps of one load; None where some path keeps everything."""

    regions: tuple[Region, ...] | None = None
    intervals: tuple[Interval, ...] | None = None
    band_selections: tuple[BandSelection, ...] | None = None

    @property
    def narrowed(self) -> bool:
        return any(v is not None for v in (self.regions, self.intervals, self.band_selections))

    def interval(self) -> tuple[datetime | None, datetime | None] | None:
        """The union of the intervals (open wherever one of them is), or None when not narrowed."""
        if self.intervals is None:
            return None
        starts = [i.start for i in self.intervals]
        ends = [i.end for i in self.intervals]
        return (None if None in starts else min(starts),  # type: ignore[type-var]
                None if None in ends else max(ends))  # type: ignore[type-var]

    def bands(self) -> tuple[str, ...] | None:
        """The union of the selected band names, in order of first mention."""
        if self.band_selections is None:
            return None
        return tuple(dict.fromkeys(b for s in self.band_selections for b in s.bands))

    def sources(self) -> dict[str, tuple[Source, ...]]:
        """The filters each narrowed need comes from, by kind ("area", "time", "bands")."""
        found = {"area": self.regions, "time": self.intervals, "bands": self.band_selections}
        return {kind: tuple(dict.fromkeys(c.source for c in needs)) for kind, needs in found.items() if needs}


def analyse_loads(flat_graph: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> dict[str, LoadNeeds]:
    """The needs of every load node of `flat_graph` (not of loads inside its callbacks: analyse
    those graphs on their own); `parameters`: values of the graph's parameters, to resolve
    `from_parameter` in filter arguments."""
    graph = {str(k): v for k, v in flat_graph.items() if isinstance(v, Mapping)}
    analysis = _Analysis(graph, dict(parameters or {}))
    return {node_id: analysis.needs(node_id) for node_id, node in graph.items()
            if node.get("process_id") in LOAD_PROCESSES}


_ALL = object()  # a path that keeps the whole dimension


class _Analysis:
    def __init__(self, graph: Mapping[str, Mapping[str, Any]], parameters: Mapping[str, Any]) -> None:
        self._graph = graph
        self._parameters = parameters
        self._consumers: dict[str, list[tuple[str, str]]] = {node_id: [] for node_id in graph}
        for node_id, node in graph.items():
            for name, value in (node.get("arguments") or {}).items():
                for referenced in _references(value):
                    if referenced in self._consumers:
                        self._consumers[referenced].append((node_id, name))
        self._memo: dict[tuple[str, str], Any] = {}

    def needs(self, load_id: str) -> LoadNeeds:
        found = {kind: self._first_filters(load_id, kind, frozenset()) for kind in ("area", "time", "bands")}
        return LoadNeeds(*(None if found[kind] is _ALL else tuple(dict.fromkeys(found[kind]))
                           for kind in ("area", "time", "bands")))

    def _first_filters(self, node_id: str, kind: str, visiting: frozenset[str]) -> Any:
        """The needs of `kind` of the paths from `node_id`'s result on: a list, or _ALL."""
        key = (node_id, kind)
        if key in self._memo:
            return self._memo[key]
        consumers = self._consumers.get(node_id) or []
        found: list[Any] = []
        result: Any = found
        if not consumers or node_id in visiting:
            result = _ALL
        for consumer_id, argument in consumers:
            if result is _ALL:
                break
            need = self._filter_need(consumer_id, argument, kind)
            if need is not None:
                found.append(need)
            elif not self._keeps(consumer_id, argument, kind):
                result = _ALL
            else:
                downstream = self._first_filters(consumer_id, kind, visiting | {node_id})
                if downstream is _ALL:
                    result = _ALL
                else:
                    found.extend(downstream)
        self._memo[key] = result
        return result

    def _filter_need(self, node_id: str, argument: str, kind: str) -> Any:
        """What a filter keeps when the cube is its `data`, or None when it isn't one (or its
        argument can't be known before running)."""
        node = self._graph[node_id]
        process_id = node.get("process_id")
        filters = {"area": SPATIAL_FILTERS, "time": TEMPORAL_FILTERS, "bands": BAND_FILTERS}[kind]
        if argument != "data" or process_id not in filters or node.get("namespace") not in (None, "backend"):
            return None
        arguments = node.get("arguments") or {}
        parameter = filters[process_id]
        source = Source(node_id, str(process_id), parameter)
        try:
            value = self._resolve(arguments.get(parameter))
        except LookupError:
            return None
        if kind == "area":
            return region_of(value, source) if process_id == "filter_bbox" else geometries_region(value, source)
        if kind == "time":
            if arguments.get("dimension") not in (None, "t"):
                return None
            return interval_of(value, source)
        if arguments.get("wavelengths") is not None or not isinstance(value, list) or not value \
                or not all(isinstance(b, str) for b in value):
            return None
        return BandSelection(tuple(value), source)

    def _keeps(self, node_id: str, argument: str, kind: str) -> bool:
        """Whether the node passes the dimension `kind` through pixel by pixel (label by label)."""
        node = self._graph[node_id]
        process_id = node.get("process_id")
        if node.get("namespace") not in (None, "backend"):
            return False
        allowed = {"area": _SPATIALLY_LOCAL, "time": _TEMPORALLY_LOCAL, "bands": _BANDS_KEPT}[kind]
        if process_id not in allowed:
            return False
        touched = {"area": ("x", "y"), "time": ("t",), "bands": ("bands",)}[kind]
        arguments = node.get("arguments") or {}
        for name in _DIMENSION_ARGUMENTS.get(str(process_id), ()):
            dimension = arguments.get(name)
            if dimension is not None and (not isinstance(dimension, str) or dimension in touched):
                return False
        if kind == "bands" and process_id == "reduce_dimension" and _returns_array(arguments.get("reducer")):
            return False  # several statistics per cell become bands named <band>_<statistic>
        return True

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            if "from_parameter" in value:
                if value["from_parameter"] not in self._parameters:
                    raise LookupError(value["from_parameter"])
                return self._resolve(self._parameters[value["from_parameter"]])
            if "from_node" in value or "process_graph" in value:
                raise LookupError("computed")
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        if isinstance(value.get("from_node"), str):
            yield value["from_node"]
        elif "process_graph" not in value:
            for item in value.values():
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


# --- values -----------------------------------------------------------------------------------

def region_of(extent: Any, source: Source) -> Region | None:
    """An openEO bounding box (west, south, east, north, crs) as a Region; None if malformed."""
    if not isinstance(extent, Mapping):
        return None
    try:
        west, south, east, north = (float(extent[k]) for k in ("west", "south", "east", "north"))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (west, south, east, north)) or west >= east or south >= north:
        return None
    crs = extent.get("crs")
    return Region(west, south, east, north, _crs_value(crs) if crs is not None else DEFAULT_CRS, source)


def geometries_region(geojson: Any, source: Source) -> Region | None:
    """The bounding box of GeoJSON geometries (in their `crs` member's CRS, else WGS84)."""
    if not isinstance(geojson, Mapping):
        return None
    points = list(_points(geojson))
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if min(xs) >= max(xs) or min(ys) >= max(ys):
        return None  # points or lines along an axis: no area to narrow to
    return Region(min(xs), min(ys), max(xs), max(ys), _geojson_crs(geojson), source)


def _points(geojson: Mapping[str, Any]) -> Iterator[tuple[float, float]]:
    kind = geojson.get("type")
    if kind == "FeatureCollection":
        for feature in geojson.get("features") or []:
            if isinstance(feature, Mapping):
                yield from _points(feature)
    elif kind == "Feature":
        if isinstance(geojson.get("geometry"), Mapping):
            yield from _points(geojson["geometry"])
    elif kind == "GeometryCollection":
        for geometry in geojson.get("geometries") or []:
            if isinstance(geometry, Mapping):
                yield from _points(geometry)
    else:
        yield from _coordinates(geojson.get("coordinates"))


def _coordinates(value: Any) -> Iterator[tuple[float, float]]:
    if not isinstance(value, (list, tuple)):
        return
    if len(value) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2]):
        yield float(value[0]), float(value[1])
    else:
        for item in value:
            yield from _coordinates(item)


def _geojson_crs(geojson: Mapping[str, Any]) -> int | str:
    crs = geojson.get("crs")
    if isinstance(crs, Mapping) and isinstance(crs.get("properties"), Mapping) and crs["properties"].get("name"):
        return _crs_value(crs["properties"]["name"])
    return DEFAULT_CRS


def _crs_value(crs: Any) -> int | str:
    if isinstance(crs, int) and not isinstance(crs, bool):
        return crs
    text = str(crs).strip()
    upper = text.upper()
    for prefix in ("EPSG:", "URN:OGC:DEF:CRS:EPSG::"):
        if upper.startswith(prefix) and upper[len(prefix):].isdigit():
            return int(upper[len(prefix):])
    return int(text) if text.isdigit() else text


def interval_of(extent: Any, source: Source) -> Interval | None:
    """An openEO temporal interval [start, end] as an Interval; None if malformed or empty."""
    if not isinstance(extent, list) or len(extent) != 2 or extent == [None, None]:
        return None
    try:
        start, end = (parse_instant(v) if v is not None else None for v in extent)
    except ValueError:
        return None
    if start is not None and end is not None and end <= start:
        return None
    return Interval(start, end, source)


def parse_instant(value: Any) -> datetime:
    """An RFC 3339 date or date-time as an aware UTC datetime (dates at midnight)."""
    if not isinstance(value, str):
        raise ValueError(f"not a date or date-time: {value!r}")
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def union_of_boxes(boxes: Iterable[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def intersection_of_boxes(a: tuple[float, float, float, float],
                          b: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    west, south, east, north = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (west, south, east, north) if west < east and south < north else None


def describe_sources(sources: Iterable[Source]) -> str:
    return " and ".join(source.describe() for source in sources)


def _returns_array(callback: Any) -> bool:
    graph = callback.get("process_graph") if isinstance(callback, Mapping) else None
    if not isinstance(graph, Mapping):
        return False
    return any(isinstance(node, Mapping) and node.get("result") and node.get("process_id") in _ARRAY_RESULTS
               for node in graph.values())
