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
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from stratus_processing.deferred import pd, xr
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


def to_timeseries_json(cube: xr.DataArray) -> dict[str, list[list[float | None]]]:
    """openeo-geopyspark-driver's time series layout (see the module docstring); the cube has `t`."""
    values = _by_geometry_time_band(cube)
    dates = [_label_text(v) for v in cube[cubes.T].values]
    return {date: _nested(values[:, index, :]) for index, date in enumerate(dates)}


def to_table(cube: xr.DataArray) -> pd.DataFrame:
    """One row per geometry and date (see the module docstring); no-data NaN."""
    values = _by_geometry_time_band(cube)
    geometries, steps, _ = values.shape
    table = pd.DataFrame(values.reshape(geometries * steps, -1), columns=band_labels(cube))
    table.insert(0, "feature_index", np.repeat(np.arange(geometries), steps))
    if cubes.T in cube.dims:
        table.insert(0, "date", np.tile([_label_text(v) for v in cube[cubes.T].values], geometries))
        table = table.sort_values(["date", "feature_index"], kind="stable", ignore_index=True)
    return table


def to_dsg_dataset(cube: xr.DataArray, variable_names: Sequence[str]) -> xr.Dataset:
    """CF discrete sampling geometries (see the module docstring); `variable_names` one per band."""
    values = _by_geometry_time_band(cube)
    geometries = cube[FEATURE_GEOMETRY].values
    points = [g.representative_point() if g is not None and not g.is_empty else None for g in geometries]
    ids = [_json_scalar(i) for i in cube[FEATURE_ID].values]
    coords: dict[str, Any] = {
        "feature_id": ("feature", np.array([str(i) if i is not None else f"feature_{n}" for n, i in enumerate(ids)],
                                           dtype=object),
                       {"cf_role": "timeseries_id" if cubes.T in cube.dims else "point_id",
                        "long_name": "feature id (GeoJSON id, else feature_<index>)"}),
        "lat": ("feature", np.array([p.y if p is not None else np.nan for p in points]),
                {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude of a point "
                 "inside the geometry"}),
        "lon": ("feature", np.array([p.x if p is not None else np.nan for p in points]),
                {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude of a point "
                 "inside the geometry"}),
        "geometry_wkt": ("feature", np.array([g.wkt if g is not None else "" for g in geometries], dtype=object),
                         {"long_name": "geometry of the feature as WKT (EPSG:4326)"}),
    }
    dims: tuple[str, ...] = ("feature",)
    if cubes.T in cube.dims:
        dims = ("feature", cubes.T)
        labels = cube[cubes.T].values
        if np.issubdtype(labels.dtype, np.datetime64):
            coords[cubes.T] = (cubes.T, labels, {"standard_name": "time", "long_name": "time", "axis": "T"})
        else:  # labels that aren't instants (e.g. "2022-06" periods): text, not CF time
            coords[cubes.T] = (cubes.T, np.array([str(v) for v in labels], dtype=object),
                               {"long_name": "time period"})
    else:
        values = values[:, 0, :]
    data_vars = {}
    for index, (name, label) in enumerate(zip(variable_names, band_labels(cube), strict=True)):
        data_vars[name] = (dims, values[..., index], {"long_name": label, "band": label})
    dataset = xr.Dataset(data_vars, coords=coords)
    dataset.attrs.update({"Conventions": "CF-1.8", "featureType": "timeSeries" if cubes.T in cube.dims else "point",
                          "title": "openEO vector data cube", "source": "aggregated by Stratus"})
    return dataset


def band_labels(cube: xr.DataArray) -> list[str]:
    """The labels of the values per geometry and date (see the module docstring)."""
    dims = [d for d in cube.dims if d not in (GEOMETRY, cubes.T)]
    if not dims:
        return [SINGLE_VALUE_KEY]
    return _property_keys(cube, dims)


# --- internals ----------------------------------------------------------------------------------

def _by_geometry_time_band(cube: xr.DataArray) -> np.ndarray:
    """The values shaped (geometry, t (1 without `t`), band), bands flattened in label order."""
    others = [d for d in cube.dims if d not in (GEOMETRY, cubes.T)]
    if cubes.T in cube.dims:
        ordered = cube.transpose(GEOMETRY, cubes.T, *others).values
    else:
        ordered = cube.transpose(GEOMETRY, *others).values[:, np.newaxis]
    return ordered.reshape(ordered.shape[0], ordered.shape[1], -1).astype(np.float64)


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
