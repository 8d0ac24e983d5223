"""What an order's parameters must satisfy, checked in the API function before a job exists.

Pure Python on purpose (no numpy, shapely or rasterio): it runs in the API Lambda, which must
cold-start fast. Three kinds of checks, with different outcomes:

- `check_parameters`: the values against the service's parameter schemas (a small JSON Schema subset,
  plus the openEO subtypes `date`, `date-time` and `geojson`) -> the request is refused at once
  (400 InvalidRequest), no order is made;
- `geometry_problems` and `area_km2`: the GeoJSON of `geojson` parameters is structurally an accepted
  type but can never be processed (unclosed or degenerate rings, coordinates that are not lon/lat,
  self-intersections) or covers too large an area -> the order is accepted and ends INVALID;
- `bind_parameters`: the service's process graph with the order's values in place of
  `{"from_parameter": name}` references.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

EARTH_RADIUS_M = 6_378_137.0  # WGS 84 semi-major axis, as in geojson-area / turf
MAX_VERTICES_FOR_SELF_INTERSECTION = 5_000  # above this the O(n²) simplicity check is skipped per ring
# Graph references a customer must not smuggle in through a parameter value.
_GRAPH_KEYS = ("from_node", "from_parameter", "process_graph")
GEOJSON_SUBTYPE = "geojson"

_TYPE_CHECKS = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- parameter values against their schemas --------------------------------------------------------

def check_parameters(parameters: list[Mapping[str, Any]], values: Any) -> list[str]:
    """Every problem of `values` (the order's `parameters` object) for the service's parameter
    declarations; an empty list when they are acceptable."""
    if not isinstance(values, Mapping):
        return ["`parameters` must be an object"]
    declared = {p["name"]: p for p in parameters if isinstance(p, Mapping) and isinstance(p.get("name"), str)}
    problems = [f"unknown parameter '{name}' (parameters: {', '.join(declared) or 'none'})"
                for name in values if name not in declared]
    for name, parameter in declared.items():
        if name not in values:
            if not parameter.get("optional") and "default" not in parameter:
                problems.append(f"parameter '{name}' is required")
            continue
        value = values[name]
        if _contains_graph_reference(value):
            problems.append(f"parameter '{name}' must be a plain value, without "
                            f"{', '.join(_GRAPH_KEYS)}")
            continue
        problems += schema_problems(parameter.get("schema"), value, name)
    return problems


def schema_problems(schema: Any, value: Any, where: str) -> list[str]:
    """A value against a schema: `type`, `enum`, `const`, `minimum`/`maximum`, `minLength`/`maxLength`,
    `pattern`, `minItems`/`maxItems`, `items`, `required`, `properties`, `anyOf`/`oneOf` (and a list of
    schemas, as openEO writes alternatives), `format`/`subtype` `date` and `date-time`."""
    if isinstance(schema, list) or (isinstance(schema, Mapping) and ("anyOf" in schema or "oneOf" in schema)):
        alternatives = schema if isinstance(schema, list) else (schema.get("anyOf") or schema.get("oneOf"))
        results = [schema_problems(s, value, where) for s in alternatives]
        if any(not r for r in results):
            return []
        return min(results, key=len) if len(results) == 1 else \
            [f"'{where}' matches none of the allowed forms ({'; '.join(r[0] for r in results if r)})"]
    if not isinstance(schema, Mapping):
        return []
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(_TYPE_CHECKS.get(t, lambda v: True)(value) for t in types):
            return [f"'{where}' must be of type {' or '.join(types)}, got {_json_type(value)}"]
    problems: list[str] = []
    if "const" in schema and value != schema["const"]:
        problems.append(f"'{where}' must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"'{where}' must be one of {', '.join(repr(v) for v in schema['enum'])}")
    if _TYPE_CHECKS["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"'{where}' must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"'{where}' must be at most {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"'{where}' must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"'{where}' must have at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"'{where}' must match {schema['pattern']}")
        kind = schema.get("subtype") or schema.get("format")
        if kind == "date" and parse_date(value) is None:
            problems.append(f"'{where}' must be a date (YYYY-MM-DD), got {value!r}")
        if kind == "date-time" and parse_datetime(value) is None:
            problems.append(f"'{where}' must be an RFC 3339 date-time, got {value!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"'{where}' must have at least {schema['minItems']} item(s)")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"'{where}' must have at most {schema['maxItems']} item(s)")
        if "items" in schema:
            for index, item in enumerate(value):
                problems += schema_problems(schema["items"], item, f"{where}[{index}]")
    if isinstance(value, Mapping):
        for key in schema.get("required") or []:
            if key not in value:
                problems.append(f"'{where}' lacks '{key}'")
        for key, subschema in (schema.get("properties") or {}).items():
            if key in value:
                problems += schema_problems(subschema, value[key], f"{where}.{key}")
    return problems


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPE_CHECKS[name](value):
            return name
    return type(value).__name__


def _contains_graph_reference(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(key in value for key in _GRAPH_KEYS) or any(_contains_graph_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_graph_reference(v) for v in value)
    return False


def geojson_parameters(parameters: list[Mapping[str, Any]]) -> list[str]:
    """Names of the parameters whose schema (or one of its alternatives) has subtype `geojson`."""
    def is_geojson(schema: Any) -> bool:
        if isinstance(schema, list):
            return any(is_geojson(s) for s in schema)
        if isinstance(schema, Mapping):
            return schema.get("subtype") == GEOJSON_SUBTYPE or any(
                is_geojson(s) for s in (schema.get("anyOf") or schema.get("oneOf") or []))
        return False
    return [p["name"] for p in parameters if isinstance(p, Mapping) and is_geojson(p.get("schema"))]


# --- binding ----------------------------------------------------------------------------------------

def bind_parameters(process_graph: Mapping[str, Any], parameters: list[Mapping[str, Any]],
                    values: Mapping[str, Any]) -> dict[str, Any]:
    """The graph with `{"from_parameter": name}` replaced by the order's value (or the parameter's
    `default`; `null` for an optional one without default) in the arguments of the top-level nodes,
    at any depth of nested objects and arrays, but not inside callbacks (`{"process_graph": ...}`),
    whose `from_parameter` references name the callback's own parameters (`data`, `x`, `y`...)."""
    bound_values: dict[str, Any] = {}
    for parameter in parameters:
        name = parameter.get("name") if isinstance(parameter, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in values:
            bound_values[name] = values[name]
        elif "default" in parameter:
            bound_values[name] = parameter["default"]
        elif parameter.get("optional"):
            bound_values[name] = None

    def bind(value: Any) -> Any:
        if isinstance(value, Mapping):
            if isinstance(value.get("process_graph"), Mapping):
                return value  # a callback: its own scope
            if set(value) == {"from_parameter"} and value["from_parameter"] in bound_values:
                return bound_values[value["from_parameter"]]
            return {key: bind(item) for key, item in value.items()}
        if isinstance(value, list):
            return [bind(item) for item in value]
        return value

    return {node_id: {**node, "arguments": bind(node.get("arguments") or {})} if isinstance(node, Mapping) else node
            for node_id, node in process_graph.items()}


# --- GeoJSON geometry validity and area --------------------------------------------------------------

def polygons_of(geojson: Any) -> list[list[list[Any]]]:
    """The polygons (lists of rings) of a Polygon, MultiPolygon, Feature, FeatureCollection or
    GeometryCollection; other geometry types contribute none (the schema check refuses them)."""
    if not isinstance(geojson, Mapping):
        return []
    kind = geojson.get("type")
    if kind == "Polygon":
        return [geojson.get("coordinates")]
    if kind == "MultiPolygon":
        coordinates = geojson.get("coordinates")
        return list(coordinates) if isinstance(coordinates, list) else [coordinates]
    if kind == "Feature":
        return polygons_of(geojson.get("geometry"))
    if kind == "FeatureCollection":
        return [p for feature in geojson.get("features") or [] for p in polygons_of(feature)]
    if kind == "GeometryCollection":
        return [p for geometry in geojson.get("geometries") or [] for p in polygons_of(geometry)]
    return []


def geometry_problems(geojson: Any) -> list[str]:
    """Why the polygons of a GeoJSON object can never be processed; empty when they look valid.

    Checked: coordinates are arrays of [longitude, latitude] numbers within WGS 84's range (RFC 7946),
    every ring has at least four positions and is closed, encloses an area, and (up to
    `MAX_VERTICES_FOR_SELF_INTERSECTION` vertices) does not cross itself."""
    polygons = polygons_of(geojson)
    if not polygons:
        return ["the GeoJSON holds no Polygon or MultiPolygon"]
    problems: list[str] = []
    for p_index, polygon in enumerate(polygons):
        label = f"polygon {p_index + 1}" if len(polygons) > 1 else "the polygon"
        if not isinstance(polygon, list) or not polygon:
            problems.append(f"{label} has no rings")
            continue
        for r_index, ring in enumerate(polygon):
            where = f"{label}, {'exterior ring' if r_index == 0 else f'hole {r_index}'}"
            problems += _ring_problems(ring, where)
    return problems


def _ring_problems(ring: Any, where: str) -> list[str]:
    if not isinstance(ring, list) or not all(_is_position(p) for p in ring):
        return [f"{where}: coordinates must be [longitude, latitude] pairs of numbers"]
    out_of_range = [p for p in ring if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)]
    if out_of_range:
        return [f"{where}: {list(out_of_range[0][:2])} is not a longitude/latitude in WGS 84 "
                f"(GeoJSON coordinates are [longitude, latitude] in degrees)"]
    if len(ring) < 4:
        return [f"{where}: a ring needs at least 4 positions, got {len(ring)}"]
    if list(ring[0][:2]) != list(ring[-1][:2]):
        return [f"{where}: the ring is not closed (its first and last positions differ)"]
    points = _without_repeats([(float(p[0]), float(p[1])) for p in ring[:-1]])
    if len(points) < 3:
        return [f"{where}: the ring has fewer than 3 distinct positions"]
    if all(_orientation(points[0], points[1], p) == 0 for p in points[2:]):
        return [f"{where}: the ring encloses no area (its positions lie on one line)"]
    if len(points) <= MAX_VERTICES_FOR_SELF_INTERSECTION and _self_intersects(points):
        return [f"{where}: the ring crosses itself"]
    return []


def _is_position(value: Any) -> bool:
    return isinstance(value, list) and len(value) in (2, 3) and all(
        isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in value)


def _without_repeats(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    kept: list[tuple[float, float]] = []
    for point in points:
        if not kept or kept[-1] != point:
            kept.append(point)
    while len(kept) > 1 and kept[0] == kept[-1]:
        kept.pop()
    return kept


def _self_intersects(points: list[tuple[float, float]]) -> bool:
    """Whether two edges of the closed ring meet other than at the vertex adjacent edges share."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                # neighbours share a vertex; they only conflict if they fold back onto each other
                if _collinear_overlap(edges[i], edges[j]):
                    return True
                continue
            if _segments_touch(edges[i], edges[j]):
                return True
    return False


def _orientation(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_touch(s: tuple, t: tuple) -> bool:
    (a, b), (c, d) = s, t
    o1, o2, o3, o4 = _orientation(a, b, c), _orientation(a, b, d), _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    return (o1 == 0 and _on_segment(a, b, c)) or (o2 == 0 and _on_segment(a, b, d)) \
        or (o3 == 0 and _on_segment(c, d, a)) or (o4 == 0 and _on_segment(c, d, b))


def _collinear_overlap(s: tuple, t: tuple) -> bool:
    """Two edges sharing a vertex that run back along each other (a spike of zero width)."""
    (a, b), (c, d) = s, t
    shared = next((p for p in (a, b) if p in (c, d)), None)
    if shared is None:
        return False
    other_s = b if shared == a else a
    other_t = d if shared == c else c
    if _orientation(shared, other_s, other_t) != 0:
        return False
    # collinear: overlapping when both other ends lie on the same side of the shared vertex
    return (other_s[0] - shared[0]) * (other_t[0] - shared[0]) + (other_s[1] - shared[1]) * (other_t[1] - shared[1]) > 0


def area_km2(geojson: Any) -> float:
    """The area of the polygons on the sphere, in km² (exterior rings minus holes; overlaps between
    polygons count twice, an upper bound, which is what a size limit needs). Assumes lon/lat rings that
    `geometry_problems` accepted."""
    total = 0.0
    for polygon in polygons_of(geojson):
        rings = [ring for ring in polygon if isinstance(ring, list) and len(ring) >= 4]
        if not rings:
            continue
        area = abs(ring_area_m2(rings[0])) - sum(abs(ring_area_m2(hole)) for hole in rings[1:])
        total += max(area, 0.0)
    return total / 1e6


def ring_area_m2(ring: Iterable[Any]) -> float:
    """Signed spherical area of a lon/lat ring in m² (Chamberlain & Duquette, "Some algorithms for
    polygons on a sphere", JPL 2007; the formula of geojson-area and turf.js)."""
    points = [(math.radians(p[0]), math.radians(p[1])) for p in ring]
    if len(points) < 3:
        return 0.0
    total = 0.0
    n = len(points)
    for i in range(n):
        lon1, lat1 = points[i]
        lon2, lat2 = points[(i + 1) % n]
        total += (lon2 - lon1) * (2 + math.sin(lat1) + math.sin(lat2))
    return total * EARTH_RADIUS_M ** 2 / 2


def bbox_of(geojson: Any) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of all polygon positions, None without any."""
    xs, ys = [], []
    for polygon in polygons_of(geojson):
        for ring in polygon or []:
            for position in ring or []:
                if _is_position(position):
                    xs.append(float(position[0]))
                    ys.append(float(position[1]))
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)
