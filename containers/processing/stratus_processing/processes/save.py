"""Output: `save_result` in the formats of `stratus.file_formats` (what `/file_formats` lists).

Raster data cubes go to GTiff or netCDF (`io.save` sinks; in tiled execution each tile is written
into the output by window), other results (numbers, arrays, vector cubes) to JSON or GeoJSON.
"""

from __future__ import annotations

from stratus.errors import InternalException
from stratus.events import LogLevel
from stratus.file_formats import CSV, GEOJSON, GTIFF, JSON, NETCDF, find_format, format_names, ignored_options, validate_options

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import FormatUnsuitableException
from stratus_processing.io.save import (OutputType, arranged, save_csv, save_geojson, save_json, save_raster,
                                        save_vector_netcdf)
from stratus_processing.registry import ProcessArgs, process
from stratus_processing.tiling import TilingNotApplicable
from stratus_processing.vector_cube import is_vector_cube

RASTER_FORMATS = frozenset({GTIFF, NETCDF})
OTHER_WRITERS = {JSON: save_json, GEOJSON: save_geojson, CSV: save_csv}


@process("save_result")
def save_result(args: ProcessArgs, env: EvalEnv) -> bool:
    data = args.get_required("data")
    format_name = _format(args)
    options = _options(args, format_name)
    ignored = ignored_options(format_name, args.get_optional("options", {}, expected_type=dict))
    if ignored:
        env.reporter.log(f"save_result: {format_name} option(s) {', '.join(map(repr, ignored))} of other back-ends "
                         f"have no use here and were ignored", level=LogLevel.WARNING, path=args.path)
    vector_netcdf = format_name == NETCDF and is_vector_cube(data)
    if format_name in RASTER_FORMATS and not cubes.is_cube(data) and not vector_netcdf:
        raise FormatUnsuitableException(reason=f"{format_name} stores raster data cubes; save other results as "
                                               f"JSON (or vector data cubes as GeoJSON)")

    fanout = env.fanout
    if fanout is not None and fanout.window is not None and (format_name not in RASTER_FORMATS or vector_netcdf):
        # a fanned-out run's tile holds only its part of a vector result: the combine step writes it
        # from aggregate_spatial's parts; nothing else can be combined
        if not is_vector_cube(data):
            raise InternalException(message=f"save_result: a {format_name} output of this data cannot be combined "
                                            f"from tiles; the run should have been one task")
        env.reporter.log(f"save_result: the {format_name} output is written when the tiles are combined",
                         path=args.path)
        return True
    tile = env.tile
    if tile is not None and tile.outputs is not None:
        if format_name not in RASTER_FORMATS:
            raise TilingNotApplicable(f"{format_name} output is not written by tile")
        tile.outputs.write(args.node_id or "", format_name, options, data, path=args.path)
        return True

    if format_name in RASTER_FORMATS and not vector_netcdf:
        shape = " × ".join(f"{dim} {size}" for dim, size in arranged(data, format_name).sizes.items())
        env.reporter.log(f"save_result: writing result as {format_name} ({shape})", path=args.path)
        records = save_raster(data, env.require_results(), format_name, options)
    else:
        env.reporter.log(f"save_result: writing result as {format_name}", path=args.path)
        writer = save_vector_netcdf if vector_netcdf else OTHER_WRITERS[format_name]
        records = writer(data, env.require_results(), options=options)
    env.reporter.log(f"save_result: wrote {', '.join(r.name for r in records)}", path=args.path)
    return True


def _format(args: ProcessArgs) -> str:
    value = args.get_required("format", expected_type=str)
    format_name = find_format(value)
    if format_name is None:
        raise args.invalid("format", f"'{value}' is not one of: {', '.join(format_names())}")
    return format_name


def _options(args: ProcessArgs, format_name: str) -> dict:
    options = args.get_optional("options", {}, expected_type=dict)
    try:
        resolved = validate_options(format_name, options)
        if format_name in RASTER_FORMATS:
            OutputType.of(resolved.get("datatype") or "float32", resolved.get("nodata"))
    except ValueError as exc:
        raise args.invalid("options", str(exc)) from None
    return resolved
