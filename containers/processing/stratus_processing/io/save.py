"""Writes data cubes as Cloud-Optimized GeoTIFFs (float32, NaN no-data, the cube's exact grid).

One file per time step when the cube still has a `t` dimension (`result_<YYYY-MM-DD>.tif`), else a
single `result.tif`; a `bands` dimension becomes the file's bands, in cube order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import xarray as xr
from rasterio.session import DummySession

from stratus_processing import cube as cubes
from stratus_processing.errors import DataCubeEmptyException, FormatUnsuitableException
from stratus_processing.grid import Grid
from stratus_processing.results import AssetRecord, ResultStore

GTIFF_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
OUTPUT_DTYPE = "float32"

# GDAL COG driver creation options: DEFLATE with the floating-point predictor compresses float32
# well and every GDAL reads it; 512 px internal tiles (GDAL's default) and overviews down to one
# tile, averaged because results are continuous values (NaN is ignored by GDAL's averaging).
_COG_CREATION_OPTIONS = {
    "compress": "DEFLATE",
    "predictor": "YES",
    "blocksize": 512,
    "overviews": "AUTO",
    "overview_resampling": "AVERAGE",
    "bigtiff": "IF_SAFER",
}


def save_geotiff(cube: xr.DataArray, store: ResultStore, *,
                 options: dict[str, Any] | None = None) -> list[AssetRecord]:
    """Publish the cube as COG asset(s) through `store`; returns the records added to the store."""
    cube = _arranged(cube)
    if any(size == 0 for size in cube.shape):
        raise DataCubeEmptyException()
    grid = cubes.grid_of(cube)
    band_names = cubes.band_names(cube)
    eo_bands = _eo_bands(cube) if band_names else None
    extent = cubes.temporal_extent(cube)
    start, end = extent if extent else (None, None)

    if cubes.T in cube.dims:
        steps = [(f"result_{moment:%Y-%m-%d}.tif", f"Result for {moment:%Y-%m-%d}", moment, cube.isel({cubes.T: i}))
                 for i, moment in enumerate(cubes.time_labels(cube))]
    else:
        steps = [("result.tif", "Result", None, cube)]

    records = []
    for name, title, moment, step in steps:
        values = step.values if cubes.BANDS in step.dims else step.values[np.newaxis]
        name = store.unique_name(name)
        key, size = store.publish(name, GTIFF_MEDIA_TYPE,
                                  lambda path, v=values: write_cog(path, v, grid, band_descriptions=band_names))
        record = AssetRecord(
            name=name, key=key, media_type=GTIFF_MEDIA_TYPE, title=title, file_size=size, grid=grid,
            raster_bands=[_raster_band(band) for band in values], eo_bands=eo_bands, datetime=moment,
            start_datetime=moment or start, end_datetime=moment or end)
        store.add_asset(record)
        records.append(record)
    return records


def write_cog(path: Path, values: np.ndarray, grid: Grid, *, band_descriptions: list[str] | None = None) -> None:
    """Write a (bands, y, x) array as a float32 COG with NaN as no-data on exactly `grid`."""
    count, height, width = values.shape
    if (height, width) != grid.shape:
        raise ValueError(f"array shape {(height, width)} does not match the grid {grid.shape}")
    profile = {"driver": "COG", "width": width, "height": height, "count": count, "dtype": OUTPUT_DTYPE,
               "crs": grid.crs, "transform": grid.transform, "nodata": np.nan, **_COG_CREATION_OPTIONS}
    # A local file: an explicit no-credentials session keeps rasterio from building a boto3 one.
    with rasterio.Env(session=DummySession()), rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(OUTPUT_DTYPE))
        for index, description in enumerate(band_descriptions or [], start=1):
            dst.set_band_description(index, description)


def _arranged(cube: xr.DataArray) -> xr.DataArray:
    """The cube with dims in (t, bands, y, x) order; other dimensions can't go into a GeoTIFF."""
    extra = [d for d in cube.dims if d not in cubes.DIMENSION_ORDER]
    if extra:
        names = ", ".join(map(str, extra))
        raise FormatUnsuitableException(
            reason=f"GTiff stores dimensions t, bands, y and x only; reduce or drop {names} first.")
    return cube.transpose(*[d for d in cubes.DIMENSION_ORDER if d in cube.dims])


def _eo_bands(cube: xr.DataArray) -> list[dict[str, Any]]:
    common = cubes.common_names(cube)
    return [{"name": name, **({"common_name": common[name]} if name in common else {})}
            for name in cubes.band_names(cube)]


def _raster_band(band: np.ndarray) -> dict[str, Any]:
    """STAC raster:bands entry, with statistics of the values as written (float32)."""
    written = band.astype(OUTPUT_DTYPE)
    valid = written[np.isfinite(written)]
    statistics: dict[str, Any] = {"valid_percent": round(100.0 * valid.size / written.size, 2)}
    if valid.size:
        statistics.update(minimum=float(valid.min()), maximum=float(valid.max()),
                          mean=float(valid.mean(dtype=np.float64)), stddev=float(valid.std(dtype=np.float64)))
    return {"data_type": OUTPUT_DTYPE, "nodata": "nan", "statistics": statistics}
