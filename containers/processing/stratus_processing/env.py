"""What a process function may use besides its arguments: data access, result output, reporting,
and the dimension a callback is vectorised over."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stratus.errors import InternalException

from stratus_processing.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    from stratus.domain.load_needs import LoadNeeds

    from stratus_processing.io.cog import RasterReader
    from stratus_processing.io.stac import StacCatalog
    from stratus_processing.fanout import FanoutStep
    from stratus_processing.results import ResultStore
    from stratus_processing.tiling import TileContext


@dataclass(frozen=True)
class EvalEnv:
    catalog: StacCatalog | None = None
    rasters: RasterReader | None = None
    results: ResultStore | None = None
    reporter: Reporter = field(default_factory=NullReporter)
    # Inside a callback over a cube dimension (e.g. reduce_dimension's reducer) the `data` parameter
    # is the whole cube and this names the dimension that plays the role of the openEO array, so
    # `mean(data)` is `data.mean(array_dimension)`: callbacks run vectorised, never per pixel.
    array_dimension: str | None = None
    # Set in tiled execution (`tiling.run_tiled`): the window of the output grid being evaluated, the
    # load plans made once for the whole grid, and the output sinks save_result writes each tile to.
    tile: TileContext | None = None
    # User-defined processes the graph may call, by id: `{id: {"process_graph": ..., "parameters": [...]}}`.
    # Frozen into the run's snapshot by PrepareJob, so the container needs no access to the store.
    user_processes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What the graph being evaluated keeps of each of its load nodes, by node id (`load_extent`).
    load_needs: Mapping[str, LoadNeeds] = field(default_factory=dict)
    # The models `load_ml_model` may read, by the reference written in the graph (job id or results URL):
    # `{"key": <results bucket key>}` or `{"error": <why not>}`, resolved for the graph's owner when the run
    # was frozen (`stratus.domain.ml_models`), so the engine never reads another user's or a foreign file.
    ml_models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Set in a step of a fanned-out run (`fanout`): the tile's window of the output grid and where
    # `aggregate_spatial` leaves its combinable parts (tile step) or finds them combined (combine step).
    fanout: FanoutStep | None = None
    # Whether the graph being evaluated stores its results only as float32 rasters (or narrower), so its
    # loads may read 8/16-bit sources as float32 (`precision`): set once for the top-level graph.
    single_precision_outputs: bool = False

    def for_array_dimension(self, dimension: str | None) -> EvalEnv:
        return replace(self, array_dimension=dimension)

    def array_dimension_of(self, data: Any) -> str | None:
        """The dimension of an `xarray.DataArray` that plays the openEO array: the callback's dimension,
        or the only dimension of a one-dimensional (labeled) array outside any cube."""
        dims = getattr(data, "dims", ())
        if self.array_dimension is not None and self.array_dimension in dims:
            return self.array_dimension
        if len(dims) == 1:
            return dims[0]
        return None

    def require_catalog(self) -> StacCatalog:
        if self.catalog is None or self.rasters is None:
            raise InternalException(message="No data catalog is configured for this evaluation.")
        return self.catalog

    def require_results(self) -> ResultStore:
        if self.results is None:
            raise InternalException(message="No result store is configured for this evaluation.")
        return self.results
