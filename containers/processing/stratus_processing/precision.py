"""Which floating-point type a load's values take: float32 where the graph cannot tell, else float64.

A cube is float64 by default (`cube.CUBE_DTYPE`), so band math and temporal means reproduce a plain
numpy computation to the last bit. But most results are stored as float32 rasters (the default of
save_result's GTiff and netCDF), and most EO sources are 8- or 16-bit integers (Sentinel-2 and
Landsat DN), whose values float32 holds exactly. For such a graph, computing in float32 changes
the stored result by a few units in its own last place (the engine_floor benchmark measures at
most 1.2e-7 on a mean NDVI, the float32 spacing at 1), and halves the bytes every step of the
graph reads and writes: 4.2-4.4 → 4.0-4.1 s on 5,490² px × 4 dates, and less memory (422 → 396 MiB).

So a load gives float32 when both hold (anything else keeps float64):
- the graph stores its results only as rasters of float32 or narrower: every end node of the
  top-level graph is a `save_result` to GTiff or netCDF whose `datatype` is float32 (the default) or
  an integer type float32 holds exactly. A graph whose results are numbers or text (JSON, CSV,
  GeoJSON, a vector cube, no save_result), or stored as float64 or 32-bit integers, keeps every
  digit the float64 computation gives (the official process tests check 10 decimals);
- every asset the load reads says (STAC `raster:bands` `data_type`) that its values are 8- or
  16-bit integers or float32: their scaled values are then as precise as float32 can hold them.

Processes that need float64 (neighbourhoods, UDFs, curve fitting, ...) convert a float32 cube as
they always converted integers and booleans; results of processes on float32 cubes stay float32
where numpy keeps them so (arithmetic with numbers, reductions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from stratus.file_formats import GTIFF, NETCDF, find_format

SINGLE = np.dtype(np.float32)
DOUBLE = np.dtype(np.float64)
# Source data types whose every value float32 holds exactly.
SINGLE_PRECISION_SOURCES = frozenset({"int8", "uint8", "int16", "uint16", "float32"})
# Output data types float32 values fill without losing what the output keeps.
SINGLE_PRECISION_OUTPUTS = frozenset({"float32", "int8", "uint8", "int16", "uint16"})
_RASTER_FORMATS = frozenset({GTIFF, NETCDF})


def outputs_single_precision(process_graph: Any) -> bool:
    """Whether every end node of the flat graph is a save_result storing a raster of float32 or narrower
    (format and options written out in the graph, not taken from parameters)."""
    if not isinstance(process_graph, Mapping) or not process_graph:
        return False
    referenced = set(_referenced_nodes(process_graph.values()))
    ends = [node for node_id, node in process_graph.items() if node_id not in referenced]
    return bool(ends) and all(_stores_single_precision_raster(node) for node in ends)


def load_dtype(source_data_types: Iterable[str | None], *, single_precision_outputs: bool) -> np.dtype:
    """The dtype a load's values take (see the module's docstring); unknown data types keep float64."""
    if not single_precision_outputs:
        return DOUBLE
    types = list(source_data_types)
    return SINGLE if types and all(t in SINGLE_PRECISION_SOURCES for t in types) else DOUBLE


def _stores_single_precision_raster(node: Any) -> bool:
    if not isinstance(node, Mapping) or node.get("process_id") != "save_result" or node.get("namespace"):
        return False
    arguments = node.get("arguments") or {}
    if find_format(arguments.get("format")) not in _RASTER_FORMATS:
        return False
    options = arguments.get("options") or {}
    if not isinstance(options, Mapping) or {"from_parameter", "from_node"} & set(options):
        return False
    datatype = options.get("datatype") or "float32"
    return isinstance(datatype, str) and datatype.lower() in SINGLE_PRECISION_OUTPUTS


def _referenced_nodes(values: Iterable[Any]) -> Iterable[str]:
    """Node ids referenced by `from_node` in the nodes' arguments (not inside child process graphs,
    whose `from_node` name their own nodes)."""
    for value in values:
        if isinstance(value, Mapping):
            if "process_graph" in value and "process_id" not in value:
                continue
            if isinstance(value.get("from_node"), str) and len(value) == 1:
                yield value["from_node"]
            else:
                yield from _referenced_nodes(value.values())
        elif isinstance(value, list):
            yield from _referenced_nodes(value)
