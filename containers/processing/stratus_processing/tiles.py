"""XYZ map tiles of result COGs: a 256x256 Web Mercator window read through the run reader (overviews,
kept-open datasets), values stretched over a colour map, no-data transparent, encoded as PNG.

Hand-rolled on rasterio rather than rio-tiler: the reader already picks overviews and keeps datasets open
between requests; what rio-tiler would add (morecantile, its own COG reader) is a second read path to keep
in step with the engine's, for a few lines of tile arithmetic."""

from __future__ import annotations

import math
import struct
import zlib
from functools import lru_cache

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling

from stratus.domain.web_services import COLORMAPS, MAX_ZOOM, TileStyle
from stratus_processing.grid import Grid
from stratus_processing.io.cog import RasterReader

TILE_PX = 256
WEB_MERCATOR = CRS.from_epsg(3857)
_HALF_WORLD_M = 20037508.342789244


class TileOutOfRange(ValueError):
    pass


def tile_grid(z: int, x: int, y: int, size: int = TILE_PX) -> Grid:
    """The pixel grid of XYZ tile z/x/y (y from the north) in Web Mercator."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise TileOutOfRange(f"no tile {z}/{x}/{y}")
    span = 2 * _HALF_WORLD_M / 2 ** z
    west, north = -_HALF_WORLD_M + x * span, _HALF_WORLD_M - y * span
    return Grid(WEB_MERCATOR, Affine(span / size, 0, west, 0, -span / size, north), size, size)


def tile_bounds_wgs84(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 2 ** z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


@lru_cache(maxsize=None)
def colour_table(name: str) -> np.ndarray:
    """256 RGB entries interpolated between the colour map's stops."""
    stops = COLORMAPS[name]
    positions = np.array([p for p, _ in stops])
    colours = np.array([c for _, c in stops], dtype=float)
    steps = np.linspace(0, 1, 256)
    return np.stack([np.interp(steps, positions, colours[:, i]) for i in range(3)], axis=1).round().astype(np.uint8)


@lru_cache(maxsize=None)
def _rgba_table(name: str) -> np.ndarray:
    """The colour table as RGBA, with a transparent 257th entry for no-data."""
    table = np.zeros((257, 4), dtype=np.uint8)
    table[:256, :3] = colour_table(name)
    table[:256, 3] = 255
    return table


def colourize(values: np.ndarray, style: TileStyle) -> np.ndarray:
    """RGBA (h, w, 4) of float values; NaN transparent, values beyond the range clamped to its ends."""
    low, high = style.rescale
    index = np.clip((values - low) * (255 / (high - low)), 0, 255)
    index = np.where(np.isfinite(values), index, 256).astype(np.uint16)
    return _rgba_table(style.colormap)[index]


def encode_png(rgba: np.ndarray) -> bytes:
    """A PNG (8-bit RGBA, no filter) of an (h, w, 4) array: zlib does the work; level 1 is fast and small
    enough for colour-mapped tiles."""
    height, width, _ = rgba.shape
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rgba.reshape(height, width * 4)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 1))
            + chunk(b"IEND", b""))


@lru_cache(maxsize=1)
def empty_tile() -> bytes:
    return encode_png(np.zeros((TILE_PX, TILE_PX, 4), dtype=np.uint8))


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def render_tile(reader: RasterReader, href: str, style: TileStyle, z: int, x: int, y: int) -> bytes:
    """The PNG of tile z/x/y; tiles beside the result's bbox are transparent without a read."""
    grid = tile_grid(z, x, y)
    if style.bbox is not None and not _overlaps(tile_bounds_wgs84(z, x, y), style.bbox):
        return empty_tile()
    values = reader.read(href, grid, band=style.band, resampling=Resampling.nearest)
    return encode_png(colourize(values, style))
