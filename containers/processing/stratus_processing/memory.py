"""Giving memory back between the phases of a run, before the next one peaks.

A tiled run's memory is highest when its output is copied to a COG (GDAL's overviews and compression
buffers on top of what the tiles left behind). By then two things hold memory nothing will use again:
GDAL's block cache (the inputs' decoded blocks, the output's dirty blocks) and freed heap pages glibc
keeps for reuse (the tiles' arrays). Measured on 4 dates × 5,490² px: 447 MiB before the copy, 270 MiB
after `release_memory`, and the run's peak 677 → 495 MiB.
"""

from __future__ import annotations

import ctypes
import logging
from functools import cache

from rasterio.env import get_gdal_config, set_gdal_config

logger = logging.getLogger("stratus_processing")

# GDAL reads values below 100,000 as megabytes: this is 1 MiB in bytes.
_EVICTING_CACHE_BYTES = 1024 * 1024


def release_memory() -> None:
    """Empty GDAL's block cache (dirty blocks are written to their files first) and return freed
    heap pages to the system. Call it between phases, with no GDAL read or write in flight."""
    cache_max = get_gdal_config("GDAL_CACHEMAX")
    # Lowering the limit makes GDAL evict down to it at once; the limit is then put back.
    set_gdal_config("GDAL_CACHEMAX", _EVICTING_CACHE_BYTES)
    set_gdal_config("GDAL_CACHEMAX", cache_max)
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim():  # noqa: ANN202 - a ctypes function, or None where the C library has none (not glibc)
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        logger.debug("malloc_trim is not available: freed heap pages stay with the process")
        return None
