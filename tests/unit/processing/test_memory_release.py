"""Memory a finished phase held goes back before the next phase peaks (`stratus_processing.memory`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.env import get_gdal_config
from stratus_processing.memory import release_memory, trim_heaps

from tests.unit.processing.processing_testkit import small_grid

SIZE = 4096  # px: 32 MiB of uint16 blocks in GDAL's cache


def resident_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def test_release_memory_empties_gdals_block_cache_and_keeps_its_limit(tmp_path):
    # Given a tiled file read whole through a handle that stays open (its blocks stay in GDAL's cache)
    grid = small_grid(SIZE, SIZE, epsg=32633)
    path = tmp_path / "band.tif"
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint16", crs=grid.crs,
                       transform=grid.transform, tiled=True, blockxsize=512, blockysize=512) as dst:
        dst.write(np.arange(SIZE * SIZE, dtype="uint32").reshape(SIZE, SIZE).astype("uint16"), 1)
    with rasterio.Env(GDAL_CACHEMAX=256 * 1024 * 1024), rasterio.open(path) as src:
        src.read(1)  # the array itself is freed at once; the cached blocks are not
        limit = get_gdal_config("GDAL_CACHEMAX")
        holding = resident_mib()
        # When the memory is released
        release_memory()
        # Then the blocks' 32 MiB are gone from the process, and the cache's limit is what it was
        assert holding - resident_mib() > 24
        assert get_gdal_config("GDAL_CACHEMAX") == limit
        # And the handle still reads (from the file again)
        assert int(src.read(1, window=((0, 1), (0, 3)))[0, 2]) == 2


def test_trim_heaps_gives_back_the_free_pages_inside_the_heap():
    # Given 64 MiB of small arrays (below glibc's mmap threshold: in the heap), all freed but the last,
    # which keeps the freed space inside the heap rather than at its top (glibc gives back only the top)
    arrays = [np.ones(64 * 1024 // 8) for _ in range(1024)]
    last = arrays.pop()
    arrays.clear()
    holding = resident_mib()
    # When the heaps are trimmed
    trim_heaps()
    # Then the freed arrays' pages are gone from the process
    assert holding - resident_mib() > 32
    assert last.sum() == last.size
