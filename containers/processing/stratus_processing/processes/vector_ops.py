"""Vector data cube processes (proposals): load_geojson, load_url (GeoJSON over http(s), through the
outbound guard), filter_vector, vector_buffer, vector_reproject, vector_to_random_points and
vector_to_regular_points.

Vector cubes store their geometries in EPSG:4326 (see `stratus_processing.vector_cube`). The CRS a user
chose with `vector_reproject` is recorded in the attribute `VECTOR_CRS` (WKT, default EPSG:4326); the
processes that measure in meters (buffer, regular points) work in that CRS and, as the spec says, refuse
one whose unit is not the meter (`UnitMismatch`): reproject to a projected CRS first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry import LineString, MultiPoint, Point
from shapely.geometry.base import BaseGeometry
from stratus.errors import OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.errors import DimensionNotAvailableException
from stratus_processing.geometry import Features, GeometryError, parse_geojson, reproject_geometries
from stratus_processing.grid import WGS84
from stratus_processing.io.stac import DocumentReader, StacReadError
from stratus_processing.registry import ProcessArgs, process

VECTOR_CRS = "vector_crs"
PROPERTIES = "properties"


class UnitMismatchException(OpenEOApiException):
    status_code, code = 400, "UnitMismatch"
    message_template = ("The unit of the spatial reference system is not meters, but the given distance is in "
                        "meters: use vector_reproject to a projected CRS first.")


class CountMismatchException(OpenEOApiException):
    status_code, code = 400, "CountMismatch"
    message_template = "The total number of points is lower than the number of geometries."


class InputFormatUnsuitableException(OpenEOApiException):
    status_code, code = 400, "FormatUnsuitable"
    message_template = "Data can't be loaded with the requested input format: {reason}"


# --- loading ------------------------------------------------------------------------------------------

@process("load_geojson")
def load_geojson(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = args.get_required("data")
    properties = args.get_optional("properties", [], expected_type=list)
    return geojson_cube(args, "data", data, properties)


def geojson_cube(args: ProcessArgs, name: str, data: Any, properties: list[Any]) -> xr.DataArray:
    if not all(isinstance(p, str) for p in properties) or len(set(properties)) != len(properties):
        raise args.invalid("properties", "expected distinct property names")
    try:
        features = parse_geojson(data)
    except GeometryError as exc:
        raise args.invalid(name, str(exc)) from None
    if not properties:
        return vectors.make_vector_cube(features)
    labels, values = _property_values(features, properties)
    return vectors.make_vector_cube(features, values, dims=[PROPERTIES],
                                    coords={PROPERTIES: np.array(labels, dtype=object)})


def _property_values(features: Features, names: list[str]) -> tuple[list[Any], np.ndarray]:
    """The spec's three shapes: one scalar property (its name the label), one array property (indices
    as labels, as long as the longest array) or several scalar properties (their names as labels)."""
    if len(names) == 1 and any(isinstance(p.get(names[0]), list) for p in features.properties):
        arrays = [p.get(names[0]) if isinstance(p.get(names[0]), list) else [] for p in features.properties]
        width = max(len(a) for a in arrays)
        values = np.full((len(features), width), np.nan)
        for i, array in enumerate(arrays):
            values[i, :len(array)] = [_number(v) for v in array]
        return list(range(width)), values
    values = np.array([[_number(p.get(n)) for n in names] for p in features.properties], dtype=np.float64)
    return list(names), values.reshape(len(features), len(names))


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else np.nan


@process("load_url")
def load_url(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """GeoJSON documents only (the other formats the spec allows need a file reader behind the guard)."""
    url = args.get_required("url", expected_type=str)
    file_format = args.get_required("format", expected_type=str)
    options = args.get_optional("options", {}, expected_type=dict)
    if not url.lower().startswith(("http://", "https://")):
        raise args.invalid("url", "only http:// and https:// URLs are supported")
    if file_format.lower() != "geojson":
        raise InputFormatUnsuitableException(reason=f"load_url reads GeoJSON; '{file_format}' is not supported")
    if options:
        raise args.invalid("options", "GeoJSON has no input options")
    documents = env.catalog.documents if env.catalog is not None else DocumentReader()
    try:
        document = documents.read(url)
    except StacReadError as exc:
        raise args.invalid("url", str(exc)) from None
    return geojson_cube(args, "url", document, [])


# --- filter and transform ---------------------------------------------------------------------------

def vector_cube_argument(args: ProcessArgs, name: str) -> xr.DataArray:
    """A vector cube, or GeoJSON converted into one."""
    value = args.get_required(name)
    if vectors.is_vector_cube(value):
        return value
    if isinstance(value, dict):
        return geojson_cube(args, name, value, [])
    raise args.invalid(name, "expected a vector data cube or GeoJSON")


def vector_crs(cube: xr.DataArray) -> CRS:
    wkt = cube.attrs.get(VECTOR_CRS)
    return CRS.from_wkt(wkt) if wkt else WGS84


_RELATIONS = ["intersects", "disjoint", "equals", "touches", "crosses", "overlaps", "contains", "within"]


@process("filter_vector")
def filter_vector(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    """Keeps the candidates whose relation to the union of the base geometries holds (both in lon/lat:
    the predicates are topological, the same in any CRS up to edge densification)."""
    data = vector_cube_argument(args, "data")
    base = vector_cube_argument(args, "geometries")
    relation = args.get_enum("relation", _RELATIONS, default="intersects")
    present = [g for g in base[vectors.FEATURE_GEOMETRY].values if g is not None]
    if not present:
        raise args.invalid("geometries", "no base geometry")
    union = shapely.union_all(np.array(present, dtype=object))
    predicate = getattr(shapely, relation)
    keep = [i for i, g in enumerate(data[vectors.FEATURE_GEOMETRY].values)
            if g is not None and not g.is_empty and bool(predicate(g, union))]
    return data.isel({vectors.GEOMETRY: keep})


@process("vector_reproject")
def vector_reproject(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = vector_cube_argument(args, "data")
    projection = args.get_required("projection", expected_type=(int, str))
    dimension = args.get_optional("dimension", expected_type=str)
    if dimension is not None and dimension != vectors.GEOMETRY:
        raise DimensionNotAvailableException(dimension=dimension)
    try:
        crs = CRS.from_epsg(projection) if isinstance(projection, int) else CRS.from_user_input(projection)
    except CRSError as exc:
        raise args.invalid("projection", f"not a CRS: {exc}") from None
    result = data.copy()
    result.attrs = {**data.attrs, VECTOR_CRS: crs.to_wkt()}
    return result


def _metric_crs(cube: xr.DataArray) -> CRS:
    crs = vector_crs(cube)
    if crs.is_geographic or (crs.linear_units or "").lower() not in ("metre", "meter", "m"):
        raise UnitMismatchException()
    return crs


def _with_geometries(cube: xr.DataArray, geometries: list[BaseGeometry | None], crs: CRS) -> xr.DataArray:
    """The cube with new geometries given in `crs` (stored in lon/lat)."""
    stored = reproject_geometries(geometries, crs, WGS84)
    # GDAL hands a MultiPoint of one point back as a Point: a group stays a MultiPoint.
    stored = [MultiPoint([g]) if g is not None and g.geom_type == "Point" and o is not None
              and o.geom_type == "MultiPoint" else g for g, o in zip(stored, geometries, strict=True)]
    return cube.assign_coords({vectors.FEATURE_GEOMETRY: (vectors.GEOMETRY, _objects(stored))})


def _objects(items: list[Any]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


@process("vector_buffer")
def vector_buffer(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = vector_cube_argument(args, "geometries")
    distance = args.get_required("distance", expected_type=(int, float))
    if distance == 0:
        raise args.invalid("distance", "must not be 0")
    crs = _metric_crs(data)
    geometries = reproject_geometries(list(data[vectors.FEATURE_GEOMETRY].values), WGS84, crs)
    buffered = [None if g is None else g.buffer(distance) for g in geometries]
    return _with_geometries(data, [None if g is None or g.is_empty else g for g in buffered], crs)


# --- sampling points ----------------------------------------------------------------------------------

def _points_cube(data: xr.DataArray, samples: list[list[Point]], crs: CRS, group: bool) -> xr.DataArray:
    """Grouped: one MultiPoint per input geometry (values, properties and id kept; no point: empty).
    Otherwise one Point per sample with the properties of its geometry and no id, geometry-only."""
    if group:
        points = [MultiPoint(s) if s else None for s in samples]
        return _with_geometries(data, points, crs)
    properties = data[vectors.FEATURE_PROPERTIES].values
    flat = [(point, properties[i]) for i, points in enumerate(samples) for point in points]
    features = Features(tuple(p for p, _ in flat), tuple(dict(props) for _, props in flat),
                        tuple(None for _ in flat), crs)
    result = vectors.make_vector_cube(features)
    result.attrs = {key: value for key, value in data.attrs.items() if key == VECTOR_CRS}
    return result


@process("vector_to_regular_points")
def vector_to_regular_points(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = vector_cube_argument(args, "data")
    distance = args.get_required("distance", expected_type=(int, float))
    group = args.get_optional("group", True, expected_type=bool)
    if not distance > 0:
        raise args.invalid("distance", "must be greater than 0")
    crs = _metric_crs(data)
    geometries = reproject_geometries(list(data[vectors.FEATURE_GEOMETRY].values), WGS84, crs)
    samples = [[] if g is None or g.is_empty else _regular_points(g, distance) for g in geometries]
    return _points_cube(data, samples, crs, group)


def _regular_points(geometry: BaseGeometry, distance: float) -> list[Point]:
    parts = list(getattr(geometry, "geoms", [geometry]))
    points: list[Point] = []
    for part in parts:
        if part.geom_type == "Point":
            points.append(part)
        elif part.geom_type in ("LineString", "LinearRing"):
            line = LineString(part.coords)
            points += [line.interpolate(d) for d in np.arange(0.0, line.length + 1e-9, distance)]
        else:
            points += _grid_points(part, distance)
    return points


def _grid_points(polygon: BaseGeometry, distance: float) -> list[Point]:
    """Cell centroids of a grid of `distance` from the polygon's upper-left bound, those inside; at least
    the polygon's first coordinate."""
    west, south, east, north = polygon.bounds
    xs = west + distance / 2 + distance * np.arange(max(int(np.ceil((east - west) / distance)), 1))
    ys = north - distance / 2 - distance * np.arange(max(int(np.ceil((north - south) / distance)), 1))
    grid_x, grid_y = np.meshgrid(xs, ys)
    candidates = shapely.points(grid_x.ravel(), grid_y.ravel())
    inside = [Point(p) for p in candidates[shapely.contains(polygon, candidates)]]
    return inside or [Point(polygon.exterior.coords[0])]


@process("vector_to_random_points")
def vector_to_random_points(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data = vector_cube_argument(args, "data")
    geometry_count = args.get_optional("geometry_count", expected_type=int)
    total_count = args.get_optional("total_count", expected_type=int)
    group = args.get_optional("group", True, expected_type=bool)
    seed = args.get_optional("seed", expected_type=int)
    for name, count in (("geometry_count", geometry_count), ("total_count", total_count)):
        if count is not None and count < 1:
            raise args.invalid(name, "must be 1 or greater")
    crs = vector_crs(data)
    geometries = reproject_geometries(list(data[vectors.FEATURE_GEOMETRY].values), WGS84, crs)
    present = [i for i, g in enumerate(geometries) if g is not None and not g.is_empty]
    counts = _counts(len(present), geometry_count, total_count)
    rng = np.random.default_rng(seed)
    samples: list[list[Point]] = [[] for _ in geometries]
    for i, count in zip(present, counts, strict=True):
        samples[i] = _random_points(geometries[i], count, rng)
    return _points_cube(data, samples, crs, group)


def _counts(n: int, geometry_count: int | None, total_count: int | None) -> list[int]:
    """Points per geometry: `geometry_count` each (default 1), capped so the sum stays within
    `total_count` (spread evenly, the first geometries taking the remainder)."""
    if total_count is None:
        return [geometry_count or 1] * n
    if total_count < n:
        raise CountMismatchException()
    share, remainder = divmod(total_count, n) if n else (0, 0)
    counts = [share + (1 if i < remainder else 0) for i in range(n)]
    return [min(c, geometry_count) for c in counts] if geometry_count is not None else counts


def _random_points(geometry: BaseGeometry, count: int, rng: np.random.Generator) -> list[Point]:
    """Uniform in area (polygons), in length (lines), or drawn from the points themselves."""
    parts = list(getattr(geometry, "geoms", [geometry]))
    kinds = {p.geom_type for p in parts}
    if kinds <= {"Point"}:
        chosen = rng.choice(len(parts), size=min(count, len(parts)), replace=False)
        return [parts[int(i)] for i in sorted(chosen)]
    if kinds <= {"LineString", "LinearRing"}:
        lines = [LineString(p.coords) for p in parts]
        lengths = np.array([line.length for line in lines])
        picks = rng.choice(len(lines), size=count, p=lengths / lengths.sum())
        return [lines[int(k)].interpolate(rng.uniform(0, lines[int(k)].length)) for k in picks]
    west, south, east, north = geometry.bounds
    points: list[Point] = []
    while len(points) < count:
        batch = shapely.points(rng.uniform(west, east, 4 * count), rng.uniform(south, north, 4 * count))
        points += [Point(p) for p in batch[shapely.contains(geometry, batch)]]
    return points[:count]
