"""A dry run over the STAC items: how big a process graph's data cubes will be, before running it.

Used to refuse synchronous requests that could not finish inside API Gateway's limits, for job
estimates and for the order service's checks. Pure Python on purpose: it runs in the API Lambda, which
must not import the raster stack, so coordinates are handled with plain arithmetic (an estimate, not a
reprojection).

The items of a load come from `items_of(collection_id, search)`: own collections list theirs, remote ones
search their source for what `search` asks (its bbox, period and `properties`). A source that cannot answer
raises `ItemsUnavailable`; the load is then reported in `GraphEstimate.unknown`, not sized as empty, and each
user decides what an unknown size means. A search that stopped at its item cap returns a `FoundItems` with
the number the source matched; the load's dates are scaled up by it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from stratus.domain.load_needs import (
    LoadNeeds,
    Source,
    analyse_loads,
    geometries_region,
    intersection_of_boxes,
    union_of_boxes,
)

BYTES_PER_VALUE = 8  # the engine computes in float64
METRES_PER_DEGREE_LAT = 110_540.0
METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0


@dataclass(frozen=True)
class LoadEstimate:
    node_id: str
    collection_id: str
    width: int
    height: int
    dates: int
    bands: int

    @property
    def values(self) -> int:
        return self.width * self.height * self.dates * self.bands


@dataclass(frozen=True)
class UnknownLoad:
    """A load the dry run could not size: its collection's items could not be listed (`reason`)."""

    node_id: str
    collection_id: str
    reason: str


@dataclass(frozen=True)
class GraphEstimate:
    loads: tuple[LoadEstimate, ...]
    unknown: tuple[UnknownLoad, ...] = ()

    @property
    def complete(self) -> bool:
        """Every load was sized; else `values` is a lower bound."""
        return not self.unknown

    @property
    def values(self) -> int:
        return sum(load.values for load in self.loads)

    @property
    def cube_bytes(self) -> int:
        return self.values * BYTES_PER_VALUE


@dataclass(frozen=True)
class ItemSearch:
    """What a load needs of a collection's items: a WGS84 bbox (None: anywhere, or only known in another
    CRS), the period [start, end) and the load's `properties` conditions (openEO callbacks)."""

    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    properties: Mapping[str, Any] | None = None


class ItemsUnavailable(Exception):
    """The items of a collection could not be listed now (the source is unreachable, slow or refuses)."""


class FoundItems(list):  # type: ignore[type-arg]
    """The items a capped search returned, and how many the source said it matched (None: not said)."""

    def __init__(self, items: Iterable[Mapping[str, Any]], matched: int | None = None) -> None:
        super().__init__(items)
        self.matched = matched


ItemsOf = Callable[[str, ItemSearch], Iterable[Mapping[str, Any]]]
CollectionOf = Callable[[str], Mapping[str, Any] | None]


class DryRunCatalog(Protocol):
    """What the dry run reads: a collection's openEO metadata by id or alias, and the items a load needs."""

    def collection(self, collection_id: str) -> Mapping[str, Any] | None: ...

    def items(self, collection_id: str, search: ItemSearch) -> Iterable[Mapping[str, Any]]: ...


def estimate_graph(process_graph: Mapping[str, Any], collection_of: CollectionOf, items_of: ItemsOf,
                   parameters: Mapping[str, Any] | None = None) -> GraphEstimate:
    """Every `load_collection` node, including those inside callbacks, sized from the catalog, over
    what the graph really needs of it (`load_needs`: later filters narrow area, time and bands, as
    in the engine); `parameters` resolve the graph's `from_parameter` values where known."""
    loads = []
    unknown = []
    for graph in _walk_graphs(process_graph):
        needs = analyse_loads(graph, parameters)
        for node_id, node in graph.items():
            if node.get("process_id") != "load_collection":
                continue
            arguments = node.get("arguments") or {}
            collection_id = arguments.get("id")
            if not isinstance(collection_id, str):
                continue
            collection = collection_of(collection_id)
            if collection is None:
                continue
            need = needs.get(node_id)
            box = _narrowed_box(_bbox(arguments.get("spatial_extent")), need)
            start, end = _narrowed_interval(_interval(arguments.get("temporal_extent")), need)
            properties = arguments.get("properties")
            search = ItemSearch(bbox=box[1] if box is not None and box[0] == 4326 else None, start=start, end=end,
                                properties=properties if isinstance(properties, Mapping) else None)
            try:
                items = items_of(collection_id, search)
            except ItemsUnavailable as error:
                unknown.append(UnknownLoad(node_id, str(collection.get("id") or collection_id), str(error)))
                continue
            loads.append(_estimate_load(node_id, collection, items, arguments, need, box, (start, end)))
    return GraphEstimate(tuple(loads), tuple(unknown))


def _walk_graphs(graph: Mapping[str, Any]) -> Iterable[Mapping[str, Mapping[str, Any]]]:
    """The graph and every callback graph in it, each as its flat nodes."""
    nodes = {node_id: node for node_id, node in graph.items() if isinstance(node, Mapping)}
    yield nodes
    for node in nodes.values():
        for value in (node.get("arguments") or {}).values():
            if isinstance(value, Mapping) and isinstance(value.get("process_graph"), Mapping):
                yield from _walk_graphs(value["process_graph"])


def _estimate_load(node_id: str, collection: Mapping[str, Any], items: Iterable[Mapping[str, Any]],
                   arguments: Mapping[str, Any], needs: LoadNeeds | None,
                   box: tuple[int, tuple[float, float, float, float]] | None,
                   interval: tuple[datetime | None, datetime | None]) -> LoadEstimate:
    dimensions = collection.get("cube:dimensions") or {}
    requested_bands = arguments.get("bands")
    finest = _finest_gsd(collection, requested_bands if isinstance(requested_bands, list) else None)
    step_x = float((dimensions.get("x") or {}).get("step") or finest or 10.0)
    step_y = float((dimensions.get("y") or {}).get("step") or step_x)
    band_values = (dimensions.get("bands") or {}).get("values") or []
    bands = len(requested_bands) if isinstance(requested_bands, list) and requested_bands else max(len(band_values), 1)
    kept = needs.bands() if needs is not None else None
    if kept and set(kept) <= set(requested_bands if isinstance(requested_bands, list) and requested_bands
                                 else band_values):
        bands = min(bands, len(kept))

    start, end = interval
    days = set()
    footprint = (0.0, 0.0)
    items = items if isinstance(items, list) else list(items)
    for item in items:
        when = _item_time(item)
        if when is None or (start and when < start) or (end and when >= end):
            continue
        if box:
            item_box = _item_box_in(item, box[0])
            if item_box and not _intersects(box[1], item_box):
                continue
        elif item.get("bbox"):
            footprint = max(footprint, _size_in_metres(4326, tuple(item["bbox"][:4])))
        days.add(when.date())
    if box:
        footprint = _size_in_metres(box[0], box[1])
    width = max(1, math.ceil(footprint[0] / step_x)) if footprint[0] else 0
    height = max(1, math.ceil(footprint[1] / step_y)) if footprint[1] else 0
    return LoadEstimate(node_id, str(collection.get("id")), width, height, _dates(days, items, start, end), bands)


def _dates(days: set[Any], items: list[Mapping[str, Any]], start: datetime | None, end: datetime | None) -> int:
    """The distinct dates seen; when the search stopped at its cap, scaled by what the source matched
    (dates in the same proportion as items), at most one a day of the period."""
    matched = getattr(items, "matched", None)
    if not days or not isinstance(matched, int) or matched <= len(items):
        return len(days)
    scaled = math.ceil(len(days) * matched / len(items))
    if start is not None and end is not None:
        scaled = min(scaled, max(len(days), math.ceil((end - start).total_seconds() / 86_400)))
    return scaled


def _finest_gsd(collection: Mapping[str, Any], bands: list[Any] | None) -> float | None:
    """The finest ground sample distance of the loaded bands (all when None), from the `eo:bands`
    summary: remote collections' x/y dimensions claim no step (each item has its own grid)."""
    described = (collection.get("summaries") or {}).get("eo:bands") or []
    gsds = [float(band["gsd"]) for band in described if isinstance(band, Mapping)
            and isinstance(band.get("gsd"), (int, float)) and band["gsd"] > 0
            and (not bands or band.get("name") in bands)]
    return min(gsds) if gsds else None


def extent_box(extent: Any) -> tuple[int, tuple[float, float, float, float]] | None:
    """(EPSG code, (west, south, east, north)) of a `load_collection` spatial extent; None when open."""
    return _bbox(extent)


def _bbox(extent: Any) -> tuple[int, tuple[float, float, float, float]] | None:
    """The load's own extent: a bounding box, or the bounding box of GeoJSON polygons."""
    if isinstance(extent, Mapping) and "type" in extent:
        region = geometries_region(extent, Source("", "load_collection", "spatial_extent"))
        return (region.crs, region.bounds) if region is not None and isinstance(region.crs, int) else None
    if not isinstance(extent, Mapping) or not all(k in extent for k in ("west", "south", "east", "north")):
        return None  # null: the whole footprint of the matching items counts
    crs = extent.get("crs") or 4326
    try:
        epsg = int(str(crs).upper().removeprefix("EPSG:"))
    except ValueError:
        epsg = 4326
    return epsg, (float(extent["west"]), float(extent["south"]), float(extent["east"]), float(extent["north"]))


def _narrowed_box(own: tuple[int, tuple[float, float, float, float]] | None,
                  needs: LoadNeeds | None) -> tuple[int, tuple[float, float, float, float]] | None:
    """The load's box cut to the regions the graph needs, when they are in one CRS (no reprojection here)."""
    regions = needs.regions if needs is not None else None
    if not regions or len({r.crs for r in regions}) != 1 or not isinstance(regions[0].crs, int):
        return own
    needed = (regions[0].crs, union_of_boxes(r.bounds for r in regions))
    if own is None:
        return needed
    if own[0] != needed[0]:
        return own
    inside = intersection_of_boxes(own[1], needed[1])
    return (own[0], inside) if inside is not None else own


def _narrowed_interval(own: tuple[datetime | None, datetime | None],
                       needs: LoadNeeds | None) -> tuple[datetime | None, datetime | None]:
    needed = needs.interval() if needs is not None else None
    if needed is None:
        return own
    start = needed[0] if own[0] is None else (own[0] if needed[0] is None else max(own[0], needed[0]))
    end = needed[1] if own[1] is None else (own[1] if needed[1] is None else min(own[1], needed[1]))
    return own if start is not None and end is not None and end <= start else (start, end)


def _interval(extent: Any) -> tuple[datetime | None, datetime | None]:
    if not isinstance(extent, list) or len(extent) != 2:
        return None, None
    return _parse_time(extent[0]), _parse_time(extent[1])


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _item_time(item: Mapping[str, Any]) -> datetime | None:
    properties = item.get("properties") or {}
    return _parse_time(properties.get("datetime") or properties.get("start_datetime"))


def _item_box_in(item: Mapping[str, Any], epsg: int) -> tuple[float, float, float, float] | None:
    """The item's footprint in the requested CRS when the item knows it (WGS84 bbox or its native one);
    None when it can't be told without a reprojection (then the item counts, to stay on the safe side)."""
    properties = item.get("properties") or {}
    if epsg != 4326 and properties.get("proj:epsg") == epsg:
        for asset in (item.get("assets") or {}).values():
            transform, shape = asset.get("proj:transform"), asset.get("proj:shape")
            if transform and shape:
                a, _, c, _, e, f = transform[:6]
                return c, f + e * shape[0], c + a * shape[1], f
    if epsg == 4326 and item.get("bbox"):
        return tuple(item["bbox"][:4])  # type: ignore[return-value]
    return None


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _size_in_metres(epsg: int, box: tuple[float, float, float, float]) -> tuple[float, float]:
    west, south, east, north = box
    if epsg == 4326:
        latitude = math.radians((south + north) / 2)
        return ((east - west) * METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(latitude),
                (north - south) * METRES_PER_DEGREE_LAT)
    return east - west, north - south  # projected CRSs of EO data are in metres


@dataclass(frozen=True)
class CostModel:
    """Linear in the GB of cube values a job reads; constants live in `stratus.resources`."""

    cost_per_gb: float  # plan currency per GB
    seconds_per_gb: float  # seconds of processing per GB
    min_duration_s: int  # seconds; fixed start-up costs of a run


@dataclass(frozen=True)
class JobEstimate:
    costs: float
    duration_s: int
    size_bytes: int


def estimate_job(graph: GraphEstimate, model: CostModel) -> JobEstimate:
    """openEO `GET /jobs/{job_id}/estimate`: an upper bound from the dry run, no data is read."""
    gigabytes = graph.cube_bytes / 1e9
    return JobEstimate(
        costs=round(gigabytes * model.cost_per_gb, 4),
        duration_s=max(model.min_duration_s, math.ceil(gigabytes * model.seconds_per_gb)),
        size_bytes=graph.cube_bytes,
    )
