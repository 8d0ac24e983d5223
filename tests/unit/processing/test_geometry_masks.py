"""Which pixels a polygon covers (its pixel centres, an edge through a centre counting): the small-window path
that tests every centre with shapely gives exactly the pixels of the GDAL rasteriser path it stands in for."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import MultiPolygon, Polygon, box

from stratus_processing import geometry
from stratus_processing.grid import Grid

GRID = Grid(CRS.from_epsg(32632), Affine(10.0, 0.0, 600_000.0, 0.0, -10.0, 5_000_000.0), 64, 48)


def _polygons():
    rng = np.random.default_rng(7)
    x0, y0 = 600_000.0, 5_000_000.0
    shapes = [
        box(x0 + 15, y0 - 125, x0 + 205, y0 - 35),  # edges through pixel centres on all four sides
        box(x0 + 20, y0 - 120, x0 + 200, y0 - 40),  # edges on pixel borders
        Polygon([(x0 + 5, y0 - 5), (x0 + 305, y0 - 155), (x0 + 5, y0 - 305)]),  # diagonal edges through centres
        box(x0 + 50, y0 - 300, x0 + 400, y0 - 50).difference(box(x0 + 105, y0 - 245, x0 + 255, y0 - 105)),  # hole
        MultiPolygon([box(x0 + 0, y0 - 60, x0 + 60, y0 - 0), box(x0 + 400, y0 - 460, x0 + 635, y0 - 300)]),
        box(x0 + 31, y0 - 39, x0 + 38, y0 - 32),  # smaller than a pixel, around no centre
        box(x0 + 601, y0 - 478, x0 + 700, y0 - 400),  # partly off the grid
    ]
    for _ in range(12):  # random stars
        centre = rng.uniform([x0 + 50, y0 - 430], [x0 + 590, y0 - 50])
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(5, 120, 9)
        shapes.append(Polygon(np.c_[centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)]))
    return shapes


@pytest.mark.parametrize("polygon", _polygons(), ids=lambda p: f"{p.geom_type}-{p.area:.0f}")
def test_testing_centres_gives_the_rasteriser_paths_pixels(polygon, monkeypatch):
    tested = geometry.pixel_window(polygon, GRID)
    monkeypatch.setattr(geometry, "_CENTRE_TEST_MAX_PX", 0)
    rasterised = geometry.pixel_window(polygon, GRID)
    if rasterised is None:
        assert tested is None
        return
    assert (tested.rows, tested.cols) == (rasterised.rows, rasterised.cols)
    np.testing.assert_array_equal(tested.mask, rasterised.mask)


def test_a_centre_on_an_edge_counts_and_one_beyond_the_tolerance_does_not():
    x0, y0 = 600_000.0, 5_000_000.0
    on_centres = geometry.pixel_window(box(x0 + 15, y0 - 35, x0 + 35, y0 - 15), GRID)  # centres (15|25|35)
    assert on_centres.mask.sum() == 9
    just_off = geometry.pixel_window(box(x0 + 15.001, y0 - 35, x0 + 34.999, y0 - 15), GRID)
    assert just_off.mask.sum() == 3
