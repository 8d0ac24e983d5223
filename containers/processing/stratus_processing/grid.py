"""The spatial grid of a raster: CRS, affine transform and size (north-up, no rotation).

Shared by the data cube (which stores it as coordinates) and the readers/writers (which need it as
a rasterio transform), so the two always agree on where a pixel is.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import rasterio.env
from affine import Affine
from rasterio import warp
from rasterio.crs import CRS
from rasterio.session import DummySession

WGS84 = CRS.from_epsg(4326)

# Fraction of a pixel below which a coordinate counts as "on" a grid line: absorbs float noise of
# coordinates that were computed (e.g. 679720.0000000001) without moving a real boundary.
_SNAP_TOLERANCE_PX = 1e-6
# Points per edge when projecting a footprint: enough to follow the curvature of projected edges.
_FOOTPRINT_EDGE_POINTS = 8


def _credential_free_env() -> contextlib.AbstractContextManager:
    """Reprojection math needs a GDAL environment but no credentials. Outside one, rasterio builds a default
    environment per call, and with AWS credentials in the environment (Batch, Lambda) that is a boto3 session
    each time: ~50 ms per call, several per run."""
    return contextlib.nullcontext() if rasterio.env.hasenv() else rasterio.Env(session=DummySession())


def transform_bounds(source: Any, target: Any, *bounds: float, **options: Any) -> tuple[float, float, float, float]:
    """`rasterio.warp.transform_bounds` without the per-call credential lookup (the engine's only entry to it)."""
    with _credential_free_env():
        return warp.transform_bounds(source, target, *bounds, **options)


def transform_geom(source: Any, target: Any, geometry: Any, **options: Any) -> Any:
    """`rasterio.warp.transform_geom` without the per-call credential lookup (the engine's only entry to it)."""
    with _credential_free_env():
        return warp.transform_geom(source, target, geometry, **options)


@dataclass(frozen=True)
class Grid:
    crs: CRS
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.transform.b != 0 or self.transform.d != 0 or self.transform.e >= 0:
            raise ValueError(f"only north-up grids without rotation are supported, got {self.transform!r}")

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units, both positive."""
        return self.transform.a, -self.transform.e

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the grid's CRS."""
        west, north = self.transform.c, self.transform.f
        return west, north + self.transform.e * self.height, west + self.transform.a * self.width, north

    @property
    def epsg(self) -> int | None:
        return self.crs.to_epsg()

    def x_coords(self) -> np.ndarray:
        """Pixel-centre x coordinates, west to east."""
        return self.transform.c + (np.arange(self.width) + 0.5) * self.transform.a

    def y_coords(self) -> np.ndarray:
        """Pixel-centre y coordinates, north to south."""
        return self.transform.f + (np.arange(self.height) + 0.5) * self.transform.e

    def bounds_wgs84(self) -> tuple[float, float, float, float]:
        return transform_bounds(self.crs, WGS84, *self.bounds, densify_pts=21)

    def footprint_wgs84(self) -> dict[str, Any]:
        """The grid's outline as a GeoJSON Polygon in WGS84 (edges densified so UTM curvature shows)."""
        west, south, east, north = self.bounds
        corners = [(west, south), (east, south), (east, north), (west, north), (west, south)]
        if self.crs == WGS84:
            return {"type": "Polygon", "coordinates": [[list(c) for c in corners]]}
        ring = [(x0 + (x1 - x0) * i / _FOOTPRINT_EDGE_POINTS, y0 + (y1 - y0) * i / _FOOTPRINT_EDGE_POINTS)
                for (x0, y0), (x1, y1) in pairwise(corners) for i in range(_FOOTPRINT_EDGE_POINTS)]
        ring.append(corners[0])
        return transform_geom(self.crs, WGS84, {"type": "Polygon", "coordinates": [ring]}, precision=7)

    @classmethod
    def covering(cls, crs: CRS, bounds: tuple[float, float, float, float], *,
                 origin: tuple[float, float], resolution: tuple[float, float]) -> Grid:
        """The pixels of the grid aligned to `origin` whose centres lie inside `bounds` (openEO's rule
        for load_collection: a pixel belongs to the extent when its centre intersects it).

        May be empty (width or height 0) when the bounds fall between pixel centres.
        """
        west, south, east, north = bounds
        res_x, res_y = resolution
        origin_x, origin_y = origin
        first_col = math.ceil((west - origin_x) / res_x - 0.5 - _SNAP_TOLERANCE_PX)
        last_col = math.floor((east - origin_x) / res_x - 0.5 + _SNAP_TOLERANCE_PX)
        first_row = math.ceil((origin_y - north) / res_y - 0.5 - _SNAP_TOLERANCE_PX)
        last_row = math.floor((origin_y - south) / res_y - 0.5 + _SNAP_TOLERANCE_PX)
        transform = Affine(res_x, 0.0, origin_x + first_col * res_x, 0.0, -res_y, origin_y - first_row * res_y)
        return cls(crs, transform, max(0, last_col - first_col + 1), max(0, last_row - first_row + 1))

    @classmethod
    def from_coords(cls, crs: CRS, x: np.ndarray, y: np.ndarray, resolution: tuple[float, float]) -> Grid:
        """Rebuild the grid from pixel-centre coordinates (robust to slicing of the cube)."""
        res_x, res_y = resolution
        transform = Affine(res_x, 0.0, float(x[0]) - res_x / 2, 0.0, -res_y, float(y[0]) + res_y / 2)
        return cls(crs, transform, len(x), len(y))


def parse_crs(value: Any) -> CRS:
    """An openEO CRS value (EPSG code as int or digits, 'EPSG:xxxx', WKT2 or PROJ string) as a rasterio CRS."""
    if isinstance(value, CRS):
        return value
    if isinstance(value, bool):
        raise TypeError(f"not a CRS: {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return CRS.from_epsg(int(value))
    if isinstance(value, str):
        return CRS.from_user_input(value)
    raise TypeError(f"not a CRS: {value!r}")
