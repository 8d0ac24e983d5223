"""The API Lambda must start fast: it never imports the raster stack."""

import json
import subprocess
import sys

from tests.support import REPO_ROOT

HEAVY = ("numpy", "rasterio", "xarray", "pandas", "stratus_processing", "duckdb", "shapely", "cql2")


def test_api_handler_imports_no_raster_libraries():
    code = (
        "import sys, json; sys.path.insert(0, 'functions/api'); import app; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={"PATH": "", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "eu-central-1"},
                            check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
