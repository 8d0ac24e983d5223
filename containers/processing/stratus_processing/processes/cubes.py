"""Cube processes (openEO category "cubes") and the cube-level NDVI."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    BandExistsException,
    DimensionAmbiguousException,
    DimensionNotAvailableException,
    NirBandAmbiguousException,
    RedBandAmbiguousException,
)
from stratus_processing.registry import ProcessArgs, process

_BAND_NAME = re.compile(r"^\w+$")


@process("reduce_dimension")
def reduce_dimension(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    reducer = args.get_callback("reducer")
    dimension = args.get_required("dimension", expected_type=str)
    context = args.get_optional("context")
    if dimension not in cube.dims:
        raise DimensionNotAvailableException(dimension=dimension)

    # One call with the whole cube: the reducer's processes reduce along `dimension` (vectorised).
    reduced = reducer(env.for_array_dimension(dimension), data=cube, context=context)

    template = cube.isel({dimension: 0}).drop_vars(_coords_along(cube, dimension), errors="ignore")
    if not isinstance(reduced, xr.DataArray):
        # A constant reducer (e.g. `return 0`) still yields one value per remaining cell.
        reduced = xr.full_like(template, np.nan if reduced is None else reduced, dtype=cubes.CUBE_DTYPE)
    if dimension in reduced.dims:
        raise args.invalid("reducer", f"it must compute a single value per cell, but its result still has "
                                      f"the dimension '{dimension}'")
    reduced = reduced.drop_vars(_coords_along(cube, dimension), errors="ignore").astype(cubes.CUBE_DTYPE)
    return cubes.carry_metadata(reduced, cube)


@process("ndvi")
def ndvi(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    if cubes.BANDS not in cube.dims:
        raise DimensionAmbiguousException()
    nir = _band(cube, args.get_optional("nir", "nir", expected_type=str), NirBandAmbiguousException)
    red = _band(cube, args.get_optional("red", "red", expected_type=str), RedBandAmbiguousException)
    target_band = args.get_optional("target_band", expected_type=str)

    nir_values, red_values = _band_values(cube, nir), _band_values(cube, red)
    index = cubes.carry_metadata((nir_values - red_values) / (nir_values + red_values), cube)
    if target_band is None:
        return index
    if not _BAND_NAME.match(target_band):
        raise args.invalid("target_band", "must consist of letters, digits and underscores only")
    if target_band in cubes.band_names(cube):
        raise BandExistsException(band=target_band)
    added = index.expand_dims({cubes.BANDS: [target_band]}).assign_coords(
        {cubes.COMMON_NAME: (cubes.BANDS, np.array([""], dtype=object))})
    return xr.concat([cube, added.transpose(*cube.dims)], dim=cubes.BANDS, join="exact")


def _band(cube: xr.DataArray, wanted: str, ambiguous: type[Exception]) -> str:
    """openEO band lookup: a band name wins over common names; a common name must be unique."""
    if wanted in cubes.band_names(cube):
        return wanted
    matches = [name for name, common in cubes.common_names(cube).items() if common == wanted]
    if len(matches) != 1:
        raise ambiguous()
    return matches[0]


def _band_values(cube: xr.DataArray, band: str) -> xr.DataArray:
    return cube.sel({cubes.BANDS: band}).drop_vars(_coords_along(cube, cubes.BANDS), errors="ignore")


def _coords_along(cube: xr.DataArray, dimension: str) -> list[str]:
    return [str(name) for name, coord in cube.coords.items() if dimension in coord.dims]
