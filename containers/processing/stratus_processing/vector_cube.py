"""The vector data cube: an `xarray.DataArray` whose first dimension is `geometry`.

Convention (what `aggregate_spatial` returns and `save_result` serialises):
- dimension `geometry` first, labelled 0..n-1 (int), one label per input geometry/feature, in input
  order; further dimensions follow (e.g. `t`, `bands`, or the `target_dimension` of
  aggregate_spatial), with the labels of the raster cube they came from;
- coordinate `feature_geometry` along `geometry`: shapely geometries (Python objects) in
  EPSG:4326 lon/lat, `None` for an empty or null geometry;
- coordinate `feature_properties` along `geometry`: the GeoJSON properties of each input feature
  (dicts; `{}` for bare geometries), and `feature_id` the feature's GeoJSON `id` (or None);
- values are float64 with NaN as no-data, as in the raster cube. There is no `spatial_ref`
  coordinate, so `cube.is_cube` is False for a vector cube and raster processes refuse it.

Serialisations:
- `to_geojson`: a FeatureCollection, one Feature per geometry label, `properties` = the input
  properties plus one entry per cell of the remaining dimensions, keyed by the labels joined with
  "~" (e.g. "2020-06-01T00:00:00Z~B04"; "value" when there is no other dimension), no-data null;
- `to_json`: `{"dimensions": [...], "labels": {dim: [...]}, "geometries": [GeoJSON|null],
  "properties": [...], "data": nested arrays in dimension order}` with no-data null.
Non-finite numbers (NaN, ±inf) become null: JSON has no representation for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from stratus_processing import cube as cubes
from stratus_processing.geometry import Features
from stratus_processing.grid import WGS84

GEOMETRY = "geometry"
FEATURE_GEOMETRY = "feature_geometry"
FEATURE_PROPERTIES = "feature_properties"
FEATURE_ID = "feature_id"
# Key of the single value of a feature when the cube has no dimension besides `geometry`.
SINGLE_VALUE_KEY = "value"
LABEL_SEPARATOR = "~"


def is_vector_cube(value: Any) -> bool:
    return (isinstance(value, xr.DataArray) and len(value.dims) > 0 and value.dims[0] == GEOMETRY
            and FEATURE_GEOMETRY in value.coords)


def make_vector_cube(features: Features, values: np.ndarray | None = None, *,
                     dims: Sequence[str] = (), coords: dict[str, Any] | None = None,
                     attrs: dict[str, Any] | None = None) -> xr.DataArray:
    """A vector cube over `features` (any CRS; stored as EPSG:4326). `values` is shaped
    (geometry, *dims); without values the cube is geometry-only, all no-data."""
    features = features.to_crs(WGS84)
    n = len(features)
    if values is None:
        values = np.full((n, *(len((coords or {})[d]) for d in dims)), np.nan)
    all_coords: dict[str, Any] = {
        GEOMETRY: np.arange(n, dtype=np.int64),
        FEATURE_GEOMETRY: (GEOMETRY, _object_array(features.geometries)),
        FEATURE_PROPERTIES: (GEOMETRY, _object_array(features.properties)),
        FEATURE_ID: (GEOMETRY, _object_array(features.ids)),
    }
    all_coords.update(coords or {})
    return xr.DataArray(np.asarray(values, dtype=cubes.CUBE_DTYPE), dims=(GEOMETRY, *dims),
                        coords=all_coords, attrs=dict(attrs or {}))


def features_of(cube: xr.DataArray) -> Features:
    """The geometries of a vector cube (EPSG:4326) with their properties and ids."""
    return Features(tuple(cube[FEATURE_GEOMETRY].values), tuple(cube[FEATURE_PROPERTIES].values),
                    tuple(cube[FEATURE_ID].values), WGS84)


def to_geojson(cube: xr.DataArray) -> dict[str, Any]:
    """The vector cube as a GeoJSON FeatureCollection (see the module docstring)."""
    other_dims = [d for d in cube.dims if d != GEOMETRY]
    keys = _property_keys(cube, other_dims)
    values = cube.transpose(GEOMETRY, *other_dims).values.reshape(cube.sizes[GEOMETRY], -1)
    features = []
    for index in range(cube.sizes[GEOMETRY]):
        geometry = cube[FEATURE_GEOMETRY].values[index]
        properties = dict(cube[FEATURE_PROPERTIES].values[index] or {})
        properties.update(zip(keys, (_json_number(v) for v in values[index]), strict=True))
        feature: dict[str, Any] = {"type": "Feature", "geometry": _geojson_geometry(geometry),
                                   "properties": properties}
        feature_id = cube[FEATURE_ID].values[index]
        feature["id"] = _json_scalar(feature_id) if feature_id is not None else int(cube[GEOMETRY].values[index])
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def to_json(cube: xr.DataArray) -> dict[str, Any]:
    """The vector cube as plain nested JSON (see the module docstring)."""
    dims = [str(d) for d in cube.dims]
    return {
        "dimensions": dims,
        "labels": {d: [_label(v) for v in cube[d].values] for d in dims},
        "geometries": [_geojson_geometry(g) for g in cube[FEATURE_GEOMETRY].values],
        "properties": [dict(p or {}) for p in cube[FEATURE_PROPERTIES].values],
        "data": _nested(cube.values),
    }


# --- internals ----------------------------------------------------------------------------------

def _object_array(items: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def _property_keys(cube: xr.DataArray, dims: Sequence[str]) -> list[str]:
    if not dims:
        return [SINGLE_VALUE_KEY]
    labels = [[_label_text(v) for v in cube[d].values] for d in dims]
    return [LABEL_SEPARATOR.join(combo) for combo in itertools.product(*labels)]


def _label(value: Any) -> Any:
    if isinstance(value, np.datetime64):
        return cubes.isoformat_utc(pd.Timestamp(value).to_pydatetime())
    return _json_scalar(value)


def _label_text(value: Any) -> str:
    label = _label(value)
    return label if isinstance(label, str) else str(label)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _json_number(value)
    return value


def _json_number(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def _nested(values: np.ndarray) -> Any:
    """Nested lists of floats, non-finite values as None."""
    values = np.asarray(values, dtype=np.float64)
    nested = values.astype(object)
    nested[~np.isfinite(values)] = None
    return nested.tolist()


def _geojson_geometry(geometry: BaseGeometry | None) -> dict[str, Any] | None:
    if geometry is None or geometry.is_empty:
        return None
    return _tuples_to_lists(mapping(geometry))


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tuples_to_lists(v) for v in value]
    return value
