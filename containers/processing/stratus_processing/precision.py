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
from typing import TYPE_CHECKING

import numpy as np
from stratus.file_formats import GTIFF, NETCDF, find_format

from stratus_processing import cube as cubes

if TYPE_CHECKING:
    from stratus_processing.graph import Node, ProcessGraph

SINGLE = cubes.SINGLE_PRECISION
DOUBLE = np.dtype(cubes.CUBE_DTYPE)
# Source data types whose every value float32 holds exactly.
SINGLE_PRECISION_SOURCES = frozenset({"int8", "uint8", "int16", "uint16", "float32"})
# Output data types float32 values fill without losing what the output keeps.
SINGLE_PRECISION_OUTPUTS = frozenset({"float32", "int8", "uint8", "int16", "uint16"})
_RASTER_FORMATS = frozenset({GTIFF, NETCDF})


def outputs_single_precision(graph: ProcessGraph) -> bool:
    """Whether every end node of the graph is a save_result storing a raster of float32 or narrower
    (format and options written out in the graph, not taken from parameters)."""
    return all(_stores_single_precision_raster(graph.nodes[node_id]) for node_id in graph.end_node_ids)


def load_dtype(source_data_types: Iterable[str | None], *, single_precision_outputs: bool) -> np.dtype:
    """The dtype a load's values take (see the module's docstring); unknown data types keep float64."""
    if not single_precision_outputs:
        return DOUBLE
    types = list(source_data_types)
    return SINGLE if types and all(t in SINGLE_PRECISION_SOURCES for t in types) else DOUBLE


def _stores_single_precision_raster(node: Node) -> bool:
    if node.process_id != "save_result" or node.namespace:
        return False
    if find_format(node.arguments.get("format")) not in _RASTER_FORMATS:
        return False
    options = node.arguments.get("options") or {}
    if not isinstance(options, Mapping) or {"from_parameter", "from_node"} & set(options):
        return False
    datatype = options.get("datatype") or "float32"
    return isinstance(datatype, str) and datatype.lower() in SINGLE_PRECISION_OUTPUTS
