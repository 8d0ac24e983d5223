"""The file formats Stratus reads and writes: the one definition behind `GET /file_formats`
(openEO API 1.2 shape) and `save_result`'s checks of format names and options.

Format names match case-insensitively (openEO). Parameters are JSON schemas; `validate_options`
checks an `options` object against them (the subset of JSON Schema used here: type, enum,
minimum, maximum) and fills in defaults, so the API and the processing agree on what is valid.
No dependencies: this module is part of the Lambda layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GTIFF, NETCDF, JSON, GEOJSON, CSV = "GTiff", "netCDF", "JSON", "GeoJSON", "CSV"
# The media type of each output format's files (result assets, the order catalogue's `returns`).
MEDIA_TYPES = {
    GTIFF: "image/tiff; application=geotiff; profile=cloud-optimized",
    NETCDF: "application/netcdf",
    JSON: "application/json",
    GEOJSON: "application/geo+json",
    CSV: "text/csv",
}

# Options openeo-geopyspark-driver documents for its GTiff and netCDF output (its `/file_formats`), which
# scripts written for it pass: accepted and ignored, with a warning in the job log, rather than refused.
IGNORED_OPTIONS: dict[str, frozenset[str]] = {
    GTIFF: frozenset({"tile_grid", "ZLEVEL", "sample_by_feature", "feature_id_property", "colormap",
                      "filename_prefix", "separate_asset_per_band", "batch_mode", "attach_gdalinfo_assets"}),
    NETCDF: frozenset({"sample_by_feature", "feature_id_property", "filename_prefix", "batch_mode"}),
}
_IGNORED_NOTE = ("Options of other back-ends that this one has no use for (e.g. `filename_prefix`, `tile_grid`, "
                 "`sample_by_feature`) are accepted and ignored, with a warning in the job's log.")

_GTIFF_DATATYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]

FILE_FORMATS: dict[str, dict[str, dict[str, Any]]] = {
    "input": {
        GTIFF: {
            "title": "GeoTIFF",
            "description": "GeoTIFF and Cloud-Optimized GeoTIFF assets of STAC items (load_collection, "
                           "load_stac), read by window over S3 or HTTP(S).",
            "gis_data_types": ["raster"],
            "parameters": {},
        },
    },
    "output": {
        GTIFF: {
            "title": "GeoTIFF (Cloud-Optimized)",
            "description": "Cloud-Optimized GeoTIFF on the cube's exact pixel grid, 512 px tiles with "
                           "overviews. One file per time step when the cube still has a `t` dimension "
                           "(`result_<YYYY-MM-DD>.tif`, with the step's `datetime` in the result metadata), "
                           "else one `result.tif`; the `bands` dimension becomes the file's bands, named "
                           "after the labels. " + _IGNORED_NOTE,
            "gis_data_types": ["raster"],
            "parameters": {
                "datatype": {
                    "type": "string",
                    "description": "The data type of the pixel values. Integer values are rounded and "
                                   "clipped to the type's range.",
                    "enum": _GTIFF_DATATYPES,
                    "default": "float32",
                },
                "nodata": {
                    "type": ["number", "null"],
                    "description": "The value no-data is written as. Default: NaN for floating-point data "
                                   "types; for integer data types the type's maximum for unsigned and "
                                   "minimum for signed ones (e.g. 255 for uint8).",
                    "default": None,
                },
                "compression": {
                    "type": "string",
                    "description": "The compression of the tiles (lossless).",
                    "enum": ["DEFLATE", "ZSTD", "LZW", "NONE"],
                    "default": "DEFLATE",
                },
                "overviews": {
                    "type": ["boolean", "string"],
                    "description": "Add overviews (averaged) down to one tile, for fast previews. `AUTO` and "
                                   "`OFF` (openeo-geopyspark-driver's values) mean true and false.",
                    "enum": [True, False, "AUTO", "OFF"],
                    "default": True,
                },
            },
            "links": [{"rel": "about", "href": "https://gdal.org/drivers/raster/cog.html",
                       "title": "GDAL on Cloud-Optimized GeoTIFF"}],
        },
        NETCDF: {
            "title": "netCDF (CF)",
            "description": "One CF-1.8 netCDF-4 file `result.nc` for the whole cube: dimensions `t` (CF "
                           "time, seconds since 1970-01-01), `y` and `x` (projection coordinates of the pixel "
                           "centres), one data variable per band label (no `bands` dimension; a cube without "
                           "bands has the variable `data`), NaN as `_FillValue`, and the grid mapping "
                           "variable `crs` (CF parameters, `crs_wkt` and GDAL's `spatial_ref`). Vector data "
                           "cubes (e.g. from aggregate_spatial) as CF discrete sampling geometries "
                           "(featureType timeSeries, or point without `t`): dimensions `feature` and `t`, one "
                           "variable per band label, `feature_id` (cf_role timeseries_id), `lat`/`lon` of a point "
                           "inside each geometry and `geometry_wkt`. " + _IGNORED_NOTE,
            "gis_data_types": ["raster", "vector"],
            "parameters": {
                "datatype": {
                    "type": "string",
                    "description": "The data type of the data variables.",
                    "enum": ["float32", "float64"],
                    "default": "float32",
                },
                "compression_level": {
                    "type": "integer",
                    "description": "zlib compression level of the data variables (0: uncompressed).",
                    "minimum": 0,
                    "maximum": 9,
                    "default": 4,
                },
            },
            "links": [{"rel": "about", "href": "https://cfconventions.org/",
                       "title": "NetCDF Climate and Forecast (CF) Metadata Conventions"}],
        },
        JSON: {
            "title": "JSON",
            "description": "Non-raster results as JSON (`result.json`): numbers, strings, booleans, arrays, "
                           "objects (no-data and NaN as null). Vector data cubes with a `t` dimension (time "
                           "series from aggregate_spatial) as `{date: [[value per band] per geometry]}`, the "
                           "layout of openeo-geopyspark-driver that the openeo client's "
                           "`timeseries_json_to_pandas` reads; other vector data cubes as `{dimensions, labels, "
                           "geometries, properties, data}`; small labeled arrays as `{dimensions, labels, "
                           "data}`.",
            "gis_data_types": ["vector", "table", "other"],
            "parameters": {},
        },
        GEOJSON: {
            "title": "GeoJSON",
            "description": "Vector data cubes as a GeoJSON FeatureCollection (`result.geojson`, EPSG:4326): "
                           "one Feature per geometry, its values as properties named after the labels of "
                           "the other dimensions.",
            "gis_data_types": ["vector"],
            "parameters": {},
        },
        CSV: {
            "title": "Comma Separated Values",
            "description": "Vector data cubes (e.g. from aggregate_spatial) as CSV (`result.csv`), "
                           "openeo-geopyspark-driver's layout: one row per geometry and date, columns `date` "
                           "(with a `t` dimension), `feature_index` (0-based, input order), then one column per "
                           "band label (labels of further dimensions joined with `~`); no-data empty.",
            "gis_data_types": ["vector", "table"],
            "parameters": {},
        },
    },
}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,), "null": (type(None),),
    "object": (dict,), "array": (list,),
}


def format_names(kind: str = "output") -> list[str]:
    return list(FILE_FORMATS[kind])


def find_format(name: str, kind: str = "output") -> str | None:
    """The canonical name of format `name` (case-insensitive), None when there is no such format."""
    if not isinstance(name, str):
        return None
    return next((known for known in FILE_FORMATS[kind] if known.lower() == name.lower()), None)


def ignored_options(format_name: str, options: Mapping[str, Any] | None, kind: str = "output") -> list[str]:
    """The options given that other back-ends know and this one ignores (`IGNORED_OPTIONS`)."""
    if kind != "output":
        return []
    return sorted(set(options or {}) & IGNORED_OPTIONS.get(format_name, frozenset()))


def validate_options(format_name: str, options: Mapping[str, Any] | None, kind: str = "output") -> dict[str, Any]:
    """The options with defaults filled in (ignored ones left out); raises ValueError saying what is wrong."""
    parameters = FILE_FORMATS[kind][format_name]["parameters"]
    options = dict(options or {})
    unknown = sorted(set(options) - set(parameters) - set(ignored_options(format_name, options, kind)))
    if unknown:
        known = ", ".join(parameters) or "none"
        raise ValueError(f"{format_name} has no option {', '.join(map(repr, unknown))} (options: {known})")
    resolved = {}
    for name, schema in parameters.items():
        if name not in options:
            resolved[name] = schema.get("default")
            continue
        value = options[name]
        _check(name, value, schema)
        resolved[name] = value
    return resolved


def _check(name: str, value: Any, schema: Mapping[str, Any]) -> None:
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if types and not any(_is_type(value, t) for t in types):
        raise ValueError(f"option '{name}' must be {' or '.join(types)}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"option '{name}' must be one of {', '.join(map(str, schema['enum']))}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ValueError(f"option '{name}' must be at least {schema['minimum']}, got {value!r}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ValueError(f"option '{name}' must be at most {schema['maximum']}, got {value!r}")


def _is_type(value: Any, json_type: str) -> bool:
    if isinstance(value, bool):
        return json_type == "boolean"
    if json_type == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(json_type, ()))
