"""Result files: raster cubes as Cloud-Optimized GeoTIFF or CF netCDF, other values as JSON/GeoJSON
(format definitions and options: `stratus.file_formats`).

Rasters are written through a `RasterSink`, window by window: the whole cube in one window when it
was evaluated at once, or tile after tile in tiled execution (`stratus_processing.tiling`), so a
result never has to be in memory as a whole. Both paths go through the same code and give the same
files.

- GTiff: each tile goes into an uncompressed tiled GeoTIFF (one per time step when the cube still
  has `t`), and, for float results, its share of the overviews into one GeoTIFF per level
  (`io.overviews`); once complete, GDAL's COG driver copies them into the published COG (compression
  with all CPUs; integer results' overviews built by GDAL then). Files `result.tif` or
  `result_<YYYY-MM-DD>.tif`; bands named after labels.
- netCDF: one CF-1.8 file written by slices with netCDF4 (see `NetCDFSink`).

Every raster asset carries `raster:bands` statistics of the values as written, accumulated per
window and merged in window order (Chan et al.'s parallel variance), so they don't depend on the
order tiles finished in.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.session import DummySession
from rasterio.windows import Window
from stratus.file_formats import CSV, GEOJSON, GTIFF, JSON, MEDIA_TYPES, NETCDF

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.errors import DataCubeEmptyException, FormatUnsuitableException
from stratus_processing.grid import Grid
from stratus_processing.io.overviews import MAX_OPEN_FILES, OverviewPyramid, overview_sizes
from stratus_processing.machine import usable_cores
from stratus_processing.results import AssetRecord, ResultStore

GTIFF_MEDIA_TYPE = MEDIA_TYPES[GTIFF]
NETCDF_MEDIA_TYPE = MEDIA_TYPES[NETCDF]
JSON_MEDIA_TYPE = MEDIA_TYPES[JSON]
GEOJSON_MEDIA_TYPE = MEDIA_TYPES[GEOJSON]
CSV_MEDIA_TYPE = MEDIA_TYPES[CSV]
OUTPUT_DTYPE = "float32"  # the default data type of raster results

# Internal tile edge (px) of the COGs; GDAL's default, and the alignment tiled execution uses.
COG_BLOCK_SIZE = 512
# GDAL COG driver creation options: the floating-point (or horizontal, for integers) predictor
# compresses well and every GDAL reads it; overviews down to one tile; compression in all CPUs.
# Blocks without any data are left out of the file (sparse), so a large, mostly empty grid stays small.
_COG_CREATION_OPTIONS = {"blocksize": COG_BLOCK_SIZE, "bigtiff": "IF_SAFER", "num_threads": "ALL_CPUS",
                         "sparse_ok": True}
# DEFLATE effort of the final COG: level 1 (libdeflate) takes about two thirds of the CPU time of
# GDAL's default level 6 and, on float results whose low bits are noise (the usual case after band
# math and temporal means), gives files within 1 % of its size, smaller at times.
COG_DEFLATE_LEVEL = 1
# Bytes of GDAL block cache while writing: the intermediate GeoTIFF's dirty blocks and the COG
# copy's source blocks pass through it; GDAL's default (5 % of RAM) would only hold more memory.
WRITE_CACHE_BYTES = 128 * 1024 * 1024
# A raster cube saved as JSON is for small results (e.g. a few pixels); beyond this many values
# GTiff or netCDF are the formats to use.
MAX_JSON_RASTER_VALUES = 1_000_000
# netCDF variable names: letters, digits, underscores, starting with a letter.
_NETCDF_NAME = re.compile(r"[^A-Za-z0-9_]")
_NETCDF_RESERVED = {"t", "x", "y", "crs"}
# Coordinate variables of vector cubes in netCDF (`vector_cube.to_dsg_dataset`).
_NETCDF_VECTOR_RESERVED = {"t", "feature", "feature_id", "lat", "lon", "geometry_wkt"}
_FILE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


# --- what a cube looks like besides its pixels ----------------------------------------------------

@dataclass(frozen=True)
class CubeLayout:
    """The non-spatial structure of a raster result; every window written must share it."""

    times: tuple[datetime | str, ...] | None  # instants, or other labels (e.g. "2022-jja" periods)
    bands: tuple[str, ...] | None
    common_names: tuple[tuple[str, str], ...]
    temporal_extent: tuple[datetime, datetime] | None

    @classmethod
    def of(cls, cube: xr.DataArray) -> CubeLayout:
        times = None
        if cubes.T in cube.dims:
            instants = np.issubdtype(cube[cubes.T].dtype, np.datetime64)
            times = tuple(cubes.time_labels(cube)) if instants else tuple(str(v) for v in cube[cubes.T].values)
        bands = tuple(cubes.band_names(cube)) if cubes.BANDS in cube.dims else None
        return cls(times, bands, tuple(sorted(cubes.common_names(cube).items())), cubes.temporal_extent(cube))

    @property
    def band_count(self) -> int:
        return len(self.bands) if self.bands is not None else 1

    @property
    def step_count(self) -> int:
        """Time steps (one without `t`): a GeoTIFF result's files."""
        return len(self.times) if self.times is not None else 1

    @property
    def instants(self) -> list[datetime]:
        return [t for t in self.times or () if isinstance(t, datetime)]

    def extent(self) -> tuple[datetime, datetime] | None:
        """The time span of the data: of the instants of `t`, else the cube's temporal extent."""
        instants = self.instants
        return (min(instants), max(instants)) if instants else self.temporal_extent


def arranged(cube: xr.DataArray, format_name: str) -> xr.DataArray:
    """The cube with dims in (t, bands, y, x) order; other dimensions can't go into a raster file."""
    extra = [d for d in cube.dims if d not in cubes.DIMENSION_ORDER]
    if extra:
        names = ", ".join(map(str, extra))
        raise FormatUnsuitableException(
            reason=f"{format_name} stores dimensions t, bands, y and x only; reduce or drop {names} first.")
    cube = cube.transpose(*[d for d in cubes.DIMENSION_ORDER if d in cube.dims])
    if any(size == 0 for size in cube.shape):
        raise DataCubeEmptyException()
    return cube


def window_of(grid: Grid, full: Grid) -> tuple[int, int]:
    """(row, col) offset of `grid` in `full`; raises ValueError unless `grid` is a window of it."""
    if grid.crs != full.crs or not all(math.isclose(a, b, rel_tol=1e-9)
                                       for a, b in zip(grid.resolution, full.resolution, strict=True)):
        raise ValueError("the cube is not on the output grid")
    col = (grid.transform.c - full.transform.c) / full.resolution[0]
    row = (full.transform.f - grid.transform.f) / full.resolution[1]
    row_off, col_off = round(row), round(col)
    if (abs(row - row_off) > 1e-6 or abs(col - col_off) > 1e-6 or row_off < 0 or col_off < 0
            or row_off + grid.height > full.height or col_off + grid.width > full.width):
        raise ValueError("the cube is not a window of the output grid")
    return row_off, col_off


# --- statistics -----------------------------------------------------------------------------------

@dataclass
class BandStatistics:
    """Count, mean and sum of squared deviations of valid values (mergeable), min, max."""

    total: int = 0
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    @classmethod
    def of(cls, written: np.ndarray, valid: np.ndarray) -> BandStatistics:
        values = written.reshape(-1) if valid.all() else written[valid]  # (a view where nothing is missing)
        stats = cls(total=written.size, count=int(values.size))
        if values.size:
            stats.mean = float(values.mean(dtype=np.float64))
            deviations = values.astype(np.float64)
            deviations -= stats.mean
            np.multiply(deviations, deviations, out=deviations)  # in place: 4× faster than np.square(...)
            stats.m2 = float(deviations.sum())
            stats.minimum, stats.maximum = float(values.min()), float(values.max())
        return stats

    def merge(self, other: BandStatistics) -> BandStatistics:
        count = self.count + other.count
        merged = BandStatistics(total=self.total + other.total, count=count,
                                minimum=min(self.minimum, other.minimum), maximum=max(self.maximum, other.maximum))
        if count:
            delta = other.mean - self.mean
            merged.mean = self.mean + delta * other.count / count
            merged.m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return merged

    def as_stac(self) -> dict[str, Any]:
        statistics: dict[str, Any] = {"valid_percent": round(100.0 * self.count / self.total, 2) if self.total else 0}
        if self.count:
            statistics.update(minimum=self.minimum, maximum=self.maximum, mean=self.mean,
                              stddev=math.sqrt(max(self.m2, 0.0) / self.count))
        return statistics


# --- output data types ----------------------------------------------------------------------------

@dataclass(frozen=True)
class OutputType:
    dtype: np.dtype
    nodata: float  # NaN for floating-point types

    @classmethod
    def of(cls, datatype: str, nodata: float | None) -> OutputType:
        dtype = np.dtype(datatype)
        if dtype.kind == "f":
            return cls(dtype, float("nan") if nodata is None else float(nodata))
        info = np.iinfo(dtype)
        if nodata is None:
            nodata = info.max if dtype.kind == "u" else info.min
        if not info.min <= nodata <= info.max or float(nodata) != int(nodata):
            raise ValueError(f"nodata {nodata} is not a {datatype} value")
        return cls(dtype, float(nodata))

    @property
    def is_float(self) -> bool:
        return self.dtype.kind == "f"

    def convert(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values as written, and where they are valid (not no-data)."""
        if self.is_float:
            # Not copied when already of the type and no-data stays NaN: nothing changes them
            written = values.astype(self.dtype, copy=not math.isnan(self.nodata))
            valid = np.isfinite(written)
            if not math.isnan(self.nodata):
                written[np.isnan(written)] = self.nodata
                valid &= written != self.nodata
            return written, valid
        info = np.iinfo(self.dtype)
        valid = np.isfinite(values)
        written = np.where(valid, np.clip(np.rint(values), info.min, info.max), self.nodata).astype(self.dtype)
        return written, valid & (written != self.nodata)

    def raster_band(self, statistics: BandStatistics) -> dict[str, Any]:
        return {"data_type": self.dtype.name, "nodata": "nan" if math.isnan(self.nodata) else self.nodata,
                "statistics": statistics.as_stac()}


# --- sinks ----------------------------------------------------------------------------------------

class RasterSink(ABC):
    """A raster result written window by window (thread-safe), then published in one go.

    The files are opened at the first write, which fixes the layout (time steps, bands) every later
    window must share. `finalize` publishes through the store and returns the asset records;
    `discard` drops everything (a failed or abandoned run)."""

    format_name: str
    media_type: str

    def __init__(self, store: ResultStore, grid: Grid, options: dict[str, Any]) -> None:
        self._output_type = OutputType.of(options.get("datatype") or OUTPUT_DTYPE, options.get("nodata"))
        self.store = store
        self.grid = grid
        self.options = options
        self.layout: CubeLayout | None = None
        self._lock = threading.Lock()
        self._staging = Path(tempfile.mkdtemp(prefix="stratus-output-"))
        # (row, col) of each window -> per file, per band statistics of that window
        self._statistics: dict[tuple[int, int], list[list[BandStatistics]]] = {}

    def write(self, cube: xr.DataArray) -> None:
        """Write a cube on the sink's grid or on a window of it."""
        cube = arranged(cube, self.format_name)
        layout = CubeLayout.of(cube)
        row, col = window_of(cubes.grid_of(cube), self.grid)
        values = cube.values if cubes.BANDS in cube.dims else cube.values[..., np.newaxis, :, :]
        if cubes.T not in cube.dims:
            values = values[np.newaxis]
        # Conversion and statistics outside the lock: they are the CPU part.
        written, valid = self._output_type.convert(values)
        statistics = [[BandStatistics.of(written[s, b], valid[s, b]) for b in range(written.shape[1])]
                      for s in range(written.shape[0])]
        derived = self._derived(layout, written, valid, row, col)
        with self._lock:
            if self.layout is None:
                self.layout = layout
                self._open(layout)
            elif (layout.times, layout.bands) != (self.layout.times, self.layout.bands):
                raise ValueError("a window has other time steps or bands than the rest of the result")
            if valid.any():  # an all-no-data window stays unwritten: the files read no-data there
                self._write(written, row, col, derived)
            self._statistics[(row, col)] = statistics

    def finalize(self) -> list[AssetRecord]:
        try:
            with self._lock:
                if self.layout is None:
                    raise DataCubeEmptyException()
                self._close()
                statistics = self._merged_statistics()
                return self._publish(self.layout, statistics)
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)

    def discard(self) -> None:
        with self._lock:
            try:
                self._close()
            except Exception:  # noqa: BLE001 - discarding after a failure: nothing left to save
                pass
            shutil.rmtree(self._staging, ignore_errors=True)

    def _merged_statistics(self) -> list[list[BandStatistics]]:
        merged: list[list[BandStatistics]] | None = None
        for key in sorted(self._statistics):
            window = self._statistics[key]
            merged = window if merged is None else [[a.merge(b) for a, b in zip(mine, theirs, strict=True)]
                                                    for mine, theirs in zip(merged, window, strict=True)]
        return merged or []

    def _record(self, name: str, title: str, write: Callable[[Path], None], *, statistics: list[BandStatistics],
                moment: datetime | None, layout: CubeLayout) -> AssetRecord:
        name = self.store.unique_name(name)
        published = self.store.publish(name, self.media_type, write)
        start, end = layout.extent() or (None, None)
        common = dict(layout.common_names)
        eo_bands = ([{"name": b, **({"common_name": common[b]} if b in common else {})} for b in layout.bands]
                    if layout.bands else None)
        record = AssetRecord(
            name=name, key=published.key, media_type=self.media_type, title=title, file_size=published.size,
            file_checksum=published.checksum, grid=self.grid,
            raster_bands=[self._output_type.raster_band(s) for s in statistics], eo_bands=eo_bands,
            datetime=moment, start_datetime=moment or start, end_datetime=moment or end)
        self.store.add_asset(record)
        return record

    @abstractmethod
    def _open(self, layout: CubeLayout) -> None: ...

    def _derived(self, layout: CubeLayout, written: np.ndarray, valid: np.ndarray, row: int, col: int) -> Any:
        """What the sink computes from a window besides its values (outside the lock, in the window's
        thread), handed to `_write`."""
        return None

    @abstractmethod
    def _write(self, values: np.ndarray, row: int, col: int, derived: Any) -> None:
        """`values` shaped (steps, bands, height, width), already in the output type."""

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _publish(self, layout: CubeLayout, statistics: list[list[BandStatistics]]) -> list[AssetRecord]: ...



def write_env() -> rasterio.Env:
    """GDAL settings for writing local files: an explicit no-credentials session keeps rasterio
    from building a boto3 one, and a bounded block cache (GDAL's cache size is process-wide: the
    tiled runner holds the same setting for the whole run, see `tiling.run_tiled`)."""
    return rasterio.Env(session=DummySession(), GDAL_CACHEMAX=WRITE_CACHE_BYTES)


class GTiffSink(RasterSink):
    format_name = GTIFF
    media_type = GTIFF_MEDIA_TYPE

    def __init__(self, store: ResultStore, grid: Grid, options: dict[str, Any]) -> None:
        super().__init__(store, grid, options)
        self._paths: list[Path] = []
        self._datasets: list[Any] = []
        # Float results' overviews are built by the windows (`io.overviews`), integers' by GDAL (NEAREST)
        self._own_overviews = self._wants_overviews and self._output_type.is_float
        self._pyramid: OverviewPyramid | None = None
        self._pyramid_lock = threading.Lock()

    @property
    def _wants_overviews(self) -> bool:
        return self.options.get("overviews", True) not in (False, "OFF")  # "AUTO"/"OFF": geopyspark's values

    def _profile(self, layout: CubeLayout) -> dict[str, Any]:
        """The intermediate GeoTIFFs' profile (uncompressed: the COG copy compresses)."""
        tiled = self.grid.width >= COG_BLOCK_SIZE and self.grid.height >= COG_BLOCK_SIZE
        return {"driver": "GTiff", "width": self.grid.width, "height": self.grid.height,
                "count": layout.band_count, "dtype": self._output_type.dtype.name, "crs": self.grid.crs,
                "transform": self.grid.transform, "nodata": self._output_type.nodata, "bigtiff": "IF_SAFER",
                "sparse_ok": True,
                **({"tiled": True, "blockxsize": COG_BLOCK_SIZE, "blockysize": COG_BLOCK_SIZE} if tiled else {})}

    def _open(self, layout: CubeLayout) -> None:
        profile = self._profile(layout)
        # rasterio environments are per thread: the datasets outlive this one (tiles are written from
        # other threads), which is fine, GDAL's block cache being process-wide.
        with write_env():
            for step in range(layout.step_count):
                path = self._staging / f"step_{step}.tif"
                dataset = rasterio.open(path, "w", **profile)
                for index, band in enumerate(layout.bands or [], start=1):
                    dataset.set_band_description(index, band)
                self._paths.append(path)
                self._datasets.append(dataset)

    def _derived(self, layout: CubeLayout, written: np.ndarray, valid: np.ndarray, row: int,
                 col: int) -> list[np.ndarray] | None:
        pyramid = self._overview_pyramid(layout)
        if pyramid is None:
            return None
        if not pyramid.accepts(row, col, *written.shape[-2:]):
            self._own_overviews = False  # blocks shared with a neighbour: GDAL builds the overviews
            return None
        # (an all-no-data window stays unwritten, its overviews too: the files read no-data there)
        return pyramid.reduce(written, valid) if valid.any() else None

    def _overview_pyramid(self, layout: CubeLayout) -> OverviewPyramid | None:
        """The overviews built window by window: float results with overviews, on grids larger than a
        block, in at most MAX_OPEN_FILES files (steps × levels), while every window has been aligned
        (created by the first window)."""
        if not self._own_overviews:
            return None
        with self._pyramid_lock:
            if self._pyramid is None and self._own_overviews:
                profile = self._profile(layout)
                levels = len(overview_sizes(profile["width"], profile["height"]))
                if 0 < levels and layout.step_count * levels <= MAX_OPEN_FILES:
                    with write_env():
                        self._pyramid = OverviewPyramid(self._staging, profile, layout.step_count)
                else:
                    self._own_overviews = False
            return self._pyramid if self._own_overviews else None

    def _write(self, values: np.ndarray, row: int, col: int, derived: list[np.ndarray] | None) -> None:
        window = Window(col, row, values.shape[-1], values.shape[-2])
        for dataset, step in zip(self._datasets, values, strict=True):
            dataset.write(step, window=window)
        if derived is not None and self._own_overviews and self._pyramid is not None:
            self._pyramid.write(derived, row, col)

    def _close(self) -> None:
        datasets, self._datasets = self._datasets, []
        for dataset in datasets:
            dataset.close()
        if self._pyramid is not None:
            self._pyramid.close()

    def _publish(self, layout: CubeLayout, statistics: list[list[BandStatistics]]) -> list[AssetRecord]:
        if layout.times is not None:
            steps = [(f"result_{moment:%Y-%m-%d}.tif", f"Result for {moment:%Y-%m-%d}", moment)
                     if isinstance(moment, datetime) else
                     (f"result_{_FILE_NAME.sub('_', moment)}.tif", f"Result for {moment}", None)
                     for moment in layout.times]
        else:
            steps = [("result.tif", "Result", None)]
        cogs = self._to_cogs(self._paths)
        records = []
        for (name, title, moment), cog, step_statistics in zip(steps, cogs, statistics, strict=True):
            records.append(self._record(name, title, lambda target, source=cog: shutil.move(source, target),
                                        statistics=step_statistics, moment=moment, layout=layout))
        return records

    def _to_cogs(self, sources: list[Path]) -> list[Path]:
        """The COG of each intermediate file, made side by side: building overviews (where GDAL
        builds them) is serial within GDAL's copy (only compression uses every core), so a cube with
        several time steps keeps every core busy by copying that many files at once."""
        targets = [source.with_name(f"{source.stem}.cog.tif") for source in sources]

        def convert(step: int) -> None:
            self._to_cog(step, sources[step], targets[step])
            sources[step].unlink(missing_ok=True)
        if len(sources) <= 1:
            for step in range(len(sources)):
                convert(step)
        else:
            with ThreadPoolExecutor(max_workers=min(len(sources), usable_cores()),
                                    thread_name_prefix="cog") as pool:
                list(pool.map(convert, range(len(sources))))
        return targets

    def _to_cog(self, step: int, source: Path, target: Path) -> None:
        compression = self.options.get("compression") or "DEFLATE"
        options: dict[str, Any] = {**_COG_CREATION_OPTIONS, "compress": compression}
        if compression != "NONE":
            options["predictor"] = "YES"
        if compression == "DEFLATE":
            options["level"] = COG_DEFLATE_LEVEL
        with write_env():
            if not self._wants_overviews:
                options["overviews"] = "NONE"
            elif self._own_overviews and self._pyramid is not None:
                source = self._pyramid.source_with_overviews(step, source)
                options["overviews"] = "FORCE_USE_EXISTING"
            else:
                options.update(overviews="AUTO",
                               overview_resampling="AVERAGE" if self._output_type.is_float else "NEAREST")
            rasterio.shutil.copy(str(source), str(target), driver="COG", **options)


class NetCDFSink(RasterSink):
    """CF-1.8 netCDF-4, written by slices with netCDF4 (xarray's `to_netcdf` needs the whole cube in
    memory, or dask): `t` as CF time (int64 seconds since the epoch, so instants stay exact), `y`/`x`
    pixel centres with `projection_[xy]_coordinate` (or latitude/longitude) standard names and
    units, one variable per band, and the grid mapping `crs` with pyproj's CF parameters, `crs_wkt`
    and GDAL's `spatial_ref`/`GeoTransform`, so GDAL and xarray both read the georeferencing."""

    format_name = NETCDF
    media_type = NETCDF_MEDIA_TYPE

    def __init__(self, store: ResultStore, grid: Grid, options: dict[str, Any]) -> None:
        super().__init__(store, grid, options)
        self._path = self._staging / "result.nc"
        self._dataset: Any = None
        self._variables: list[Any] = []
        self._has_time = False

    def _open(self, layout: CubeLayout) -> None:
        import netCDF4  # noqa: PLC0415 - only jobs that write netCDF load the library

        grid = self.grid
        dataset = netCDF4.Dataset(self._path, "w", format="NETCDF4")
        self._dataset = dataset
        dataset.setncatts(_global_attributes(layout))
        self._has_time = layout.times is not None
        if self._has_time:
            dataset.createDimension(cubes.T, len(layout.times))
            if len(layout.instants) == len(layout.times):
                time = dataset.createVariable(cubes.T, "i8", (cubes.T,))
                time.setncatts({"standard_name": "time", "long_name": "time", "axis": "T",
                                "units": "seconds since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian"})
                time[:] = np.array([round(moment.timestamp()) for moment in layout.instants], dtype=np.int64)
            else:  # labels that aren't instants (e.g. seasons): kept as text, not CF time
                time = dataset.createVariable(cubes.T, str, (cubes.T,))
                time.long_name = "time period"
                for index, label in enumerate(layout.times):
                    time[index] = str(label)
        dataset.createDimension(cubes.Y, grid.height)
        dataset.createDimension(cubes.X, grid.width)
        geographic = grid.crs.is_geographic
        for name, values, axis in ((cubes.Y, grid.y_coords(), "Y"), (cubes.X, grid.x_coords(), "X")):
            variable = dataset.createVariable(name, "f8", (name,))
            variable.setncatts(_axis_attributes(axis, geographic, grid))
            variable[:] = values
        crs = dataset.createVariable("crs", "i4")
        crs.setncatts(_grid_mapping_attributes(grid))
        dims = ((cubes.T,) if self._has_time else ()) + (cubes.Y, cubes.X)
        level = int(self.options.get("compression_level", 4) or 0)
        chunks = ((1,) if self._has_time else ()) + (min(COG_BLOCK_SIZE, grid.height), min(COG_BLOCK_SIZE, grid.width))
        common = dict(layout.common_names)
        fill = np.array(self._output_type.nodata, dtype=self._output_type.dtype)
        for name, label in zip(_variable_names(layout.bands), layout.bands or [None], strict=True):
            variable = dataset.createVariable(name, self._output_type.dtype, dims, zlib=level > 0,
                                              complevel=level or None, shuffle=level > 0, chunksizes=chunks,
                                              fill_value=fill)
            attributes = {"grid_mapping": "crs", "long_name": label or "data"}
            if label is not None:
                attributes["band"] = label
            if label in common:
                attributes["common_name"] = common[label]
            variable.setncatts(attributes)
            self._variables.append(variable)

    def _write(self, values: np.ndarray, row: int, col: int, derived: Any) -> None:
        rows, cols = slice(row, row + values.shape[-2]), slice(col, col + values.shape[-1])
        for band, variable in enumerate(self._variables):
            if self._has_time:
                variable[:, rows, cols] = values[:, band]
            else:
                variable[rows, cols] = values[0, band]

    def _close(self) -> None:
        if self._dataset is not None and self._dataset.isopen():
            self._dataset.close()

    def _publish(self, layout: CubeLayout, statistics: list[list[BandStatistics]]) -> list[AssetRecord]:
        # One file: the statistics of a band are over all its time steps.
        per_band = statistics[0]
        for step in statistics[1:]:
            per_band = [a.merge(b) for a, b in zip(per_band, step, strict=True)]
        record = self._record("result.nc", "Result", lambda target: shutil.move(self._path, target),
                              statistics=per_band, moment=None, layout=layout)
        return [record]


def _variable_names(bands: tuple[str, ...] | None, reserved: set[str] = _NETCDF_RESERVED) -> list[str]:
    if bands is None:
        return ["data"]
    names: list[str] = []
    for band in bands:
        name = _NETCDF_NAME.sub("_", band) or "band"
        if not name[0].isalpha() or name in reserved:
            name = f"band_{name}"
        while name in names:
            name += "_"
        names.append(name)
    return names


def _global_attributes(layout: CubeLayout) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "Conventions": "CF-1.8",
        "title": "openEO result",
        "institution": "Stratus openEO back-end",
        "source": "openEO process graph evaluated by Stratus",
        "history": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} created by Stratus save_result",
    }
    extent = layout.extent()
    if extent:
        attributes["time_coverage_start"] = cubes.isoformat_utc(extent[0])
        attributes["time_coverage_end"] = cubes.isoformat_utc(extent[1])
    return attributes


def _axis_attributes(axis: str, geographic: bool, grid: Grid) -> dict[str, Any]:
    if geographic:
        names = {"Y": ("latitude", "degrees_north"), "X": ("longitude", "degrees_east")}
        standard_name, units = names[axis]
        return {"standard_name": standard_name, "long_name": standard_name, "units": units, "axis": axis}
    units = grid.crs.linear_units or "m"
    units = {"metre": "m", "meter": "m"}.get(units, units)
    kind = "x" if axis == "X" else "y"
    return {"standard_name": f"projection_{kind}_coordinate", "long_name": f"{kind} coordinate of projection",
            "units": units, "axis": axis}


def _grid_mapping_attributes(grid: Grid) -> dict[str, Any]:
    from pyproj import CRS as ProjCRS  # noqa: PLC0415 - only for netCDF

    wkt = grid.crs.to_wkt()
    try:
        attributes = {k: v for k, v in ProjCRS.from_wkt(wkt).to_cf().items() if v is not None}
    except Exception:  # noqa: BLE001 - a CRS without a CF grid mapping still gets its WKT
        attributes = {}
    transform = grid.transform
    attributes.update({
        "crs_wkt": wkt,
        "spatial_ref": wkt,
        "GeoTransform": " ".join(repr(float(v)) for v in (transform.c, transform.a, transform.b,
                                                           transform.f, transform.d, transform.e)),
    })
    if grid.epsg is not None:
        attributes["epsg_code"] = f"EPSG:{grid.epsg}"
    return attributes


SINKS: dict[str, type[RasterSink]] = {GTIFF: GTiffSink, NETCDF: NetCDFSink}


def open_sink(format_name: str, store: ResultStore, grid: Grid, options: dict[str, Any] | None = None) -> RasterSink:
    """A sink for a raster result on `grid` in format `format_name` (canonical name, validated options)."""
    try:
        return SINKS[format_name](store, grid, dict(options or {}))
    except ValueError as exc:
        raise FormatUnsuitableException(reason=str(exc)) from None


def save_raster(cube: xr.DataArray, store: ResultStore, format_name: str,
                options: dict[str, Any] | None = None) -> list[AssetRecord]:
    """Publish a whole (in-memory) cube: one window covering the grid."""
    cube = arranged(cube, format_name)
    sink = open_sink(format_name, store, cubes.grid_of(cube), options)
    with write_env():
        try:
            sink.write(cube)
        except BaseException:
            sink.discard()
            raise
        return sink.finalize()


def save_geotiff(cube: xr.DataArray, store: ResultStore, *,
                 options: dict[str, Any] | None = None) -> list[AssetRecord]:
    """Publish the cube as COG asset(s) through `store`; returns the records added to the store."""
    return save_raster(cube, store, GTIFF, options)


def save_netcdf(cube: xr.DataArray, store: ResultStore, *,
                options: dict[str, Any] | None = None) -> list[AssetRecord]:
    return save_raster(cube, store, NETCDF, options)


def write_cog(path: Path, values: np.ndarray, grid: Grid, *, band_descriptions: list[str] | None = None) -> None:
    """Write a (bands, y, x) array as a float32 COG with NaN as no-data on exactly `grid`."""
    count, height, width = values.shape
    if (height, width) != grid.shape:
        raise ValueError(f"array shape {(height, width)} does not match the grid {grid.shape}")
    profile = {"driver": "COG", "width": width, "height": height, "count": count, "dtype": OUTPUT_DTYPE,
               "crs": grid.crs, "transform": grid.transform, "nodata": np.nan, "compress": "DEFLATE",
               "predictor": "YES", "overviews": "AUTO", "overview_resampling": "AVERAGE", **_COG_CREATION_OPTIONS}
    with write_env(), rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(OUTPUT_DTYPE))
        for index, description in enumerate(band_descriptions or [], start=1):
            dst.set_band_description(index, description)


# --- JSON -----------------------------------------------------------------------------------------

def save_json(value: Any, store: ResultStore, *, options: dict[str, Any] | None = None) -> list[AssetRecord]:
    """Non-raster results as JSON: see `stratus.file_formats` for the shapes. A vector cube with `t`
    is a time series in openeo-geopyspark-driver's layout (what the openeo client's
    `timeseries_json_to_pandas` reads)."""
    vector_cube = _vector_cube_module()
    if vector_cube is not None and vector_cube.is_vector_cube(value) and cubes.T in value.dims:
        return [_publish_json(store, "result.json", JSON_MEDIA_TYPE, vector_cube.to_timeseries_json(value))]
    document = to_json_value(value)
    return [_publish_json(store, "result.json", JSON_MEDIA_TYPE, document)]


def save_geojson(value: Any, store: ResultStore, *, options: dict[str, Any] | None = None) -> list[AssetRecord]:
    vector_cube = _require_vector_cube(value, GEOJSON)
    return [_publish_json(store, "result.geojson", GEOJSON_MEDIA_TYPE, vector_cube.to_geojson(value))]


def save_csv(value: Any, store: ResultStore, *, options: dict[str, Any] | None = None) -> list[AssetRecord]:
    """A vector cube as CSV, openeo-geopyspark-driver's layout (`vector_cube.to_table`), no-data empty."""
    vector_cube = _require_vector_cube(value, CSV)
    body = vector_cube.to_table(value).to_csv(index=False, lineterminator="\n").encode()
    return [_publish(store, "result.csv", CSV_MEDIA_TYPE, lambda path: path.write_bytes(body))]


def save_vector_netcdf(value: Any, store: ResultStore, *, options: dict[str, Any] | None = None) -> list[AssetRecord]:
    """A vector cube as CF-1.8 netCDF-4 with discrete sampling geometries (`vector_cube.to_dsg_dataset`);
    vector cubes are small, so xarray writes the whole dataset at once."""
    vector_cube = _require_vector_cube(value, NETCDF)
    options = dict(options or {})
    dtype = np.dtype(options.get("datatype") or OUTPUT_DTYPE)
    level = int(options.get("compression_level", 4) or 0)
    names = _variable_names(tuple(vector_cube.band_labels(value)), _NETCDF_VECTOR_RESERVED)
    dataset = vector_cube.to_dsg_dataset(value, names)
    dataset.attrs["history"] = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} created by Stratus save_result"
    encoding: dict[str, dict[str, Any]] = {
        name: {"dtype": dtype, "_FillValue": np.array(np.nan, dtype=dtype), "zlib": level > 0,
               **({"complevel": level} if level else {})} for name in names}
    if cubes.T in dataset.coords and np.issubdtype(dataset[cubes.T].dtype, np.datetime64):
        encoding[cubes.T] = {"units": "seconds since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian",
                             "dtype": "int64"}
    for name in ("lat", "lon"):
        encoding[name] = {"_FillValue": np.nan}
    for name in ("feature_id", "geometry_wkt"):
        encoding[name] = {"dtype": str}
    return [_publish(store, "result.nc", NETCDF_MEDIA_TYPE,
                     lambda path: dataset.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=encoding))]


def _require_vector_cube(value: Any, format_name: str) -> Any:
    vector_cube = _vector_cube_module()
    if vector_cube is None or not vector_cube.is_vector_cube(value):
        raise FormatUnsuitableException(
            reason=f"{format_name} stores vector data cubes only (e.g. from aggregate_spatial).")
    return vector_cube


def _publish_json(store: ResultStore, name: str, media_type: str, document: Any) -> AssetRecord:
    body = json.dumps(document, allow_nan=False, separators=(",", ":")).encode()
    return _publish(store, name, media_type, lambda path: path.write_bytes(body))


def _publish(store: ResultStore, name: str, media_type: str, write: Callable[[Path], Any]) -> AssetRecord:
    name = store.unique_name(name)
    published = store.publish(name, media_type, write)
    record = AssetRecord(name=name, key=published.key, media_type=media_type, title="Result",
                         file_size=published.size, file_checksum=published.checksum)
    store.add_asset(record)
    return record


def to_json_value(value: Any) -> Any:
    """A JSON-serialisable form of a process result (NaN and no-data as null)."""
    if isinstance(value, xr.DataArray):
        vector_cube = _vector_cube_module()
        if vector_cube is not None and vector_cube.is_vector_cube(value):
            return vector_cube.to_json(value)
        if value.size > MAX_JSON_RASTER_VALUES:
            raise FormatUnsuitableException(
                reason=f"the data has {value.size} values, JSON is for small results (at most "
                       f"{MAX_JSON_RASTER_VALUES}); save raster data cubes as GTiff or netCDF.")
        dims = [str(d) for d in value.dims]
        return {"dimensions": dims,
                "labels": {d: [to_json_value(v) for v in value[d].values] for d in dims if d in value.coords},
                "data": to_json_value(value.values)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return [to_json_value(v) for v in value.tolist()]
        return to_json_value(value.tolist())
    if isinstance(value, np.datetime64):
        return cubes.isoformat_utc(value)
    if isinstance(value, datetime):
        return cubes.isoformat_utc(value)
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    raise FormatUnsuitableException(reason=f"a {type(value).__name__} can't be stored as JSON")


def _vector_cube_module() -> Any:
    """`stratus_processing.vector_cube`, imported on first use (None while it doesn't exist)."""
    try:
        from stratus_processing import vector_cube  # noqa: PLC0415 - optional, and heavy (shapely)
    except ImportError:
        return None
    return vector_cube
