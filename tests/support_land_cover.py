"""Labelled training polygons from the demo collection's own land cover (the classes its scenes are
drawn from), and the agreement of a classified map with that truth: the land-cover tests' reference."""

from __future__ import annotations

import numpy as np
from pyproj import Transformer
from stratus_local.demo_data import AREAS, PIXEL_SIZE, _land_cover

BOLZANO = next(area for area in AREAS if area.name == "bolzano")
TO_LONLAT = Transformer.from_crs(BOLZANO.epsg, 4326, always_xy=True)
POLYGON_PX = 3  # 30 m squares, each inside one class


def truth() -> np.ndarray:
    """The Bolzano scenes' land-cover classes (water 0, built 1, bare 2, forest 3, crop 4) on their 10 m grid."""
    return _land_cover(BOLZANO)[0]


def area_lonlat(rows: slice, cols: slice) -> dict:
    """A GeoJSON polygon (lon/lat) over a block of the Bolzano grid, a pixel inside its edges."""
    west = BOLZANO.west + (cols.start + 0.5) * PIXEL_SIZE
    east = BOLZANO.west + (cols.stop - 0.5) * PIXEL_SIZE
    north = BOLZANO.north - (rows.start + 0.5) * PIXEL_SIZE
    south = BOLZANO.north - (rows.stop - 0.5) * PIXEL_SIZE
    return _polygon(west, south, east, north)


def training_polygons(rows: slice, cols: slice, per_class: int = 10, seed: int = 0) -> dict:
    """A FeatureCollection of `per_class` 30 m squares per class, each wholly inside one class, within the
    block, with the class as the property `target`."""
    cover = truth()
    rng = np.random.default_rng(seed)
    features = []
    for label in np.unique(cover[rows, cols]):
        candidates = [(r, c) for r in range(rows.start + 1, rows.stop - POLYGON_PX - 1, POLYGON_PX)
                      for c in range(cols.start + 1, cols.stop - POLYGON_PX - 1, POLYGON_PX)
                      if (cover[r:r + POLYGON_PX, c:c + POLYGON_PX] == label).all()]
        if len(candidates) < 4:
            continue
        for index in rng.choice(len(candidates), size=min(per_class, len(candidates)), replace=False):
            r, c = candidates[index]
            west, north = BOLZANO.west + c * PIXEL_SIZE, BOLZANO.north - r * PIXEL_SIZE
            inner = 1.0  # metres inside the pixel edges: only the square's own pixel centres count
            features.append({"type": "Feature", "properties": {"target": int(label)},
                             "geometry": _polygon(west + inner, north - POLYGON_PX * PIXEL_SIZE + inner,
                                                  west + POLYGON_PX * PIXEL_SIZE - inner, north - inner)})
    return {"type": "FeatureCollection", "features": features}


def agreement(classified: np.ndarray, transform, crs_epsg: int = 32632) -> float:
    """Share of the map's classified pixels whose class is the truth at their centre (same UTM grid)."""
    assert crs_epsg == BOLZANO.epsg
    cover = truth()
    rows, cols = np.indices(classified.shape)
    xs, ys = transform @ (cols + 0.5, rows + 0.5)
    truth_rows = ((BOLZANO.north - ys) // PIXEL_SIZE).astype(int)
    truth_cols = ((xs - BOLZANO.west) // PIXEL_SIZE).astype(int)
    valid = np.isfinite(classified) & (classified != 65535)
    return float(np.mean(classified[valid] == cover[truth_rows[valid], truth_cols[valid]]))


def _polygon(west: float, south: float, east: float, north: float) -> dict:
    ring = [TO_LONLAT.transform(x, y) for x, y in ((west, south), (east, south), (east, north), (west, north))]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [[[round(x, 8), round(y, 8)] for x, y in ring]]}

