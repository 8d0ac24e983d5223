"""Overviews of floating-point GeoTIFF results, built by the windows as they are written (`io.overviews`),
read back from the published COGs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from stratus.file_formats import GTIFF
from stratus_processing.io.overviews import block_sums, overview_sizes
from stratus_processing.io.save import open_sink
from stratus_processing.results import DirectoryResultStore

from tests.unit.processing.processing_testkit import red_nir_cube, small_grid

# Odd sides, so that the last blocks of each level are partial: overviews of 551 × 351 and 276 × 176 px
# (GDAL's own would be 550 × 350 and 275 × 175)
WIDTH, HEIGHT = 1101, 701


def field(dates: int = 1) -> np.ndarray:
    """Smooth values with gaps: a no-data rectangle, and scattered no-data pixels."""
    rng = np.random.default_rng(7)
    values = rng.normal(0.4, 0.1, size=(dates, HEIGHT, WIDTH))
    values[:, 100:180, 200:333] = np.nan
    values[rng.random(values.shape) < 0.05] = np.nan
    return values


def written_cogs(tmp_path, name, values, window, options=None):
    """Publish `values` (t × y × x, two bands: the values and their double) through a GTiff sink, written
    window by window (`window` px squares, row by row); the COGs' paths."""
    grid = small_grid(WIDTH, HEIGHT)
    cube = red_nir_cube(values, values * 2, grid=grid)
    if values.shape[0] == 1:
        cube = cube.isel(t=0, drop=True)
    store = DirectoryResultStore(tmp_path / name)
    sink = open_sink(GTIFF, store, grid, options or {})
    for row in range(0, HEIGHT, window):
        for col in range(0, WIDTH, window):
            sink.write(cube.isel(y=slice(row, row + window), x=slice(col, col + window)))
    sink.finalize()
    return [store.path_of(asset.key) for asset in store.assets]


def overview_levels(path):
    with rasterio.open(path) as src:
        levels = len(src.overviews(1))
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    levels_read = []
    for level in range(levels):
        with rasterio.open(path, overview_level=level) as overview:
            levels_read.append(overview.read())
    return levels_read


def block_means(values: np.ndarray, factor: int) -> np.ndarray:
    """numpy's mean of the valid values of each factor × factor block (partial blocks at the edges)."""
    height, width = values.shape[-2:]
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.full(values.shape[:-2] + (rows * factor, cols * factor), np.nan)
    padded[..., :height, :width] = values
    blocks = padded.reshape(values.shape[:-2] + (rows, factor, cols, factor))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # blocks without any valid value
        return np.nanmean(blocks, axis=(-3, -1))


def test_levels_halve_rounding_up_until_one_block_holds_them():
    assert overview_sizes(WIDTH, HEIGHT) == [(551, 351), (276, 176)]
    assert overview_sizes(10980, 10980) == [(5490, 5490), (2745, 2745), (1373, 1373), (687, 687), (344, 344)]
    assert overview_sizes(512, 512) == [] and overview_sizes(513, 3) == [(257, 2)]


def test_block_sums_add_whole_and_partial_blocks():
    values = np.arange(15, dtype=float).reshape(3, 5)
    np.testing.assert_array_equal(block_sums(values), [[0 + 1 + 5 + 6, 2 + 3 + 7 + 8, 4 + 9],
                                                       [10 + 11, 12 + 13, 14]])
    np.testing.assert_array_equal(block_sums(np.ones((2, 3, 3), dtype=bool)), [[[4, 2], [2, 1]]] * 2)


def test_float_overviews_are_the_means_of_the_valid_pixels_they_cover(tmp_path):
    values = field()
    [path] = written_cogs(tmp_path, "tiled", values, window=256)
    levels = overview_levels(path)
    assert [level.shape for level in levels] == [(2, 351, 551), (2, 176, 276)]
    full = np.stack([values[0], values[0] * 2]).astype(np.float32)
    for index, level in enumerate(levels):
        # the float32 values written, averaged in float64, rounded to float32
        expected = block_means(full.astype(np.float64), 2 ** (index + 1)).astype(np.float32)
        np.testing.assert_array_equal(level, expected)
    assert np.isnan(levels[0][0, 60, 110]) and np.isnan(levels[1][0, 30, 55])  # inside the no-data rectangle


@pytest.mark.parametrize("window", [128, 512])
def test_any_aligned_split_gives_the_overviews_of_the_whole_grid_bit_for_bit(tmp_path, window):
    values = field(dates=2)  # two time steps: a COG each
    whole = [overview_levels(path) for path in written_cogs(tmp_path, "whole", values, window=max(WIDTH, HEIGHT))]
    tiled = [overview_levels(path) for path in written_cogs(tmp_path, "tiled", values, window=window)]
    assert len(whole) == len(tiled) == 2
    # each step's COG has its own step's overviews
    for step, levels in enumerate(whole):
        full = np.stack([values[step], values[step] * 2]).astype(np.float32).astype(np.float64)
        np.testing.assert_array_equal(levels[0], block_means(full, 2).astype(np.float32))
    for whole_levels, tiled_levels in zip(whole, tiled, strict=True):
        for mine, theirs in zip(tiled_levels, whole_levels, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_windows_that_share_blocks_leave_the_overviews_to_gdal(tmp_path):
    # Windows of 250 px: offsets 250, 500, ... are not multiples of the coarsest block (4 px)
    [path] = written_cogs(tmp_path, "shared", field(), window=250)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
    # GDAL's AVERAGE levels, rounded down
    assert [level.shape for level in overview_levels(path)] == [(2, 350, 550), (2, 175, 275)]


def test_results_of_many_time_steps_leave_the_overviews_to_gdal(tmp_path, monkeypatch):
    # Given a bound of 2 open level files: 2 steps × 2 levels are beyond it
    monkeypatch.setattr("stratus_processing.io.save.MAX_OPEN_FILES", 2)
    paths = written_cogs(tmp_path, "steps", field(dates=2), window=256)
    # Then GDAL's levels (rounded down), in both COGs
    assert [[level.shape for level in overview_levels(path)] for path in paths] == [[(2, 350, 550), (2, 175, 275)]] * 2


def test_a_float_nodata_value_marks_the_blocks_without_data(tmp_path):
    values = field()
    [path] = written_cogs(tmp_path, "nodata", values, window=256, options={"datatype": "float32", "nodata": -9999})
    levels = overview_levels(path)
    with rasterio.open(path) as src:
        assert src.nodata == -9999
    assert levels[0][0, 60, 110] == -9999 and levels[1][0, 30, 55] == -9999
    valid = levels[0] != -9999
    expected = block_means(np.stack([values[0], values[0] * 2]).astype(np.float32).astype(np.float64), 2)
    np.testing.assert_array_equal(levels[0][valid], expected.astype(np.float32)[valid])


def test_integer_results_keep_gdal_nearest_overviews_and_off_means_none(tmp_path):
    values = field() * 100
    [integers] = written_cogs(tmp_path, "uint8", values, window=256, options={"datatype": "uint8"})
    assert [level.shape for level in overview_levels(integers)] == [(2, 350, 550), (2, 175, 275)]
    [without] = written_cogs(tmp_path, "off", field(), window=256, options={"overviews": "OFF"})
    assert overview_levels(without) == []
