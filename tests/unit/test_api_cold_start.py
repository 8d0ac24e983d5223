"""The API Lambda must start fast: it never imports the raster stack, and what only some requests need loads on
first use (the pydantic event models, the X-Ray SDK when tracing is off, pyjwt, PynamoDB, most domain modules).
Not timed: `benchmarks/api_cold_start` measures."""

import json
import os
import subprocess
import sys

from tests.support import REPO_ROOT

HEAVY = ("numpy", "rasterio", "xarray", "pandas", "stratus_processing", "duckdb", "shapely", "cql2")
# ~0.1 s each: pydantic is needed only to send an event, the X-Ray SDK only when tracing is on
LOADED_ON_USE = ("pydantic", "aws_xray_sdk")
# what the routes that need them import (together about half of the API's own import time): the token check
# (pyjwt, which loads cryptography) and password hashing (argon2), PynamoDB and the stores, JSON Schema, and the
# domain modules behind estimates, fan-out plans, orders, results, web services, customers and validation
LOADED_BY_THEIR_ROUTES = ("jwt", "cryptography", "argon2", "pynamodb", "stratus.store", "jsonschema",
                          "stratus.domain.estimate", "stratus.domain.fanout_plan", "stratus.domain.orders",
                          "stratus.domain.results", "stratus.domain.web_services", "stratus.domain.customers",
                          "stratus.domain.user_processes", "stratus.outbound")


def test_api_handler_imports_no_raster_libraries_and_defers_what_only_some_requests_need():
    wanted = HEAVY + LOADED_ON_USE + LOADED_BY_THEIR_ROUTES
    code = (
        "import sys, json; sys.path.insert(0, 'functions/api'); import app; "
        f"print(json.dumps([m for m in {wanted!r} if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={"PATH": "", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "eu-central-1",
                                 # the packages under test, not an installed copy (`pytest-here` sets it)
                                 **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}},
                            check=True)
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert [m for m in imported if m in HEAVY] == []
    assert [m for m in imported if m in LOADED_ON_USE] == []
    assert [m for m in imported if m in LOADED_BY_THEIR_ROUTES] == []


def test_event_models_load_on_first_use_under_their_old_names():
    from stratus import event_models, events

    assert events.StatusEvent is event_models.StatusEvent
    assert events.parse_log_event(events.LogEvent(job_id="j", message="m").model_dump_json()).message == "m"


def test_settings_fanout_defaults_are_the_planners():
    """`stratus.settings` takes the planner's tile sizes from `resources` instead of importing the planner."""
    from stratus.domain.fanout_plan import BLOCK_PX, MAX_TILE_PX, MIN_TILE_PX
    from stratus.settings import Settings

    defaults = Settings()
    assert (defaults.fanout_min_tile_px, defaults.fanout_max_tile_px, defaults.fanout_tile_block_px) == \
        (MIN_TILE_PX, MAX_TILE_PX, BLOCK_PX)
