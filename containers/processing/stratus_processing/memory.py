"""Giving memory back between the phases of a run, before the next one peaks.

A tiled run's memory is highest when its output is copied to a COG (GDAL's overviews and compression
buffers on top of what the tiles left behind). By then two things hold memory nothing will use again:
GDAL's block cache (the inputs' decoded blocks, the output's dirty blocks) and freed heap pages glibc
keeps for reuse (the tiles' arrays). Measured on 4 dates × 5,490² px: 447 MiB before the copy, 270 MiB
after `release_memory`, and the run's peak 677 → 495 MiB.

Within a phase, `map_large_allocations` keeps freed arrays from piling up in glibc's heaps (see there).
"""

from __future__ import annotations

import ctypes
import logging
from functools import cache

from rasterio.env import get_gdal_config, set_gdal_config

logger = logging.getLogger("stratus_processing")

# GDAL reads values below 100,000 as megabytes: this is 1 MiB in bytes.
_EVICTING_CACHE_BYTES = 1024 * 1024
# Allocations of this size or more get pages of their own (glibc's mmap threshold), given back when freed.
LARGE_ALLOCATION_BYTES = 256 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def map_large_allocations() -> None:
    """Have glibc map each allocation of LARGE_ALLOCATION_BYTES or more on pages of its own, unmapped
    when it is freed. By default glibc raises that threshold to the size of each mapped block freed (up
    to 32 MiB), so after the first tile, tiles' arrays (a few MiB each: cubes, predictor rows, GDAL's
    blocks, prefetched windows) come from its heaps, one per thread, where freed space stays with
    the process and only partly fits the next arrays: RSS creeps with the number of tiles. Measured
    on the random-forest benchmark (4,096² px, 40 predictors): peak 806 → 687 MiB, same time.
    Process-wide, and kept: the engine's processes run the engine only."""
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES)


def release_memory() -> None:
    """Empty GDAL's block cache (dirty blocks are written to their files first) and return freed
    heap pages to the system. Call it between phases, with no GDAL read or write in flight."""
    cache_max = get_gdal_config("GDAL_CACHEMAX")
    # Lowering the limit makes GDAL evict down to it at once; the limit is then put back.
    set_gdal_config("GDAL_CACHEMAX", _EVICTING_CACHE_BYTES)
    set_gdal_config("GDAL_CACHEMAX", cache_max)
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


@cache
def _libc_function(name: str):  # noqa: ANN202 - a ctypes function, or None where the C library has none (not glibc)
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        logger.debug("%s is not available: the allocator keeps its defaults", name)
        return None
