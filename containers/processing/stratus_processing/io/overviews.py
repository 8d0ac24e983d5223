"""Overviews of floating-point raster results, reduced window by window as the windows are written.

GDAL's COG driver builds a result's overviews after its last tile: one serial pass over the full
resolution, whose levels it also compresses twice (a temporary file, then the COG), about half of the
copy's time. The tiles can do that work while they are computed instead: each window written adds the
sums and counts of its valid pixels by 2 × 2 blocks, level after level, and writes their means into one
file per level; the COG copy then takes those as they are (a VRT whose bands list them as `<Overview>`
sources, copied with OVERVIEWS=FORCE_USE_EXISTING). engine_floor (4 dates × 5,490² px): the COG copy
1.1 → 0.8 s.

Every overview pixel is the mean of the valid full-resolution pixels it covers (GDAL's AVERAGE takes
the mean of the means of the level before, whatever their counts). Each level is half the one before,
rounded up, so the last row and column of blocks hold what is left (GDAL rounds down and stretches
every block a little). A window whose offsets are not multiples of the coarsest level's block would
share blocks with its neighbours: then `accepts` says no, and the sink leaves the overviews to GDAL.
Sums are added in one fixed order per block, so any split of the grid into aligned windows gives the
same overviews, bit for bit.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window

# Overviews are added down to the first level whose both sides fit in one block (GDAL's AUTO).
SMALLEST_LEVEL_PX = 512
# Files (time steps × levels) a pyramid may hold open; beyond, the sink leaves the overviews to GDAL. A
# step's levels must be files of their own: GDAL's COG copy takes an overview's bands from the first
# band of its file on, whatever band a VRT names.
MAX_OPEN_FILES = 64


def overview_sizes(width: int, height: int, block: int = SMALLEST_LEVEL_PX) -> list[tuple[int, int]]:
    """(width, height) of each overview level, finest first: halved (rounded up) while a side is larger
    than `block`."""
    sizes = []
    while width > block or height > block:
        width, height = math.ceil(width / 2), math.ceil(height / 2)
        sizes.append((width, height))
    return sizes


def block_sums(values: np.ndarray) -> np.ndarray:
    """Sums (float64) of 2 × 2 blocks over the last two axes, added in one order: (0, 0), (0, 1),
    (1, 0), (1, 1); an odd last row or column makes blocks of fewer pixels."""
    height, width = values.shape[-2:]
    sums = np.zeros(values.shape[:-2] + ((height + 1) // 2, (width + 1) // 2))
    for row in (0, 1):
        for col in (0, 1):
            part = values[..., row::2, col::2]
            sums[..., :part.shape[-2], :part.shape[-1]] += part
    return sums


class OverviewPyramid:
    """The overview levels of a result's files (one per time step, `bands` bands each, on a grid of
    `width` × `height` px), written window by window into GeoTIFFs in `staging` (`profile`: the full
    resolution's GTiff profile, whose dtype and no-data they share)."""

    def __init__(self, staging: Path, profile: dict[str, Any], steps: int) -> None:
        self._width, self._height = profile["width"], profile["height"]
        self._sizes = overview_sizes(self._width, self._height)
        self._dtype = np.dtype(profile["dtype"])
        self._nodata = float(profile["nodata"])
        self._block = 2 ** len(self._sizes)  # pixels of the coarsest level's block, along each side
        self._paths: list[list[Path]] = []  # per step, per level
        self._datasets: list[list[Any]] = []
        for step in range(steps):
            paths, datasets = [], []
            for level, (width, height) in enumerate(self._sizes, start=1):
                path = staging / f"step_{step}_overview_{level}.tif"
                scale = self._width / width, self._height / height
                tiled = width >= profile.get("blockxsize", math.inf) and height >= profile.get("blockysize", math.inf)
                level_profile = {key: value for key, value in profile.items()
                                 if key not in ("tiled", "blockxsize", "blockysize")}
                level_profile.update(width=width, height=height,
                                     transform=profile["transform"] @ Affine.scale(*scale))
                if tiled:
                    level_profile.update(tiled=True, blockxsize=profile["blockxsize"], blockysize=profile["blockysize"])
                datasets.append(rasterio.open(path, "w", **level_profile))
                paths.append(path)
            self._paths.append(paths)
            self._datasets.append(datasets)

    @property
    def levels(self) -> int:
        return len(self._sizes)

    def accepts(self, row: int, col: int, height: int, width: int) -> bool:
        """Whether the window's blocks, at every level, are its own (not shared with a neighbour)."""
        return all(offset % self._block == 0 and (size % self._block == 0 or offset + size == whole)
                   for offset, size, whole in ((row, height, self._height), (col, width, self._width)))

    def reduce(self, written: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
        """Each level's part of a window (`written`, `valid`: steps × bands × height × width), in the
        result's type with its no-data; CPU work only, so it runs outside the sink's lock."""
        sums = block_sums(written if valid.all() else np.where(valid, written, 0))
        counts = block_sums(valid)
        parts = []
        for level in range(self.levels):
            if level:
                sums, counts = block_sums(sums), block_sums(counts)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = sums / counts  # 0 / 0 = NaN where no pixel of the block is valid
            part = means.astype(self._dtype)
            if not math.isnan(self._nodata):
                part[counts == 0] = self._nodata
            parts.append(part)
        return parts

    def write(self, parts: list[np.ndarray], row: int, col: int) -> None:
        for level, part in enumerate(parts, start=1):
            window = Window(col >> level, row >> level, part.shape[-1], part.shape[-2])
            for step, values in enumerate(part):
                self._datasets[step][level - 1].write(values, window=window)

    def close(self) -> None:
        datasets, self._datasets = self._datasets, []
        for step in datasets:
            for dataset in step:
                dataset.close()

    def source_with_overviews(self, step: int, source: Path) -> Path:
        """A VRT of `source` (the step's full resolution) whose bands have this step's levels as overviews."""
        target = source.with_suffix(".vrt")
        rasterio.shutil.copy(str(source), str(target), driver="VRT")
        document = ElementTree.parse(target)
        for band in document.getroot().iter("VRTRasterBand"):
            for path in self._paths[step]:
                overview = ElementTree.SubElement(band, "Overview")
                filename = ElementTree.SubElement(overview, "SourceFilename", relativeToVRT="0")
                filename.text = str(path)
                ElementTree.SubElement(overview, "SourceBand").text = band.get("band")
        document.write(target)
        return target
