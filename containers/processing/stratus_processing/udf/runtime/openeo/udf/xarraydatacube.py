"""`XarrayDataCube`: an `xarray.DataArray` as a UDF receives and returns it (openeo.udf API)."""

from __future__ import annotations

import xarray


class XarrayDataCube:
    def __init__(self, array: xarray.DataArray):
        if not isinstance(array, xarray.DataArray):
            raise TypeError(f"XarrayDataCube needs an xarray.DataArray, got {type(array).__name__}")
        self._array = array

    def __repr__(self) -> str:
        return f"<XarrayDataCube shape:{self._array.shape}>"

    @property
    def id(self):
        return self._array.name

    @property
    def array(self) -> xarray.DataArray:
        return self._array

    def get_array(self) -> xarray.DataArray:
        return self._array
