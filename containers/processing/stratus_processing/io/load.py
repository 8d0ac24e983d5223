"""Assembles a data cube from STAC items: one time step per acquisition day, one read per item and
band, each onto the same target grid; scale/offset applied, no-data as NaN."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import numpy as np
import xarray as xr
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from stratus_processing import cube as cubes
from stratus_processing.grid import WGS84, Grid
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import BandInfo, StacItem

# Reads in flight at once: GDAL releases the GIL while fetching and decoding, so a few threads hide
# S3 latency; more would mostly add memory on a 2-vCPU Fargate task.
READ_CONCURRENCY = 4


def target_grid(first_item: StacItem, bands: Sequence[BandInfo],
                extent: tuple[CRS, tuple[float, float, float, float]] | None,
                items: Sequence[StacItem]) -> Grid:
    """The pixel grid the cube is loaded onto: the first item's CRS and its finest requested band's
    resolution and pixel alignment, over the pixels whose centres lie in the extent (all items'
    footprints when there is no extent)."""
    finest = min((first_item.asset_grid(b.name) for b in bands if b.name in first_item.assets),
                 key=lambda g: g.resolution[0] * g.resolution[1])
    if extent is not None:
        extent_crs, bounds = extent
        if extent_crs != finest.crs:
            bounds = transform_bounds(extent_crs, finest.crs, *bounds, densify_pts=21)
    else:
        boxes = [transform_bounds(WGS84, finest.crs, *item.bbox, densify_pts=21) for item in items]
        bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                  max(b[2] for b in boxes), max(b[3] for b in boxes))
    return Grid.covering(finest.crs, bounds, origin=(finest.transform.c, finest.transform.f),
                         resolution=finest.resolution)


def group_by_day(items: Sequence[StacItem]) -> list[list[StacItem]]:
    """Items of the same UTC day form one time step (neighbouring tiles of one overpass), in order."""
    groups: dict[date, list[StacItem]] = {}
    for item in items:
        groups.setdefault(item.datetime.date(), []).append(item)
    return list(groups.values())


def load_cube(items: Sequence[StacItem], bands: Sequence[BandInfo], grid: Grid, reader: RasterReader) -> xr.DataArray:
    """Read every (item, band) onto `grid`; within a day the earlier item wins where both have data."""
    days = group_by_day(items)
    reads = [(day_index, band_index, item, band)
             for day_index, day in enumerate(days)
             for item in day
             for band_index, band in enumerate(bands) if band.name in item.assets]

    def read(task: tuple[int, int, StacItem, BandInfo]) -> np.ndarray:
        _, _, item, band = task
        raster_band = item.raster_band(band.name)
        values = reader.read(item.assets[band.name]["href"], grid, nodata=raster_band.get("nodata"))
        return _apply_scale(values, raster_band)

    values = np.full((len(days), len(bands), grid.height, grid.width), np.nan, dtype=cubes.CUBE_DTYPE)
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="read") as pool:
        # map() yields in submission order, i.e. item order within a day: the mosaic is deterministic.
        for (day_index, band_index, _, _), data in zip(reads, pool.map(read, reads), strict=True):
            target = values[day_index, band_index]
            gaps = np.isnan(target)
            target[gaps] = data[gaps]

    return cubes.make_cube(values, grid=grid, times=[day[0].datetime for day in days],
                           bands=[b.name for b in bands], common_names=[b.common_name for b in bands])


def _apply_scale(values: np.ndarray, raster_band: dict[str, Any]) -> np.ndarray:
    scale, offset = raster_band.get("scale", 1.0), raster_band.get("offset", 0.0)
    if scale != 1.0:
        values *= scale
    if offset:
        values += offset
    return values
