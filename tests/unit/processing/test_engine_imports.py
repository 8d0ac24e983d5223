"""Every container start and every synchronous `/result` pays the engine's import: the heavy libraries a graph
may not use load on first use (`stratus_processing.deferred`), and the first use does load them."""

import json
import os
import subprocess
import sys

from stratus_processing.deferred import DEFERRED, DeferredModule

from tests.support import REPO_ROOT

ENTRY_POINTS = ("stratus_processing.runner", "stratus_processing.sync_handler", "stratus_processing.__main__")


def _loaded_after(code: str) -> list[str]:
    loaded = "{m.split('.')[0] for m in sys.modules}"
    script = f"import sys, json; {code}; print(json.dumps(sorted({loaded} & {set(DEFERRED)!r})))"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                            env={"PATH": "", "AWS_DEFAULT_REGION": "eu-central-1",
                                 **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}})
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_engines_entry_points_import_none_of_the_deferred_libraries():
    assert _loaded_after("; ".join(f"import {module}" for module in ENTRY_POINTS)) == []


def test_a_cube_process_loads_xarray_and_pandas_on_first_use_and_scipy_stays_unloaded():
    code = ("import numpy as np; from affine import Affine; from rasterio.crs import CRS; "
            "import stratus_processing.runner; "
            "from stratus_processing import cube; from stratus_processing.env import EvalEnv; "
            "from stratus_processing.grid import Grid; from stratus_processing.graph import evaluate_graph; "
            "grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 0, 0, -10, 0), 2, 2); "
            "data = cube.make_cube(np.ones((2, 2)), grid=grid); "
            "graph = {'a': {'process_id': 'absolute', 'arguments': {'x': {'from_parameter': 'c'}}, 'result': True}}; "
            "assert (evaluate_graph(graph, EvalEnv(), arguments={'c': data}).values == 1).all()")
    assert _loaded_after(code) == ["pandas", "xarray"]


def test_a_deferred_module_imports_on_the_first_attribute_read():
    module = DeferredModule("json.tool")
    assert "loaded" not in repr(module)
    assert module.main is sys.modules["json.tool"].main
    assert "loaded" in repr(module)
