"""Assembles a data cube from STAC items: one time step per acquisition day, one read per item and
band, each onto the same target grid; no-data as NaN, scale/offset applied when asked.

Loading is planned once (`plan_load`: which items, bands, time steps, and the full target grid)
and then executed for the whole grid or for any window of it (`load_cube(plan, reader, grid=tile)`),
so tiled execution reads exactly the pixels of each tile, and only from the items whose footprint
reaches the tile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing import precision
from stratus_processing.geometry import covered_pixels
from stratus_processing.grid import WGS84, Grid, transform_bounds
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import BandInfo, StacItem, bboxes_intersect, most_common_crs
from stratus_processing.machine import usable_cores


# Reads of local files decode in these threads (all loads and tiles share them; GDAL releases the GIL
# while decoding): CPU work, one thread per core, more would only hold more tiles' arrays at once. Loads
# that read over the network use the fetch threads (`load_cube`); tiles filling the cores read in their own.
READ_CONCURRENCY = usable_cores()
# Fetches in flight at once ahead of the reads (`prefetch`): a fetch waits ~30-60 ms for S3 (first
# byte, then ~1-2 MB) and decodes for ~10 ms, so 2 vCPUs stay busy with about 8 in flight.
FETCH_CONCURRENCY = 8
_read_pool: ThreadPoolExecutor | None = None
_fetch_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class LoadPlan:
    """Everything a load needs but the pixels: the same plan loads the whole grid or any window."""

    grid: Grid  # the full target grid
    bands: tuple[BandInfo, ...]
    days: tuple[tuple[StacItem, ...], ...]  # time steps: the items of one UTC day, in mosaic order
    apply_scale: bool  # apply STAC scale/offset (load_collection) or keep stored values (load_stac)
    # Where each item lies in the grid's CRS (west, south, east, north), to skip items outside a tile.
    footprints: dict[str, Bounds] = field(repr=False)
    # Polygons (grid CRS) outside of which pixels are no-data, for GeoJSON spatial extents.
    geometries: tuple[BaseGeometry, ...] | None = field(default=None, repr=False)
    # The values' type: float32 where the graph and the sources allow it (`precision.load_dtype`).
    dtype: np.dtype = precision.DOUBLE

    @property
    def item_count(self) -> int:
        return sum(len(day) for day in self.days)

    def size_bytes(self, grid: Grid | None = None) -> int:
        """Bytes of `grid`'s values counted as float64, whatever `dtype`: the size guard refuses the
        same loads for every graph, whatever type its results are saved in."""
        return self._values(grid) * np.dtype(cubes.CUBE_DTYPE).itemsize

    def held_bytes(self, grid: Grid | None = None) -> int:
        """Bytes `grid`'s values take in memory, in `dtype` (what tile budgets count)."""
        return self._values(grid) * self.dtype.itemsize

    def _values(self, grid: Grid | None) -> int:
        grid = grid or self.grid
        return len(self.days) * len(self.bands) * grid.width * grid.height


def plan_load(items: Sequence[StacItem], bands: Sequence[BandInfo], extent: tuple[CRS, Bounds] | None,
              reader: RasterReader, *, apply_scale: bool,
              geometries: Sequence[BaseGeometry] | None = None, geometries_crs: CRS | None = None,
              single_precision_outputs: bool = False) -> LoadPlan:
    """Plan the load of `bands` of `items` (already filtered, in datetime order; each has at least
    one of the bands) over `extent` (all items' footprints when None).

    The target grid is the CRS most of the items are in (ties: the earliest item's), with the
    resolution and pixel alignment of the finest requested band of the first item in that CRS,
    over the pixels whose centres lie in the extent. The values are float32 when
    `single_precision_outputs` (the graph's, see `precision`) and every asset's data type allow it."""
    crs = most_common_crs(items, lambda item: next((k for b in bands if (k := item.asset_for(b))), None))
    native = [item for item in items if crs is None or _item_crs(item, bands) == crs] or list(items)
    first = native[0]
    grids = [_asset_grid(first, key, reader) for b in bands if (key := first.asset_for(b)) is not None]
    finest = min(grids, key=lambda g: g.resolution[0] * g.resolution[1])
    if extent is not None:
        extent_crs, bounds = extent
        if extent_crs != finest.crs:
            bounds = transform_bounds(extent_crs, finest.crs, *bounds, densify_pts=21)
    else:
        boxes = [transform_bounds(WGS84, finest.crs, *item.bbox, densify_pts=21) for item in items]
        bounds = _union(boxes)
    grid = Grid.covering(finest.crs, bounds, origin=(finest.transform.c, finest.transform.f),
                         resolution=finest.resolution)
    footprints = {item.id: transform_bounds(WGS84, grid.crs, *item.bbox, densify_pts=21) for item in items}
    projected = None
    if geometries is not None:
        from stratus_processing.geometry import reproject_geometries

        projected = tuple(g for g in reproject_geometries(list(geometries), geometries_crs or WGS84, grid.crs)
                          if g is not None)
    data_types = [item.raster_band(key).get("data_type") for item in items for band in bands
                  if (key := item.asset_for(band)) is not None]
    dtype = precision.load_dtype(data_types, single_precision_outputs=single_precision_outputs)
    return LoadPlan(grid, tuple(bands), tuple(tuple(day) for day in group_by_day(items)), apply_scale,
                    footprints, projected, dtype)


def group_by_day(items: Sequence[StacItem]) -> list[list[StacItem]]:
    """Items of the same UTC day form one time step (neighbouring tiles of one overpass), in order."""
    groups: dict[date, list[StacItem]] = {}
    for item in items:
        groups.setdefault(item.datetime.date(), []).append(item)
    return list(groups.values())


def load_cube(plan: LoadPlan, reader: RasterReader, grid: Grid | None = None, *,
              side_by_side: int = 1) -> xr.DataArray:
    """Read the plan onto `grid` (the plan's grid or a window of it); within a day the earlier item
    wins where both have data. Items whose footprint misses `grid` aren't opened. `side_by_side`:
    how many such loads run at once (tiles evaluated in parallel): when they fill the cores, each
    reads its layers in its own thread rather than queueing them behind the other's in the read
    threads (a tile decodes its local files itself, or converts windows of remote ones read ahead)."""
    grid = grid or plan.grid
    layers = [(day_index, band_index, [(item, key) for item in day
                                       if bboxes_intersect(plan.footprints[item.id], grid.bounds)
                                       and (key := item.asset_for(band)) is not None])
              for day_index, day in enumerate(plan.days) for band_index, band in enumerate(plan.bands)]
    values = np.empty((len(plan.days), len(plan.bands), grid.height, grid.width), dtype=plan.dtype)

    def read(item: StacItem, key: str, out: np.ndarray | None) -> np.ndarray:
        raster_band = item.raster_band(key)
        scale, offset = (raster_band.get("scale", 1.0), raster_band.get("offset", 0.0)) if plan.apply_scale else (1.0, 0.0)
        return reader.read(item.assets[key]["href"], grid, nodata=raster_band.get("nodata"),
                           gdal_options=item.gdal_options(key), out=out, scale=scale, offset=offset,
                           dtype=plan.dtype)

    def mosaic(layer: tuple[int, int, list[tuple[StacItem, str]]]) -> None:
        """One (day, band) of the cube: the first item decoded straight into it, later ones fill its gaps."""
        day_index, band_index, sources = layer
        target = values[day_index, band_index]
        if not sources:
            target.fill(np.nan)
        for position, (item, key) in enumerate(sources):
            if position == 0:
                read(item, key, target)
            else:
                data = read(item, key, None)
                gaps = np.isnan(target)
                target[gaps] = data[gaps]

    # Items are applied in their order within a day: the mosaic is deterministic.
    if side_by_side >= READ_CONCURRENCY:
        for layer in layers:
            mosaic(layer)
    elif any(reader.is_remote(item.assets[key]["href"]) for _, _, sources in layers for item, key in sources):
        # Reads over the network mostly wait for their requests: as many at once as fetches ahead
        # (each decodes into the cube's own array, so more threads hold no more memory). 3 COGs over
        # HTTP (benchmarks.remote_read): 2 read threads took a round trip more than 3 at once.
        list(fetch_pool().map(mosaic, layers))
    else:
        list(read_pool().map(mosaic, layers))
    if plan.geometries is not None:
        values[..., ~covered_pixels(plan.geometries, grid)] = np.nan

    return cubes.make_cube(values, grid=grid, times=[day[0].datetime for day in plan.days],
                           bands=[b.name for b in plan.bands], common_names=[b.common_name for b in plan.bands])


def prefetch(plan: LoadPlan, reader: RasterReader, grid: Grid, *, owner: object = None) -> None:
    """Fetch ahead the blocks that loading `grid` (a window of the plan's grid) will read, so that
    loading windows of it later needs no request (see `RasterReader.prefetch`, `owner` too). Assets
    on local disk are left to the reads: they wait for no request, and a tile decoding its own window
    finds the values still in its core's cache when it converts them (engine_floor, 4 dates × 5,490² px
    on local files: 3.06-3.6 s with read-ahead, 2.7 s without)."""
    assets = {href: (item.raster_band(key).get("nodata"), item.gdal_options(key))
              for day in plan.days for item in day
              if bboxes_intersect(plan.footprints[item.id], grid.bounds)
              for band in plan.bands if (key := item.asset_for(band)) is not None
              if reader.is_remote(href := item.assets[key]["href"])}
    list(fetch_pool().map(lambda href: reader.prefetch(href, grid, nodata=assets[href][0],
                                                       gdal_options=assets[href][1], owner=owner), assets))


def read_pool() -> ThreadPoolExecutor:
    """The process's read threads, made once (a pool per tile would start threads per tile)."""
    global _read_pool  # noqa: PLW0603
    with _pool_lock:
        if _read_pool is None:
            _read_pool = ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="read")
        return _read_pool


def fetch_pool() -> ThreadPoolExecutor:
    """The process's fetch-ahead threads (network-bound: more of them than cores)."""
    global _fetch_pool  # noqa: PLW0603
    with _pool_lock:
        if _fetch_pool is None:
            _fetch_pool = ThreadPoolExecutor(max_workers=FETCH_CONCURRENCY, thread_name_prefix="fetch")
        return _fetch_pool


def _item_crs(item: StacItem, bands: Sequence[BandInfo]) -> CRS | None:
    key = next((k for b in bands if (k := item.asset_for(b)) is not None), None)
    return item.asset_crs(key) if key is not None else None


def _asset_grid(item: StacItem, key: str, reader: RasterReader) -> Grid:
    return item.asset_grid(key) or reader.grid_of(item.assets[key]["href"], gdal_options=item.gdal_options(key))


def _union(boxes: Sequence[Bounds]) -> Bounds:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)
