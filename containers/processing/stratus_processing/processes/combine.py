"""Combining cubes (openEO category "cubes"/"masks"): `merge_cubes` and `mask`.

Both work on whole arrays: the second cube is brought onto the first one's pixel grid (resampled
only when CRS, resolution or pixel alignment differ), then aligned on the union of labels (merge)
or on the data cube's labels (mask) and combined with `where`; an overlap resolver is called once
with both aligned cubes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import IncompatibleDataCubesException, OverlapResolverMissingException
from stratus_processing.processes.dimensions import DIMENSION_TYPES_ATTR, dimension_type
from stratus_processing.processes.spatial import warp
from stratus_processing.registry import ProcessArgs, process

# Grids whose pixel centres are offset by less than this are aligned (float noise of grids computed
# from different transforms), unit: pixels.
PIXEL_TOLERANCE = 1e-6


@process("merge_cubes")
def merge_cubes(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube1, cube2 = args.get_cube("cube1"), args.get_cube("cube2")
    resolver = args.get_optional("overlap_resolver")
    context = args.get_optional("context")
    cube2 = _on_grid_of(cube2, cube1)

    # The union of dimensions (cube1's order first) and of labels per dimension.
    dims = list(cube1.dims) + [d for d in cube2.dims if d not in cube1.dims]
    labels = {d: _merged_labels(cube1, cube2, d) for d in dims}
    common = _merged_common_names(cube1, cube2)

    def aligned(cube: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        """The cube on the merged labels, and where it has data (a cube lacking a dimension has
        data for every label of it)."""
        plain = cube.drop_vars([c for c in cube.coords if c not in cube.dims])
        present = xr.ones_like(plain, dtype=bool)
        indexers = {d: labels[d] for d in cube.dims}
        values = plain.reindex(indexers, fill_value=np.nan)
        present = present.reindex(indexers, fill_value=False)
        missing = {d: labels[d] for d in dims if d not in cube.dims}
        return (values.expand_dims(missing).transpose(*dims), present.expand_dims(missing).transpose(*dims))

    values1, present1 = aligned(cube1)
    values2, present2 = aligned(cube2)
    overlap = present1 & present2
    merged = values1.where(present1, values2)
    if bool(overlap.any()):
        if resolver is None:
            raise OverlapResolverMissingException()
        resolved = resolver(env.for_array_dimension(None), x=values1, y=values2, context=context)
        if not isinstance(resolved, xr.DataArray):
            resolved = xr.full_like(merged, np.nan if resolved is None else resolved, dtype=cubes.CUBE_DTYPE)
        resolved = resolved.broadcast_like(merged).transpose(*dims)
        if resolved.dtype.kind in "biuf":
            resolved = resolved.astype(cubes.CUBE_DTYPE)
        merged = resolved.where(overlap, merged)

    merged = merged.assign_coords({cubes.SPATIAL_REF: cube1.coords[cubes.SPATIAL_REF]})
    if cubes.BANDS in dims:
        merged = merged.assign_coords(
            {cubes.COMMON_NAME: (cubes.BANDS, np.array([common.get(str(b), "") for b in labels[cubes.BANDS]],
                                                       dtype=object))})
    merged.attrs = dict(cube1.attrs)
    declared = {**cube2.attrs.get(DIMENSION_TYPES_ATTR, {}), **cube1.attrs.get(DIMENSION_TYPES_ATTR, {})}
    if declared:
        merged.attrs[DIMENSION_TYPES_ATTR] = declared
    extents = [e for e in (cubes.temporal_extent(cube1), cubes.temporal_extent(cube2)) if e is not None]
    if extents and cubes.T not in dims:
        merged.attrs[cubes.TEMPORAL_EXTENT_ATTR] = [cubes.isoformat_utc(min(e[0] for e in extents)),
                                                     cubes.isoformat_utc(max(e[1] for e in extents))]
    return merged


@process("mask")
def mask(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    data, mask_cube = args.get_cube("data"), args.get_cube("mask")
    replacement = args.get_optional("replacement")
    if replacement is not None and not isinstance(replacement, (int, float)):  # bool is an int: true -> 1
        raise args.invalid("replacement", "a raster cube of numbers can only take a number (or null) as "
                                          f"replacement, got {type(replacement).__name__}")
    mask_cube = _on_grid_of(mask_cube, data)

    # Label the mask like the data: equal labels, or a single label applied to every label of data.
    selection: dict[str, Any] = {}
    for dimension in mask_cube.dims:
        if dimension not in data.dims:
            raise IncompatibleDataCubesException(reason=f"the mask has the dimension '{dimension}', the data not")
        if _same_labels(mask_cube, data, dimension):
            continue
        if dimension in (cubes.X, cubes.Y):
            mask_cube = _on_pixels_of(mask_cube, data, dimension)
        elif mask_cube.sizes[dimension] == 1:
            selection[dimension] = 0
        else:
            raise IncompatibleDataCubesException(
                reason=f"the labels of the dimension '{dimension}' differ and the mask has more than one")
    flags = mask_cube.isel(selection, drop=True) if selection else mask_cube
    flags = flags.drop_vars([c for c in flags.coords if c not in flags.dims])
    flags = flags.assign_coords({d: data.coords[d] for d in flags.dims if d in data.coords})
    # Non-zero (and true) masks, and so does no-data (NaN is not zero).
    masked = flags.astype(bool) if flags.dtype == bool else (flags != 0)
    fill = np.nan if replacement is None else float(replacement)
    return data.where(~masked, fill).transpose(*data.dims)


def _on_grid_of(cube: xr.DataArray, base: xr.DataArray) -> xr.DataArray:
    """`cube` with `base`'s pixel grid: on the same CRS, resolution and pixel alignment only the x/y
    labels are made `base`'s (the extents may differ); otherwise resampled onto `base`'s grid like
    resample_cube_spatial does by default (nearest neighbour)."""
    if not _same_pixel_grid(cube, base):
        return warp(cube, cubes.grid_of(base), Resampling.nearest)
    snapped = {}
    for dimension in (cubes.X, cubes.Y):
        ours, theirs = cube[dimension].values, base[dimension].values
        if not len(ours) or not len(theirs):
            continue
        step = _pixel_step(base, dimension)
        index = np.rint((ours - theirs[0]) / step).astype(np.int64)
        inside = (index >= 0) & (index < len(theirs))
        # Pixel centres both cubes have take base's label exactly, the others base's spacing.
        snapped[dimension] = np.where(inside, theirs[np.clip(index, 0, len(theirs) - 1)], theirs[0] + index * step)
    return cube.assign_coords(snapped) if snapped else cube


def _same_pixel_grid(cube: xr.DataArray, base: xr.DataArray) -> bool:
    ref, base_ref = cube.coords[cubes.SPATIAL_REF].attrs, base.coords[cubes.SPATIAL_REF].attrs
    if not np.allclose(np.abs(ref["resolution"]), np.abs(base_ref["resolution"])):
        return False
    if CRS.from_wkt(ref["crs_wkt"]) != CRS.from_wkt(base_ref["crs_wkt"]):
        return False
    for dimension in (cubes.X, cubes.Y):
        ours, theirs = cube[dimension].values, base[dimension].values
        if len(ours) and len(theirs):
            offset = (ours[0] - theirs[0]) / _pixel_step(base, dimension)
            if abs(offset - round(offset)) > PIXEL_TOLERANCE:
                return False
    return True


def _pixel_step(cube: xr.DataArray, dimension: str) -> float:
    """The signed distance between neighbouring labels along x or y (y usually descends)."""
    labels = cube[dimension].values
    if len(labels) > 1:
        return float(labels[1] - labels[0])
    resolution = cube.coords[cubes.SPATIAL_REF].attrs["resolution"]
    return float(abs(resolution[0])) if dimension == cubes.X else -float(abs(resolution[1]))


def _on_pixels_of(mask_cube: xr.DataArray, data: xr.DataArray, dimension: str) -> xr.DataArray:
    """The mask on the data's pixel centres along x or y (same grid, other extent): pixels the mask
    doesn't cover are no-data, which masks them."""
    return mask_cube.reindex({dimension: data[dimension].values})


def _same_labels(a: xr.DataArray, b: xr.DataArray, dimension: str) -> bool:
    la, lb = a[dimension].values, b[dimension].values
    return len(la) == len(lb) and bool(np.all(la == lb))


def _merged_labels(cube1: xr.DataArray, cube2: xr.DataArray, dimension: str) -> np.ndarray:
    """Both cubes' labels: sorted for dimensions with an order (spatial: in cube1's direction,
    temporal), else cube1's then cube2's new ones."""
    if dimension not in cube2.dims:
        return cube1[dimension].values
    if dimension not in cube1.dims:
        return cube2[dimension].values
    first, second = cube1[dimension].values, cube2[dimension].values
    union = pd.Index(first).append(pd.Index(second)).unique()
    kind = dimension_type(cube1, dimension)
    if kind == "spatial":
        descending = len(first) > 1 and first[0] > first[-1]
        return np.sort(union.to_numpy())[::-1] if descending else np.sort(union.to_numpy())
    if kind == "temporal" and np.issubdtype(first.dtype, np.datetime64):
        return np.sort(union.to_numpy())
    return union.to_numpy()


def _merged_common_names(cube1: xr.DataArray, cube2: xr.DataArray) -> dict[str, str]:
    return {**cubes.common_names(cube2), **cubes.common_names(cube1)}

