"""Memory a finished phase held goes back before the next phase peaks (`stratus_processing.memory`)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import rasterio
from rasterio.env import get_gdal_config
from stratus_processing.memory import LARGE_ALLOCATION_BYTES, map_large_allocations, release_memory

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


class _MallocInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def mapped_bytes() -> int:
    """Bytes glibc holds in blocks mapped on their own (mallinfo2's hblkhd)."""
    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = _MallocInfo
    return mallinfo2().hblkhd


def test_large_arrays_get_pages_of_their_own_once_large_allocations_are_mapped():
    # Given glibc's mmap threshold where its default moves it once a tile's arrays are freed (32 MiB)
    ctypes.CDLL("libc.so.6").mallopt(-3, 32 * 1024 * 1024)
    before = mapped_bytes()
    # When large allocations are mapped on their own
    map_large_allocations()
    # Then a tile-sized array (8 MiB) is mapped, and goes back to the system when freed
    array = np.ones(8 * 1024 * 1024 // 8)
    assert mapped_bytes() - before >= array.nbytes
    del array
    assert mapped_bytes() - before < LARGE_ALLOCATION_BYTES
