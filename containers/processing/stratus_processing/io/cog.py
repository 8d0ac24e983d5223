"""Window reads of (cloud-optimised) GeoTIFFs onto a target grid, through GDAL's /vsis3 and /vsicurl.

Only the blocks covering the target grid are fetched: when the file is on the same pixel grid the
read is a plain window (exact source values); otherwise GDAL warps on the fly (nearest neighbour,
which keeps classification bands such as SCL valid), e.g. 20 m SCL onto the 10 m grid or an item
in a neighbouring UTM zone. A grid coarser than the file reads the file's overview that is closest
to it but not coarser (as GDAL's own RasterIO and gdalwarp do), so a 60 m preview of a 10 m band
fetches a 36th of the bytes.

A reader lives for one run (a job, a synchronous request): each asset is opened once (a HEAD and
one header read over the network) and its dataset handles are kept for every later read of the
run, e.g. each tile of tiled execution; a handle serves one thread at a time, so an asset read by
two threads at once gets a second handle (opened from GDAL's cache of the header, no request).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.session import AWSSession, DummySession
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from stratus import aws

from stratus_processing.cube import PIECE_ELEMENTS
from stratus_processing.grid import Grid, transform_bounds

# GDAL settings for reading COGs over HTTP (S3 through /vsis3/, any https host through /vsicurl/):
_GDAL_READ_OPTIONS: dict[str, Any] = {
    # Opening "s3://bucket/a/B04.tif" must not list the "directory" (a LIST request per open, slow and
    # billed) looking for sidecar files (.aux.xml, .ovr, .msk): COGs carry everything inside.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Only these are probed as rasters over HTTP; anything else fails fast instead of trying drivers.
    # (Compared without case, so Landsat's .TIF match; a query string, as in signed URLs, is fine.)
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
    # One read of many blocks asks for their byte ranges together: neighbouring ranges in the file
    # become one request (a COG stores a row of blocks contiguously), the others go out in parallel.
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    # Over HTTP/2 (CDNs, many STAC asset hosts; S3 itself speaks HTTP/1.1) parallel requests share
    # one connection; over HTTP/1.1 curl keeps connections alive between requests (keep-alive is
    # curl's default, and GDAL keeps one curl handle per thread), so no request pays a new TLS handshake.
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2TLS",
    # Bytes fetched by the first request of an open: one request must cover the header (the IFDs and
    # block offsets, which a COG keeps at its start): ~3 KB for a Sentinel-2 L2A band (10980 px,
    # 1024 px blocks, 4 overviews), ~10 KB for Landsat C2 (256 px blocks), < 1 KB for a DEM tile.
    # Each further header request would cost a round trip (20-30 ms in region, more across).
    "GDAL_INGESTED_BYTES_AT_OPEN": "16384",
    # Unit /vsicurl/ fetches in (GDAL's default 16 KB): a read's range is widened to whole chunks,
    # so smaller chunks waste fewer bytes around each block (up to 2 chunks per read; a request per
    # read either way). The header read above keeps its own size.
    "CPL_VSIL_CURL_CHUNK_SIZE": "4096",
    # /vsicurl/ keeps fetched ranges in a process-wide cache (shared by all handles of a file, 16 MB by
    # default): header chunks and neighbouring tiles' shared chunks are served from it. VSI_CACHE
    # would add a second, per-handle cache on top (25 MB each) that reads in 32 KB pieces: off.
    "VSI_CACHE": "FALSE",
    "CPL_VSIL_CURL_CACHE_SIZE": str(64 * 1024 * 1024),
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",  # seconds
    # Bytes of decoded blocks GDAL keeps (its default is 5 % of the machine's RAM). Tiles are read
    # once each, block-aligned, so a large cache only holds memory; this is enough for warped
    # reads, whose source blocks neighbouring output rows share. (rasterio wants an int here.)
    "GDAL_CACHEMAX": 128 * 1024 * 1024,
}

# GDAL's network file systems: reads from them wait for requests (what read-ahead hides); other paths
# (local files, /vsimem/, archives of local files) are read where they are needed.
_NETWORK_PREFIXES = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsiwebhdfs",
                     "/vsihdfs")
# A pixel offset within this fraction of an integer counts as aligned (float noise in transforms).
_ALIGNMENT_TOLERANCE_PX = 1e-6
# Idle dataset handles kept per reader (each holds a parsed header, a few KB to a few hundred KB).
MAX_IDLE_DATASETS = 256
# Handles older than this are reopened: an S3 handle keeps the credentials it was opened with, and
# the task role's credentials rotate (reopening reads the header from GDAL's cache: no request).
DATASET_MAX_AGE_S = 10 * 60
# Bytes of prefetched windows kept decoded (in the file's type) until the reads of their tiles take
# them; a prefetch beyond this is only a warm-up of GDAL's caches. Tiled runs keep about three
# batches of read-ahead here (4 dates × 2 uint16 bands of four 512 px tiles: 16 MiB a batch).
DECODED_WINDOWS_MAX_BYTES = 256 * 1024 * 1024


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
    """Reads single-band assets onto a target grid as float64 (or float32) with NaN for no-data and gaps.

    One reader per run; `close()` (or `with`) closes the datasets it keeps open."""

    def __init__(self, *, gdal_options: Mapping[str, Any] | None = None, aws_session: boto3.Session | None = None,
                 resolve_href: Callable[[str], str] = gdal_path) -> None:
        self._gdal_options = {**_GDAL_READ_OPTIONS, **(gdal_options or {})}
        self._aws_session = aws_session
        self._resolve_href = resolve_href
        self._credentials_lock = threading.Lock()
        self._datasets = _DatasetPool(self._open)
        self._decoded = _DecodedWindows(DECODED_WINDOWS_MAX_BYTES)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RasterReader:
        environ = os.environ if environ is None else environ
        # the process's session, not a new one per run: building one costs ~50-80 ms (sync requests pay it)
        return cls(gdal_options=s3_endpoint_options(environ), aws_session=aws.session())

    def __enter__(self) -> RasterReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._datasets.close()
        self._decoded.clear()

    @property
    def opens(self) -> Counter[str]:
        """How many times each GDAL path (with `#overview=<level>` for overviews) was opened."""
        return self._datasets.opens

    @property
    def kept_bytes(self) -> int:
        """Bytes of prefetched windows kept decoded, waiting for their reads."""
        return self._decoded.bytes

    def gdal_env(self, options: Mapping[str, Any] | None = None) -> rasterio.Env:
        """A fresh GDAL environment (per call and thread: rasterio environments are thread-local).
        Credentials are resolved each time, so Fargate role credentials that rotate during a long
        job reach the handles opened (or reopened, see DATASET_MAX_AGE_S) after it. `options`: the
        asset's own (`StacItem.gdal_options`: AWS_REQUEST_PAYER for requester-pays buckets)."""
        session = DummySession()  # local files: no credentials, and no boto3 session built per open
        if self._aws_session is not None:
            # botocore sessions aren't thread-safe while resolving credentials; reads run in threads.
            with self._credentials_lock:
                session = AWSSession(self._aws_session)
        return rasterio.Env(session=session, **{**self._gdal_options, **(options or {})})

    def read(self, href: str, grid: Grid, *, nodata: float | None = None, band: int = 1,
             resampling: Resampling = Resampling.nearest,
             gdal_options: Mapping[str, Any] | None = None, out: np.ndarray | None = None,
             scale: float = 1.0, offset: float = 0.0, dtype: np.dtype | type = np.float64) -> np.ndarray:
        """Band `band` of the asset on `grid` as `dtype` (float64 or float32), times `scale` plus
        `offset` (no-data stays NaN); `nodata` (from STAC) overrides the file's own. With `out` (of
        `dtype`, the grid's shape) the values are written into it, and it is returned. A window
        prefetched for a larger grid is taken from memory (decoded once, in `prefetch`)."""
        path = self._resolve_href(href)
        dtype = np.dtype(dtype) if out is None else out.dtype
        taken = self._decoded.take(path, band, grid, nodata, out, scale=scale, offset=offset, dtype=dtype)
        if taken is not None:
            return taken
        # (A checkout may open the file in its own environment: entered first, not nested.)
        with self._datasets.checkout(path, options=gdal_options) as full, self.gdal_env(gdal_options):
            level = _overview_level(full, grid, band)
            nodata = full.nodatavals[band - 1] if nodata is None else nodata
            if level is None:
                values = _read_onto(full, grid, band, nodata, resampling, out, dtype)
        if level is not None:
            with self._datasets.checkout(path, level, options=gdal_options) as overview, self.gdal_env(gdal_options):
                values = _read_onto(overview, grid, band, nodata, resampling, out, dtype)
        if nodata is not None and not _is_nan(nodata):
            values[values == nodata] = np.nan
        return _scaled(values, scale, offset)

    def is_remote(self, href: str) -> bool:
        """Whether reading the asset waits for the network (GDAL's path on one of its network file systems)."""
        path = self._resolve_href(href)
        return any(path.startswith(prefix) or f"/{prefix}/" in path for prefix in _NETWORK_PREFIXES)

    def prefetch(self, href: str, grid: Grid, *, band: int = 1, nodata: float | None = None,
                 gdal_options: Mapping[str, Any] | None = None, owner: object = None) -> None:
        """Fetch and decode the blocks covering `grid` (in one merged request where they are
        neighbours) and keep them, in the file's type, until reads of windows of `grid` take them:
        each block is decoded once, and those reads need no request. Reads that need warping, and
        files whose no-data is a mask rather than a value, are only fetched into /vsicurl/'s cache.
        `owner` (e.g. a run) can drop what is left of its windows with `drop_kept` when it ends."""
        path = self._resolve_href(href)
        with self._datasets.checkout(path, options=gdal_options) as full, self.gdal_env(gdal_options):
            level = _overview_level(full, grid, band)
            if level is None:
                self._keep_window(full, path, grid, band, nodata, owner)
        if level is not None:
            with self._datasets.checkout(path, level, options=gdal_options) as overview, self.gdal_env(gdal_options):
                self._keep_window(overview, path, grid, band, nodata, owner)

    def drop_kept(self, owner: object) -> None:
        """Forget the windows `owner` prefetched that reads have not taken (a run that failed or ended
        early): a reader living for many runs (a warm sync container) keeps nothing of a finished one."""
        self._decoded.drop(owner)

    def _keep_window(self, src: Any, path: str, grid: Grid, band: int, nodata: float | None,
                     owner: object) -> None:
        if not _same_pixel_grid(src, grid) or (covered := _covered_window(src, grid)) is None:
            return
        window = covered[0]
        values = src.read(band, window=window)
        nodata = src.nodatavals[band - 1] if nodata is None else nodata
        if nodata is not None:  # (else the file's mask marks no-data: left to the read)
            self._decoded.keep(path, band, _SourceGrid.of(src), window, values, nodata, owner)

    def grid_of(self, href: str, *, gdal_options: Mapping[str, Any] | None = None) -> Grid:
        """The asset's pixel grid, from the file's header (for items without projection metadata)."""
        with self._datasets.checkout(self._resolve_href(href), options=gdal_options) as src:
            return Grid(src.crs, src.transform, src.width, src.height)

    def _open(self, path: str, overview_level: int | None, gdal_options: Mapping[str, Any] | None) -> Any:
        options = {} if overview_level is None else {"overview_level": overview_level}
        with self.gdal_env(gdal_options):
            return rasterio.open(path, **options)


class _DatasetPool:
    """Open datasets by (path, overview level), each used by one thread at a time and kept for the
    next read. The first open of a path is made alone (a second thread waits for it instead of
    opening in parallel), so the header crosses the network once; later handles of the path open
    from GDAL's /vsicurl/ cache."""

    def __init__(self, open_dataset: Callable[[str, int | None, Mapping[str, Any] | None], Any], *, max_idle: int = MAX_IDLE_DATASETS,
                 max_age_s: float = DATASET_MAX_AGE_S) -> None:
        self._open_dataset = open_dataset
        self._max_idle = max_idle
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._idle: OrderedDict[tuple[str, int | None], list[tuple[Any, float]]] = OrderedDict()
        self._idle_count = 0
        self._open_locks: dict[str, threading.Lock] = {}
        self.opens: Counter[str] = Counter()

    @contextmanager
    def checkout(self, path: str, overview_level: int | None = None, *,
                 options: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """A handle of `path` (an asset's GDAL `options` are the same for every read of it)."""
        key = (path, overview_level)
        dataset, opened_at = self._take(key)
        if dataset is None:
            with self._open_lock(path):
                dataset, opened_at = self._take(key)  # another thread may have opened one meanwhile
                if dataset is None:
                    dataset, opened_at = self._open_dataset(path, overview_level, options), time.monotonic()
                    with self._lock:
                        label = path if overview_level is None else f"{path}#overview={overview_level}"
                        self.opens[label] += 1
        try:
            yield dataset
        except BaseException:
            dataset.close()  # a failed read may leave the handle in any state
            raise
        self._give_back(key, dataset, opened_at)

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._idle_count = self._idle, OrderedDict(), 0
        for handles in idle.values():
            for dataset, _ in handles:
                dataset.close()

    def _take(self, key: tuple[str, int | None]) -> tuple[Any, float]:
        stale = []
        found: tuple[Any, float] = (None, 0.0)
        with self._lock:
            handles = self._idle.get(key)
            while handles:
                dataset, opened_at = handles.pop()
                self._idle_count -= 1
                if time.monotonic() - opened_at > self._max_age_s:
                    stale.append(dataset)
                else:
                    found = (dataset, opened_at)
                    break
            if handles == []:
                del self._idle[key]
        for dataset in stale:
            dataset.close()
        return found

    def _give_back(self, key: tuple[str, int | None], dataset: Any, opened_at: float) -> None:
        evicted = []
        with self._lock:
            self._idle.setdefault(key, []).append((dataset, opened_at))
            self._idle.move_to_end(key)
            self._idle_count += 1
            while self._idle_count > self._max_idle:  # close the least recently used path's handles
                oldest_key, handles = next(iter(self._idle.items()))
                evicted.append(handles.pop(0)[0])
                self._idle_count -= 1
                if not handles:
                    del self._idle[oldest_key]
        for old in evicted:
            old.close()

    def _open_lock(self, path: str) -> threading.Lock:
        with self._lock:
            return self._open_locks.setdefault(path, threading.Lock())


def _read_onto(src: Any, grid: Grid, band: int, nodata: float | None, resampling: Resampling,
               out: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    if _same_pixel_grid(src, grid):
        return _read_window(src, grid, band, masked=nodata is None, out=out, dtype=dtype)
    # Without a no-data value an alpha band marks the area the source doesn't cover.
    nodata_options = {"src_nodata": nodata, "nodata": nodata} if nodata is not None else {"add_alpha": True}
    with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                   height=grid.height, resampling=resampling, **nodata_options) as vrt:
        return _into(out, np.ma.filled(vrt.read(band, masked=True).astype(dtype), np.nan))


def _overview_level(src: Any, grid: Grid, band: int) -> int | None:
    """The overview to read `grid` from: the coarsest whose pixels are not coarser than the grid's
    (None: the full resolution)."""
    factors = src.overviews(band)
    if not factors:
        return None
    if grid.crs == src.crs:
        res_x, res_y = grid.resolution
    else:  # the grid's pixel size measured in the file's CRS
        west, south, east, north = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
        res_x, res_y = (east - west) / grid.width, (north - south) / grid.height
    src_x, src_y = src.res
    coarser_by = min(res_x / src_x, res_y / src_y) * (1 + 1e-9)
    usable = [level for level, factor in enumerate(factors) if factor <= coarser_by]
    return usable[-1] if usable else None


def _same_pixel_grid(src: Any, grid: Grid) -> bool:
    if src.crs != grid.crs or src.transform.b != 0 or src.transform.d != 0:
        return False
    res_x, res_y = grid.resolution
    if not (math.isclose(src.transform.a, res_x, rel_tol=1e-9) and math.isclose(-src.transform.e, res_y, rel_tol=1e-9)):
        return False
    col = (grid.transform.c - src.transform.c) / res_x
    row = (src.transform.f - grid.transform.f) / res_y
    return abs(col - round(col)) < _ALIGNMENT_TOLERANCE_PX and abs(row - round(row)) < _ALIGNMENT_TOLERANCE_PX


def _covered_window(src: Any, grid: Grid) -> tuple[Window, tuple[slice, slice]] | None:
    """The window of the file covering `grid` (an aligned grid), and where it lies in the grid."""
    res_x, res_y = grid.resolution
    col_off = round((grid.transform.c - src.transform.c) / res_x)
    row_off = round((src.transform.f - grid.transform.f) / res_y)
    col_start, row_start = max(col_off, 0), max(row_off, 0)
    col_stop, row_stop = min(col_off + grid.width, src.width), min(row_off + grid.height, src.height)
    if col_stop <= col_start or row_stop <= row_start:
        return None
    window = Window(col_start, row_start, col_stop - col_start, row_stop - row_start)
    return window, (slice(row_start - row_off, row_stop - row_off), slice(col_start - col_off, col_stop - col_off))


def _read_window(src: Any, grid: Grid, band: int, *, masked: bool, out: np.ndarray | None,
                 dtype: np.dtype) -> np.ndarray:
    """Read the part of `grid` the file covers; the rest stays NaN. GDAL converts to `dtype` while
    decoding (no intermediate integer array), into `out` when the file covers the whole grid; with
    `masked` the file's mask marks no-data."""
    covered = _covered_window(src, grid)
    if covered is None:
        return np.full(grid.shape, np.nan, dtype=dtype) if out is None else _into(out, np.nan)
    window, inside = covered
    covers_grid = (inside[0].start, inside[1].start) == (0, 0) and (window.height, window.width) == grid.shape
    if masked:
        data = np.ma.filled(src.read(band, window=window, masked=True, out_dtype=dtype), np.nan)
    elif covers_grid and out is not None:
        return src.read(band, window=window, out=out)
    else:
        data = src.read(band, window=window, out_dtype=dtype)
    if covers_grid:
        return _into(out, data)
    target = np.empty(grid.shape, dtype=dtype) if out is None else out
    target.fill(np.nan)
    target[inside] = data
    return target


def _is_nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _same_value(a: float, b: float) -> bool:
    return a == b or (_is_nan(a) and _is_nan(b))


def _scaled(values: np.ndarray, scale: float, offset: float) -> np.ndarray:
    if scale != 1.0:
        values *= scale
    if offset:
        values += offset
    return values


@dataclass(frozen=True)
class _SourceGrid:
    """Where a file (or one of its overviews) lies: what `_same_pixel_grid` and `_covered_window` read."""

    crs: Any
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, src: Any) -> _SourceGrid:
        return cls(src.crs, src.transform, src.width, src.height)


@dataclass
class _DecodedWindow:
    source: _SourceGrid
    window: Window
    values: np.ndarray  # in the file's type
    nodata: float
    unread_px: int  # pixels no read has taken yet: at 0 the window is dropped
    owner: object = None

    def contains(self, window: Window) -> bool:
        return (self.window.col_off <= window.col_off and self.window.row_off <= window.row_off
                and window.col_off + window.width <= self.window.col_off + self.window.width
                and window.row_off + window.height <= self.window.row_off + self.window.height)


class _DecodedWindows:
    """Prefetched windows, decoded, by (path, band), until reads have taken every pixel of them once.
    A tiled run's tiles cut each window exactly, so a window lives from its prefetch to the last of
    its tiles' reads; a pixel read twice (two loads of one asset) is decoded again by the second."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int], list[_DecodedWindow]] = {}

    def keep(self, path: str, band: int, source: _SourceGrid, window: Window, values: np.ndarray,
             nodata: float, owner: object = None) -> None:
        with self._lock:
            if self._bytes + values.nbytes > self._max_bytes:
                return
            self._bytes += values.nbytes
            self._windows.setdefault((path, band), []).append(
                _DecodedWindow(source, window, values, nodata, int(window.width * window.height), owner))

    def take(self, path: str, band: int, grid: Grid, nodata: float | None, out: np.ndarray | None, *,
             scale: float, offset: float, dtype: np.dtype) -> np.ndarray | None:
        """`grid`'s values as `dtype` (that of `out` when given) times `scale` plus `offset`, NaN for
        no-data, when a kept window holds them (None: not kept). Bit for bit what GDAL's conversion to
        `dtype` then the scaling in `dtype` give."""
        with self._lock:
            windows = self._windows.get((path, band))
            if not windows:
                return None
            for held in windows:
                if not _same_pixel_grid(held.source, grid) or (covered := _covered_window(held.source, grid)) is None:
                    continue
                window, inside = covered
                if held.contains(window) and (nodata is None or _same_value(nodata, held.nodata)):
                    break
            else:
                return None
            held.unread_px -= int(window.width * window.height)
            if held.unread_px <= 0:
                windows.remove(held)
                self._bytes -= held.values.nbytes
                if not windows:
                    del self._windows[(path, band)]
        row, col = int(window.row_off - held.window.row_off), int(window.col_off - held.window.col_off)
        native = held.values[row:row + int(window.height), col:col + int(window.width)]
        covers_grid = (inside[0].start, inside[1].start) == (0, 0) and native.shape == grid.shape
        target = (np.empty(grid.shape, dtype=dtype) if out is None else out)
        if not covers_grid:
            target.fill(np.nan)
        part = target[inside]
        # A few rows at a time, so that each piece is still in the CPU's cache for the next step.
        rows = max(1, PIECE_ELEMENTS // max(1, native.shape[1]))
        masks = np.empty((min(rows, native.shape[0]), native.shape[1]), dtype=bool)
        for row in range(0, native.shape[0], rows):
            source, piece = native[row:row + rows], part[row:row + rows]
            if scale != 1.0:  # the cast and the scaling in one pass (the ufunc casts first)
                np.multiply(source, scale, out=piece, dtype=target.dtype)
            else:
                piece[...] = source
            if offset:
                piece += offset
            if not _is_nan(held.nodata):
                missing = masks[:source.shape[0]]
                np.equal(source, held.nodata, out=missing)
                np.copyto(piece, np.nan, where=missing)
        return target

    @property
    def bytes(self) -> int:
        return self._bytes

    def drop(self, owner: object) -> None:
        with self._lock:
            for key, windows in list(self._windows.items()):
                kept = [held for held in windows if held.owner is not owner]
                self._bytes -= sum(held.values.nbytes for held in windows if held.owner is owner)
                if kept:
                    self._windows[key] = kept
                else:
                    del self._windows[key]

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._bytes = 0


def _into(out: np.ndarray | None, values: np.ndarray | float) -> np.ndarray:
    """`values` copied into `out` when given, else themselves."""
    if out is None:
        return values
    out[...] = values
    return out
