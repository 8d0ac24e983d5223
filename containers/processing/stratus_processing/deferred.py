"""What the engine imports when: the heavy libraries a graph may not use load on first use.

Every container start and every synchronous `/result` pays the engine's import, so `import
stratus_processing.runner` loads only what every run needs (numpy, rasterio, boto3, the graph machinery).
The libraries below cost ~0.1-0.4 s each and serve only some graphs; engine modules import them from here
(`from stratus_processing.deferred import xr`) and they load the first time an attribute is read: xarray
(and pandas with it) when a graph first touches a data cube, scipy only for the curve-fitting processes,
DuckDB (`parquet_index`) when a run first builds its catalog, cql2 only for a CQL2 filter. Elsewhere, in
the function that needs it: scikit-learn/skops (`ml`), netCDF4 and pyproj (netCDF output), shapely
vector cubes (`io.save`). `tests/unit/test_engine_imports.py` fails if the top-level import pulls one
of them again.

Why not `importlib.util.LazyLoader`: on Python 3.11 (the container's) it is not thread-safe, and the tiled
execution's threads may touch a module first at the same time; `importlib.import_module` holds the import
lock.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class DeferredModule:
    """Stands for module `name`; imports it when an attribute is first read."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<deferred module {self._name!r}{' (loaded)' if self._module is not None else ''}>"


if TYPE_CHECKING:
    import cql2
    import pandas as pd
    import scipy.optimize as scipy_optimize
    import scipy.sparse as scipy_sparse
    import xarray as xr
    from stratus.adapters import parquet_index
else:
    xr = DeferredModule("xarray")
    pd = DeferredModule("pandas")
    scipy_optimize = DeferredModule("scipy.optimize")
    scipy_sparse = DeferredModule("scipy.sparse")
    parquet_index = DeferredModule("stratus.adapters.parquet_index")  # DuckDB
    cql2 = DeferredModule("cql2")

# What the engine's top-level import must not load (checked by the test named above).
DEFERRED = ("xarray", "pandas", "scipy", "sklearn", "skops", "duckdb", "cql2", "netCDF4", "pyproj")
