"""The raster data cube: an `xarray.DataArray` with dimensions named `t`, `bands`, `y`, `x`.

Conventions every process relies on:
- values are float64 with NaN as the only no-data marker (source no-data, pixels outside a scene and
  undefined results all become NaN); scale/offset are already applied. Loads give float32 instead
  where the graph stores only float32 rasters and the sources are 8/16-bit (`precision`), and
  processes keep a float32 cube float32 where numpy does;
- `y`/`x` coordinates are pixel centres; the CRS and pixel size travel in the scalar `spatial_ref`
  coordinate (the rioxarray/CF convention), which xarray keeps through arithmetic, selection and
  reductions, so the exact grid can always be rebuilt (`grid_of`);
- `bands` labels are band names, with the STAC `common_name` (e.g. "nir") as a coordinate along it;
- `t` labels are acquisition datetimes (numpy datetime64, UTC); the time span the cube represents
  survives a reduction over `t` in the `temporal_extent` attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from rasterio.crs import CRS

from stratus_processing.deferred import pd, xr
from stratus_processing.grid import Grid

T, BANDS, Y, X = "t", "bands", "y", "x"
DIMENSION_ORDER = (T, BANDS, Y, X)
SPATIAL_REF = "spatial_ref"
COMMON_NAME = "common_name"
TEMPORAL_EXTENT_ATTR = "temporal_extent"

# Double precision so chains of band math and temporal means reproduce a plain numpy computation of
# the same formula to the last bit of the float32 output; memory is bounded by windowed reads.
CUBE_DTYPE = np.float64
SINGLE_PRECISION = np.dtype(np.float32)
# Elements per piece of piecewise arithmetic (band math, temporal means, conversions of reads): 256 KiB
# of float64, a quarter of a core's L2 cache, so each piece is still cached for the next step.
PIECE_ELEMENTS = 32 * 1024


def make_cube(values: np.ndarray, *, grid: Grid, times: Sequence[datetime] | None = None,
              bands: Sequence[str] | None = None, common_names: Sequence[str | None] | None = None,
              temporal_extent: tuple[datetime, datetime] | None = None) -> xr.DataArray:
    """Wrap an array shaped (t?, bands?, y, x) as a cube; which leading dims exist follows the arguments."""
    dims: list[str] = []
    coords: dict[str, Any] = {}
    if times is not None:
        dims.append(T)
        coords[T] = pd.DatetimeIndex([_as_naive_utc(v) for v in times]).values.astype("datetime64[ns]")
    if bands is not None:
        dims.append(BANDS)
        coords[BANDS] = list(bands)
        names = list(common_names) if common_names is not None else [None] * len(bands)
        coords[COMMON_NAME] = (BANDS, np.array(["" if n is None else n for n in names], dtype=object))
    dims += [Y, X]
    coords[Y] = grid.y_coords()
    coords[X] = grid.x_coords()
    coords[SPATIAL_REF] = spatial_ref_coord(grid)
    attrs = {}
    if temporal_extent is not None:
        attrs[TEMPORAL_EXTENT_ATTR] = [isoformat_utc(temporal_extent[0]), isoformat_utc(temporal_extent[1])]
    return xr.DataArray(np.asarray(values, dtype=float_dtype(values)), dims=dims, coords=coords, attrs=attrs)


def float_dtype(values: Any) -> np.dtype:
    """The cube dtype for `values`: float32 stays float32 (a single-precision load and what is computed
    from it), anything else becomes CUBE_DTYPE."""
    return SINGLE_PRECISION if getattr(values, "dtype", None) == SINGLE_PRECISION else np.dtype(CUBE_DTYPE)


def spatial_ref_coord(grid: Grid) -> xr.Variable:
    return xr.Variable((), 0, attrs={"crs_wkt": _wkt_of(grid.crs), "resolution": list(grid.resolution)})


def is_cube(value: Any) -> bool:
    return isinstance(value, xr.DataArray) and Y in value.dims and X in value.dims and SPATIAL_REF in value.coords


def grid_of(cube: xr.DataArray) -> Grid:
    # Through the coordinates' variables: every tile asks this several times, and `cube[X]` builds a
    # DataArray each time.
    variables = cube.coords.variables
    ref = variables[SPATIAL_REF].attrs
    return Grid.from_coords(_crs_of(ref["crs_wkt"]), variables[X].values, variables[Y].values,
                            tuple(ref["resolution"]))


@lru_cache(maxsize=64)
def _wkt_of(crs: CRS) -> str:
    return crs.to_wkt()


@lru_cache(maxsize=64)
def _crs_of(wkt: str) -> CRS:
    return CRS.from_wkt(wkt)


def band_names(cube: xr.DataArray) -> list[str]:
    return [str(b) for b in cube[BANDS].values] if BANDS in cube.dims else []


def common_names(cube: xr.DataArray) -> dict[str, str]:
    """Band name -> STAC common name, for bands that have one."""
    if BANDS not in cube.dims or COMMON_NAME not in cube.coords:
        return {}
    return {str(b): str(c) for b, c in zip(cube[BANDS].values, cube[COMMON_NAME].values, strict=True) if c}


def temporal_extent(cube: xr.DataArray) -> tuple[datetime, datetime] | None:
    """First and last instant the cube's data stems from (kept when `t` was reduced away, or when its
    labels stopped being instants, e.g. `2024-djf` after aggregate_temporal_period)."""
    labels = cube.coords.variables.get(T) if T in cube.dims and cube.sizes[T] > 0 else None
    if labels is not None and np.issubdtype(labels.dtype, np.datetime64):
        # numpy's min/max and a cached conversion: every tile asks this of each cube it derives
        values = labels.values
        if not np.isnat(values).any():
            return _instant(values.min()), _instant(values.max())
        times = pd.DatetimeIndex(values)
        return _as_aware_utc(times.min()), _as_aware_utc(times.max())
    extent = cube.attrs.get(TEMPORAL_EXTENT_ATTR)
    if extent:
        return parse_utc(extent[0]), parse_utc(extent[1])
    return None


def carry_metadata(result: xr.DataArray, source: xr.DataArray) -> xr.DataArray:
    """Give a cube derived from `source` the grid reference and temporal extent it may have lost
    (e.g. when a callback combined it with constants or built it from scratch)."""
    if SPATIAL_REF not in result.coords and SPATIAL_REF in source.coords:
        result = result.assign_coords({SPATIAL_REF: source.coords[SPATIAL_REF]})
    extent = temporal_extent(source)
    if extent is not None and TEMPORAL_EXTENT_ATTR not in result.attrs:
        result = result.copy(deep=False)
        result.attrs[TEMPORAL_EXTENT_ATTR] = [isoformat_utc(extent[0]), isoformat_utc(extent[1])]
    return result


def time_labels(cube: xr.DataArray) -> list[datetime]:
    return [_as_aware_utc(v) for v in pd.DatetimeIndex(cube[T].values)] if T in cube.dims else []


# --- datetimes: aware UTC at the edges, naive UTC inside numpy ----------------------------------

def parse_utc(value: str) -> datetime:
    """An RFC 3339 date or date-time as an aware UTC datetime (a date means its midnight)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def isoformat_utc(value: datetime) -> str:
    return _as_aware_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_aware_utc(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


@lru_cache(maxsize=1024)
def _instant(value: np.datetime64) -> datetime:
    return _as_aware_utc(value)


def _as_naive_utc(value: Any) -> datetime:
    return _as_aware_utc(value).replace(tzinfo=None)
