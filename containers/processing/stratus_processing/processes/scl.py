"""The Sentinel-2 scene classification (SCL) cloud mask the openEO community uses, as the geopyspark
back-end defines it: `to_scl_dilation_mask` (the mask) and `mask_scl_dilation` (data masked by it).

For every date, from the SCL band:

1. mask 1 is 1 where the class is *not* one of `mask1_values` (the clear classes), mask 2 is 1 where
   the class is one of `mask2_values` (clouds, shadows, cirrus, snow); no-data is in neither list;
2. with `erosion_kernel_size` > 0, each mask is first eroded by a disk of that diameter (a pixel stays 1
   only when every pixel of the disk around it is 1; beyond the edge counts as 1), removing specks;
3. each mask is convolved with a normalised Gaussian of `kernel<n>_size` px (sigma = size / 6, zero
   beyond the cube's edge) and thresholded: > 0.057 for mask 1, > 0.025 for mask 2 (a kernel size 0
   keeps the mask as it is);
4. the result is 1 (masked) where either is 1.

A pixel's value depends on pixels up to half the larger kernel away, so graphs with these processes
are evaluated on the whole cube, never tile by tile (`tiling` does not list them as pixel-local).
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process

CLEAR_CLASSES = (2, 4, 5, 6, 7)  # dark area, vegetation, not vegetated, water, unclassified
CLOUD_CLASSES = (3, 8, 9, 10, 11)  # cloud shadow, cloud medium and high probability, thin cirrus, snow
KERNEL1_SIZE, KERNEL2_SIZE = 17, 201
KERNEL1_THRESHOLD, KERNEL2_THRESHOLD = 0.057, 0.025
SCL_BAND = "SCL"


@process("to_scl_dilation_mask")
def to_scl_dilation_mask(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    scl = _scl_band(args, cube, None)
    masked = scl_dilation_mask(scl, **_mask_parameters(args))
    return cubes.carry_metadata(masked, cube)


@process("mask_scl_dilation")
def mask_scl_dilation(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    scl = _scl_band(args, cube, args.get_optional("scl_band_name", expected_type=str))
    masked = scl_dilation_mask(scl, erosion_kernel_size=0, mask1_values=CLEAR_CLASSES,
                               mask2_values=CLOUD_CLASSES, kernel1_size=KERNEL1_SIZE, kernel2_size=KERNEL2_SIZE)
    if cubes.BANDS in masked.dims:
        masked = masked.isel({cubes.BANDS: 0}, drop=True)
    masked = masked.drop_vars([c for c in masked.coords if c == cubes.COMMON_NAME], errors="ignore")
    return cubes.carry_metadata(cube.astype(cubes.CUBE_DTYPE).where(masked == 0), cube)


def scl_dilation_mask(scl: xr.DataArray, *, erosion_kernel_size: int, mask1_values: Any, mask2_values: Any,
                      kernel1_size: int, kernel2_size: int) -> xr.DataArray:
    """1.0 where the SCL classes (and their neighbourhood) are to be masked, else 0.0; same dims as `scl`."""
    ordered = scl.transpose(*[d for d in scl.dims if d not in (cubes.Y, cubes.X)], cubes.Y, cubes.X)
    classes = ordered.values
    not_clear = ~np.isin(classes, np.asarray(mask1_values, dtype=np.float64))  # NaN: in no list
    cloudy = np.isin(classes, np.asarray(mask2_values, dtype=np.float64))
    masked = (_dilated(not_clear, kernel1_size, erosion_kernel_size, KERNEL1_THRESHOLD)
              | _dilated(cloudy, kernel2_size, erosion_kernel_size, KERNEL2_THRESHOLD))
    return ordered.copy(data=masked.astype(cubes.CUBE_DTYPE)).transpose(*scl.dims)


def _dilated(mask: np.ndarray, kernel_size: int, erosion_size: int, threshold: float) -> np.ndarray:
    if kernel_size <= 0 or not mask.any():
        return mask
    if erosion_size > 0:
        mask = _eroded(mask, erosion_size)
    return gaussian_convolution(mask.astype(np.float64), kernel_size) > threshold


def gaussian_kernel(size: int) -> np.ndarray:
    """The 1D factor g of the normalised 2D Gaussian outer(g, g): sigma = size / 6, centred at size // 2."""
    sigma = size / 6.0
    offsets = np.arange(size) - size // 2
    weights = np.exp(-(offsets * offsets) / (2 * sigma * sigma))
    return weights / weights.sum()


def gaussian_convolution(values: np.ndarray, size: int) -> np.ndarray:
    """Convolution over the last two axes with outer(g, g), zero beyond the edges, by FFT along each
    axis in turn (a separable kernel: two 1D passes instead of one size² 2D one)."""
    weights = gaussian_kernel(size)
    for axis in (-2, -1):
        n = values.shape[axis]
        length = _fast_length(n + size - 1)
        spectrum = np.fft.rfft(values, length, axis=axis)
        kernel = np.fft.rfft(weights, length).reshape([-1 if a == values.ndim + axis else 1
                                                       for a in range(values.ndim)])
        full = np.fft.irfft(spectrum * kernel, length, axis=axis)
        start = (size - 1) // 2  # the centred part of the full convolution, as a "same" convolution
        values = np.take(full, np.arange(start, start + n), axis=axis)
    return values


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: numpy's FFT is fastest on such lengths."""
    best = 1 << (n - 1).bit_length()
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < n:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def _eroded(mask: np.ndarray, size: int) -> np.ndarray:
    """1 where every pixel of the disk of diameter `size` around it is 1 (beyond the edge counts as 1)."""
    radius = size // 2
    height, width = mask.shape[-2:]
    padded = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(radius, radius), (radius, radius)], constant_values=True)
    eroded = np.ones_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                eroded &= padded[..., radius + dy:radius + dy + height, radius + dx:radius + dx + width]
    return eroded


def _mask_parameters(args: ProcessArgs) -> dict[str, Any]:
    def size(name: str, default: int) -> int:
        value = args.get_optional(name, default, expected_type=(int, float))
        if value < 0 or value != int(value):
            raise args.invalid(name, "must be a whole number of pixels, 0 or more")
        return int(value)

    def classes(name: str, default: tuple[int, ...]) -> list[float]:
        values = args.get_optional(name, list(default), expected_type=list)
        if not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
            raise args.invalid(name, "must be an array of SCL class numbers")
        return [float(v) for v in values]

    return {"erosion_kernel_size": size("erosion_kernel_size", 0),
            "mask1_values": classes("mask1_values", CLEAR_CLASSES),
            "mask2_values": classes("mask2_values", CLOUD_CLASSES),
            "kernel1_size": size("kernel1_size", KERNEL1_SIZE), "kernel2_size": size("kernel2_size", KERNEL2_SIZE)}


def _scl_band(args: ProcessArgs, cube: xr.DataArray, name: str | None) -> xr.DataArray:
    """The SCL band as a one-band cube: the named band, else the only band, else the band called SCL."""
    if cubes.BANDS not in cube.dims:
        if name is not None:
            raise args.invalid("scl_band_name", "the data cube has no bands dimension")
        return cube
    bands = [str(b) for b in cube[cubes.BANDS].values]
    wanted = name or (bands[0] if len(bands) == 1 else SCL_BAND)
    if wanted not in bands:
        parameter = "scl_band_name" if name is not None else "data"
        raise args.invalid(parameter, f"no band '{wanted}' among {bands}: give a cube of the SCL band only"
                           if name is None else f"no band '{wanted}' among {bands}")
    return cube.isel({cubes.BANDS: [bands.index(wanted)]})
