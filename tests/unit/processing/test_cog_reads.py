"""How COGs are read over HTTP: each asset opened once per run (the server's counters), tiled and whole
reads giving the same values, tiles' blocks fetched in few requests, overviews for coarser grids.

The real Sentinel-2 L2A cut-outs (512 × 512 px of 128 px blocks at 100 m; see
tests/support_stac_server.py) are served by the local stand-in; they ship in tests/fixtures/real/data/
(`STRATUS_REAL_DATA` overrides; those tests skip if that is absent). The handle pool is also tested on a
local file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
import stratus_processing.processes  # noqa: F401  (registers the processes)
from affine import Affine
from stratus_processing.env import EvalEnv
from stratus_processing.grid import Grid
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import DirectoryJsonStore, DocumentReader, StacCatalog
from stratus_processing.reporting import RecordingReporter
from stratus_processing.results import DirectoryResultStore
from stratus_processing.runner import evaluate
from stratus_processing.tiling import READ_AHEAD_BATCHES, TILE_WORKERS

from tests.support_stac_server import S2_SCENE, S2_SCENE_ID, StacTestServer, earth_search_server, require_real_data
from tests.unit.processing.processing_testkit import RecordingReader, small_grid

ORIGIN_X, ORIGIN_Y = 257580, 2800020  # the cut-out's north-west corner (UTM 29N)
WHOLE_CUT_OUT = {"west": ORIGIN_X, "east": ORIGIN_X + 51200, "north": ORIGIN_Y, "south": ORIGIN_Y - 51200,
                 "crs": 32629}
COG_TILE = 128  # px, the cut-outs' block size: 4 × 4 blocks
COGS = ("B04.tif", "B08.tif", "SCL.tif")


@pytest.fixture(scope="module")
def server() -> Iterator[StacTestServer]:
    with earth_search_server(require_real_data()) as running:
        yield running


def make_env(tmp_path, rasters: RasterReader) -> EvalEnv:
    documents = DocumentReader(allow_private_hosts=True)  # the stand-in listens on loopback
    return EvalEnv(catalog=StacCatalog(DirectoryJsonStore(tmp_path / "catalog"), documents=documents),
                   rasters=rasters, results=DirectoryResultStore(tmp_path / "results"), reporter=RecordingReporter())


def load_and_save(server: StacTestServer) -> dict:
    return {"process_graph": {
        "load": {"process_id": "load_stac", "arguments": {
            "url": server.item_url("sentinel-2-l2a", S2_SCENE_ID), "spatial_extent": WHOLE_CUT_OUT,
            "bands": ["red", "nir", "scl"]}},
        "save": {"process_id": "save_result", "result": True,
                 "arguments": {"data": {"from_node": "load"}, "format": "GTiff"}}}}


def saved_values(env: EvalEnv) -> np.ndarray:
    (asset,) = env.results.assets
    with rasterio.open(env.results.path_of(asset.key)) as src:
        return src.read()


def cog_requests(server: StacTestServer, name: str) -> list:
    return [r for r in server.log if r.path == f"/{S2_SCENE}/{name}"]


def test_tiled_and_whole_reads_of_the_real_cogs_give_the_same_values(server, tmp_path):
    # Given the whole cut-out (4 × 4 of its 128 px blocks) evaluated tile by tile and at once
    with RasterReader() as rasters:
        tiled_env = make_env(tmp_path / "tiled", rasters)
        evaluate(load_and_save(server), tiled_env, tile_size=COG_TILE)
        assert rasters.kept_bytes == 0  # every prefetched window was read, or dropped at the run's end
    with RasterReader() as rasters:
        whole_env = make_env(tmp_path / "whole", rasters)
        evaluate(load_and_save(server), whole_env, tiling=False)
    # Then the tiled run did run as 16 tiles, and both saved the same values, bit for bit
    assert any(e["message"].startswith("Tiled execution: 16 tile(s)") for e in tiled_env.reporter.logs)
    tiled, whole = saved_values(tiled_env), saved_values(whole_env)
    np.testing.assert_array_equal(tiled, whole)
    # And those are the files' own (red: B04 as stored; no-data 0 becomes the output's no-data)
    with rasterio.open(require_real_data() / S2_SCENE / "B04.tif") as src:
        red = src.read(1)
    assert tiled.shape[1:] == red.shape
    np.testing.assert_array_equal(tiled[0][red != 0], red[red != 0])


def test_a_tiled_run_over_http_fetches_every_cog_ahead_of_its_tiles(server, tmp_path):
    with RecordingReader() as rasters:
        evaluate(load_and_save(server), make_env(tmp_path, rasters), tile_size=COG_TILE)
        assert rasters.kept_bytes == 0  # every window fetched ahead was read
    assert {href.rsplit("/", 1)[1] for href in rasters.prefetched} == set(COGS)


def test_a_tiled_run_opens_each_cog_once_and_fetches_its_blocks_in_few_requests(tmp_path):
    # Given a server of its own (GDAL's caches are process-wide and keyed by URL: a new port is a
    # new URL) and a fresh reader (one run)
    with earth_search_server(require_real_data()) as server, RasterReader() as rasters:
        env = make_env(tmp_path, rasters)
        # When the whole cut-out is evaluated as 16 tiles of 128 px
        evaluate(load_and_save(server), env, tile_size=COG_TILE)
        opens = dict(rasters.opens)
    # Then each COG was opened once over the network: one HEAD and one read of its header
    for name in COGS:
        requests = cog_requests(server, name)
        assert [r.method for r in requests].count("HEAD") == 1, name
        assert sum(1 for r in requests if (r.range or "").startswith("bytes=0-")) == 1, name
        # and its blocks came in a request per read-ahead batch at most (4 rows of 4 tiles), not per tile
        assert len(requests) <= 2 + 4, (name, [(r.method, r.range) for r in requests])
    # And no byte twice (a little more than the file for B04, whose 16 blocks are all needed:
    # ranges start on 8 KB chunks)
    b04 = (require_real_data() / S2_SCENE / "B04.tif").stat().st_size
    assert sum(r.bytes for r in cog_requests(server, "B04.tif")) <= 1.1 * b04
    # And the reader kept its handles: opened by the threads reading an asset at the same time, not per tile
    full = {path: count for path, count in opens.items() if "#overview" not in path}
    assert set(full) == {f"/vsicurl/{server.url}/{S2_SCENE}/{name}" for name in COGS}
    assert max(full.values()) <= TILE_WORKERS + READ_AHEAD_BATCHES


def test_coarser_grids_read_the_overviews(server):
    # Given the cut-out's red band (overviews at 200 m and 400 m) read onto coarser grids
    href = f"{server.url}/{S2_SCENE}/B04.tif"
    local = require_real_data() / S2_SCENE / "B04.tif"
    with RasterReader() as reader:
        reader.read(href, Grid(rasterio.crs.CRS.from_epsg(32629), Affine(100, 0, ORIGIN_X, 0, -100, ORIGIN_Y), 1, 1))
        for level, resolution in enumerate((200, 400)):
            server.reset_counters()
            size = 512 * 100 // resolution
            grid = Grid(rasterio.crs.CRS.from_epsg(32629),
                        Affine(resolution, 0, ORIGIN_X, 0, -resolution, ORIGIN_Y), size, size)
            # When reading the whole cut-out at that resolution
            values = reader.read(href, grid)
            # Then the values are the overview's, exactly (no-data 0 as NaN)
            with rasterio.open(local, overview_level=level) as overview:
                expected = overview.read(1).astype(np.float64)
            expected[expected == 0] = np.nan
            np.testing.assert_array_equal(values, expected)
            # And only the overview's blocks crossed the network: far less than the full resolution's
            fetched = sum(r.bytes for r in cog_requests(server, "B04.tif"))
            assert 0 < fetched < local.stat().st_size / 3, (level, fetched)


def test_the_reader_keeps_one_handle_per_asset_and_thread(tmp_path):
    # Given a local 64 × 64 px file
    grid = small_grid(64, 64, epsg=32633)
    path = tmp_path / "band.tif"
    values = np.arange(64 * 64, dtype="uint16").reshape(64, 64) + 1
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16", crs=grid.crs,
                       transform=grid.transform, nodata=0) as dst:
        dst.write(values, 1)
    windows = [Grid(grid.crs, grid.transform @ Affine.translation(col, row), 16, 16)
               for row in range(0, 64, 16) for col in range(0, 64, 16)]
    reader = RasterReader()
    # When reading its 16 windows one after another
    for window in windows:
        reader.read(str(path), window)
    # Then the file was opened once
    assert reader.opens[str(path)] == 1
    # When 4 threads read them all at once, many times over
    threads = set()

    def read(window: Grid) -> np.ndarray:
        threads.add(threading.get_ident())
        return reader.read(str(path), window)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, windows * 8))
    # Then each window has the file's values, and no more handles were opened than threads read
    for window, result in zip(windows * 8, results, strict=True):
        col, row = (int(v) for v in ~grid.transform @ (window.transform.c, window.transform.f))
        np.testing.assert_array_equal(result, values[row:row + 16, col:col + 16])
    assert 1 <= reader.opens[str(path)] <= len(threads)
    # And after close() the handles are gone: the next read opens the file again
    before = reader.opens[str(path)]
    reader.close()
    reader.read(str(path), windows[0])
    assert reader.opens[str(path)] == before + 1
    reader.close()


def test_a_prefetched_window_is_decoded_once_and_its_tiles_read_the_same_values_from_memory(tmp_path):
    # Given a local 64 × 64 px uint16 file with no-data 0, and a batch grid 96 px wide from its
    # north-west corner (its east third lies outside the file)
    grid = small_grid(64, 64, epsg=32633)
    path = tmp_path / "band.tif"
    values = (np.arange(64 * 64, dtype="uint16").reshape(64, 64) * 7) % 1000
    values[10:20, 30:50] = 0
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16", crs=grid.crs,
                       transform=grid.transform, nodata=0, tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(values, 1)
    batch = Grid(grid.crs, grid.transform, 96, 32)
    tiles = [Grid(grid.crs, grid.transform @ Affine.translation(col, 0), 32, 32) for col in (0, 32, 64)]
    with RasterReader() as plain:
        expected = [plain.read(str(path), tile, scale=0.0001, offset=-0.1) for tile in tiles]
        assert plain.kept_bytes == 0  # reads without a prefetch keep nothing
    with RasterReader() as reader:
        # When the batch is prefetched: the part of the file under it is kept, decoded, in its own type
        reader.prefetch(str(path), batch)
        assert reader.kept_bytes == 64 * 32 * 2
        # Then its tiles read, with scale and offset, exactly what reads from the file give (bit for
        # bit; no-data and the part outside the file NaN), into a given array too
        out = np.empty((32, 32))
        got = [reader.read(str(path), tiles[0], scale=0.0001, offset=-0.1, out=out),
               reader.read(str(path), tiles[1], scale=0.0001, offset=-0.1), reader.read(str(path), tiles[2])]
        assert got[0] is out
        for result, wanted in zip(got, expected, strict=True):
            np.testing.assert_array_equal(result, wanted)
        assert np.isnan(got[0][10:20, 30:]).all() and np.isnan(got[2]).all()
        # And once every pixel of the window has been read it is dropped; a later read goes to the file
        assert reader.kept_bytes == 0
        np.testing.assert_array_equal(reader.read(str(path), tiles[1], scale=0.0001, offset=-0.1), expected[1])


def test_a_run_that_ends_early_drops_the_windows_it_kept_and_only_those(tmp_path):
    # Given a file and a reader that two runs share (a warm sync container serves requests in turn)
    grid = small_grid(64, 64, epsg=32633)
    path = tmp_path / "band.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16", crs=grid.crs,
                       transform=grid.transform, nodata=0) as dst:
        dst.write(np.ones((64, 64), dtype="uint16"), 1)
    top, bottom = (Grid(grid.crs, grid.transform @ Affine.translation(0, row), 64, 32) for row in (0, 32))
    first_run, second_run = object(), object()
    with RasterReader() as reader:
        reader.prefetch(str(path), top, owner=first_run)
        reader.prefetch(str(path), bottom, owner=second_run)
        assert reader.kept_bytes == 2 * 64 * 32 * 2
        # When the first run ends without reading its window
        reader.drop_kept(first_run)
        # Then its window is gone and the second run's is still there
        assert reader.kept_bytes == 64 * 32 * 2
        np.testing.assert_array_equal(reader.read(str(path), bottom), np.ones((32, 64)))
        assert reader.kept_bytes == 0
