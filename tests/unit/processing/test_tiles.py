"""XYZ tile rendering from a COG: tile arithmetic, colour map, transparency and the PNG."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from stratus.domain.web_services import TileStyle
from stratus_processing.io.cog import RasterReader
from stratus_processing.tiles import TileOutOfRange, colourize, encode_png, render_tile, tile_bounds_wgs84, tile_grid


def _png_pixels(png: bytes) -> np.ndarray:
    """Decodes our own unfiltered RGBA PNG (IHDR then one IDAT)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    idat_at = png.index(b"IDAT")
    length = int.from_bytes(png[idat_at - 4:idat_at], "big")
    raw = np.frombuffer(zlib.decompress(png[idat_at + 4:idat_at + 4 + length]), dtype=np.uint8)
    return raw.reshape(height, width * 4 + 1)[:, 1:].reshape(height, width, 4)


def test_tile_grid_covers_the_world_at_zoom_0_and_splits_it_below():
    world = tile_grid(0, 0, 0)
    assert world.width == world.height == 256
    assert world.bounds == pytest.approx((-20037508.34, -20037508.34, 20037508.34, 20037508.34))
    west, south, east, north = tile_bounds_wgs84(1, 1, 0)
    assert (west, east) == (0, 180) and south == pytest.approx(0) and north == pytest.approx(85.0511, abs=1e-4)
    with pytest.raises(TileOutOfRange):
        tile_grid(2, 4, 0)


def test_values_are_stretched_over_the_colour_map_and_nan_is_transparent():
    style = TileStyle("k", 1, (-1.0, 1.0), "greys", None)
    rgba = colourize(np.array([[-1.0, 0.0, 1.0, 5.0, np.nan]]), style)
    assert rgba[0, :, 0].tolist() == [0, 127, 255, 255, 0]
    assert rgba[0, :, 3].tolist() == [255, 255, 255, 255, 0]


def test_a_tile_is_read_from_the_cog_through_the_reader(tmp_path):
    # Given a small UTM GeoTIFF near Bolzano: NDVI rising west to east, one no-data corner
    values = np.tile(np.linspace(-1, 1, 64, dtype="float32"), (64, 1))
    values[:8, :8] = np.nan
    path = tmp_path / "ndvi.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="float32", nodata=np.nan,
                       crs=CRS.from_epsg(32632), transform=Affine(20, 0, 679720, 0, -20, 5151920)) as dst:
        dst.write(values, 1)
    style = TileStyle("ndvi.tif", 1, (-1.0, 1.0), "greys", (11.342, 46.485, 11.359, 46.497))
    # When the zoom 14 tile holding it is rendered
    with RasterReader(resolve_href=str) as reader:
        png = render_tile(reader, str(path), style, 14, 8708, 5796)
        # Then the image is the data, grey rising to the east, transparent outside
        pixels = _png_pixels(png)
        assert pixels.shape == (256, 256, 4)
        inside = pixels[pixels[..., 3] == 255]
        assert 0 < len(inside) < 256 * 256 and inside[:, 0].min() < 64 and inside[:, 0].max() > 192
        row = pixels[np.argmax((pixels[..., 3] == 255).sum(axis=1))]
        opaque = row[row[:, 3] == 255, 0].astype(int)
        assert (np.diff(opaque) >= 0).all()
        # And a tile away from the result is transparent, without a read
        assert reader.opens.total() == 1
        assert not _png_pixels(render_tile(reader, str(path), style, 14, 0, 0))[..., 3].any()
        assert reader.opens.total() == 1


def test_png_round_trip():
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert (_png_pixels(encode_png(rgba)) == rgba).all()


def test_a_result_gone_is_a_rasterio_io_error_which_the_tiles_function_answers_404(tmp_path):
    from rasterio.errors import RasterioIOError

    style = TileStyle("gone.tif", 1, (-1.0, 1.0), "greys", None)
    with RasterReader(resolve_href=str) as reader, pytest.raises(RasterioIOError):
        render_tile(reader, str(tmp_path / "gone.tif"), style, 14, 8708, 5796)
