"""Window reads of (cloud-optimised) GeoTIFFs onto a target grid, through GDAL's /vsis3.

Only the blocks covering the target grid are fetched: when the file is on the same pixel grid the
read is a plain window (exact source values); otherwise GDAL warps on the fly (nearest neighbour,
which keeps classification bands such as SCL valid), e.g. 20 m SCL onto the 10 m grid or an item
in a neighbouring UTM zone.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

import boto3
import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.session import AWSSession, DummySession
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from stratus_processing.grid import Grid

# GDAL settings for reading COGs over HTTP: don't list "directories" on open, only treat .tif as
# rasters, merge adjacent range requests and keep fetched blocks in memory.
_GDAL_READ_OPTIONS: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",  # seconds
    # Bytes of decoded blocks GDAL keeps (its default is 5 % of the machine's RAM). Tiles are read
    # once each, block-aligned, so a large cache only holds memory; this is enough for warped
    # reads, whose source blocks neighbouring output rows share. (rasterio wants an int here.)
    "GDAL_CACHEMAX": 128 * 1024 * 1024,
}

# A pixel offset within this fraction of an integer counts as aligned (float noise in transforms).
_ALIGNMENT_TOLERANCE_PX = 1e-6


def s3_endpoint_options(environ: Mapping[str, str]) -> dict[str, str]:
    """GDAL's S3 settings for a custom endpoint (`AWS_ENDPOINT_URL`, e.g. the local moto server):
    GDAL wants host:port without scheme, plain HTTP spelled out, and path-style addressing."""
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return {}
    parsed = urlparse(endpoint)
    return {
        "AWS_S3_ENDPOINT": parsed.netloc or parsed.path,
        "AWS_HTTPS": "NO" if parsed.scheme == "http" else "YES",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }


def gdal_path(href: str) -> str:
    """The GDAL path of an asset href: s3:// through /vsis3/, http(s) through /vsicurl/."""
    parsed = urlparse(href)
    if parsed.scheme == "s3":
        return f"/vsis3/{parsed.netloc}{parsed.path}"
    if parsed.scheme in ("http", "https"):
        return f"/vsicurl/{href}"
    return href


class RasterReader:
    """Reads single-band assets onto a target grid as float64 with NaN for no-data and gaps."""

    def __init__(self, *, gdal_options: Mapping[str, Any] | None = None, aws_session: boto3.Session | None = None,
                 resolve_href: Callable[[str], str] = gdal_path) -> None:
        self._gdal_options = {**_GDAL_READ_OPTIONS, **(gdal_options or {})}
        self._aws_session = aws_session
        self._resolve_href = resolve_href
        self._credentials_lock = threading.Lock()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RasterReader:
        environ = os.environ if environ is None else environ
        return cls(gdal_options=s3_endpoint_options(environ), aws_session=boto3.Session())

    def gdal_env(self, options: Mapping[str, Any] | None = None) -> rasterio.Env:
        """A fresh GDAL environment (per read and thread: rasterio environments are thread-local).
        Credentials are resolved each time, so Fargate role credentials that rotate during a long
        job are picked up by the next read. `options`: the asset's own (`StacItem.gdal_options`:
        AWS_REQUEST_PAYER for requester-pays buckets)."""
        session = DummySession()  # local files: no credentials, and no boto3 session built per open
        if self._aws_session is not None:
            # botocore sessions aren't thread-safe while resolving credentials; reads run in threads.
            with self._credentials_lock:
                session = AWSSession(self._aws_session)
        return rasterio.Env(session=session, **{**self._gdal_options, **(options or {})})

    def read(self, href: str, grid: Grid, *, nodata: float | None = None, band: int = 1,
             resampling: Resampling = Resampling.nearest,
             gdal_options: Mapping[str, Any] | None = None) -> np.ndarray:
        """Band `band` of the asset on `grid`; `nodata` (from STAC) overrides the file's own."""
        with self.gdal_env(gdal_options), rasterio.open(self._resolve_href(href)) as src:
            nodata = src.nodatavals[band - 1] if nodata is None else nodata
            if _same_pixel_grid(src, grid):
                values = _read_window(src, grid, band, masked=nodata is None)
            else:
                # Without a no-data value an alpha band marks the area the source doesn't cover.
                nodata_options = {"src_nodata": nodata, "nodata": nodata} if nodata is not None else {"add_alpha": True}
                with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                               height=grid.height, resampling=resampling, **nodata_options) as vrt:
                    values = np.ma.filled(vrt.read(band, masked=True).astype(np.float64), np.nan)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            values[values == nodata] = np.nan
        return values

    def grid_of(self, href: str, *, gdal_options: Mapping[str, Any] | None = None) -> Grid:
        """The asset's pixel grid, from the file's header (for items without projection metadata)."""
        with self.gdal_env(gdal_options), rasterio.open(self._resolve_href(href)) as src:
            return Grid(src.crs, src.transform, src.width, src.height)


def _same_pixel_grid(src: Any, grid: Grid) -> bool:
    if src.crs != grid.crs or src.transform.b != 0 or src.transform.d != 0:
        return False
    res_x, res_y = grid.resolution
    if not (math.isclose(src.transform.a, res_x, rel_tol=1e-9) and math.isclose(-src.transform.e, res_y, rel_tol=1e-9)):
        return False
    col = (grid.transform.c - src.transform.c) / res_x
    row = (src.transform.f - grid.transform.f) / res_y
    return abs(col - round(col)) < _ALIGNMENT_TOLERANCE_PX and abs(row - round(row)) < _ALIGNMENT_TOLERANCE_PX


def _read_window(src: Any, grid: Grid, band: int, *, masked: bool) -> np.ndarray:
    """Read the part of `grid` the file covers; the rest stays NaN. GDAL converts to float64 while
    decoding (no intermediate integer array); with `masked` the file's mask marks no-data."""
    res_x, res_y = grid.resolution
    col_off = round((grid.transform.c - src.transform.c) / res_x)
    row_off = round((src.transform.f - grid.transform.f) / res_y)
    col_start, row_start = max(col_off, 0), max(row_off, 0)
    col_stop, row_stop = min(col_off + grid.width, src.width), min(row_off + grid.height, src.height)
    if col_stop <= col_start or row_stop <= row_start:
        return np.full(grid.shape, np.nan, dtype=np.float64)
    window = Window(col_start, row_start, col_stop - col_start, row_stop - row_start)
    inside = (slice(row_start - row_off, row_stop - row_off), slice(col_start - col_off, col_stop - col_off))
    covers_grid = (row_start - row_off, col_start - col_off) == (0, 0) and (
        window.height, window.width) == grid.shape
    if masked:
        data = np.ma.filled(src.read(band, window=window, masked=True, out_dtype=np.float64), np.nan)
    else:
        data = src.read(band, window=window, out_dtype=np.float64)
    if covers_grid:
        return data
    out = np.full(grid.shape, np.nan, dtype=np.float64)
    out[inside] = data
    return out
