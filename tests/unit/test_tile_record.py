"""The fan-out's part of the run contract: the tile record and the run-step environment."""

from __future__ import annotations

import pytest
from stratus import catalog_layout
from stratus.run_contract import (
    RUN_STEP_ENV,
    TILE_ID_ENV,
    RunConfigError,
    RunContractError,
    TileRecord,
    run_step_of,
)

PREFIX = "jobs/j-1/runs/r-1/results/"


def test_a_finished_record_round_trips_through_json():
    record = TileRecord("r0001c0002", "finished",
                        assets={"tiles/r0001c0002/out.tif": {"key": f"{PREFIX}tiles/r0001c0002/out.tif",
                                                             "bbox": [1, 2, 3, 4]}},
                        partials={"agg": {"count": [[3]]}}, json_outputs={"out.json": [1]},
                        usage={"cpu": {"value": 1.5, "unit": "cpu-seconds"}})
    document = record.to_json()
    assert "error" not in document
    assert TileRecord.from_json(document) == record
    assert record.finished
    assert record.key(PREFIX) == f"{PREFIX}tiles/r0001c0002/record.json"


def test_an_error_record_keeps_its_error():
    record = TileRecord("r0c1", "error", error={"code": "ProcessParameterInvalid", "message": "bad"})
    assert TileRecord.from_json(record.to_json()) == record
    assert not record.finished


@pytest.mark.parametrize("document", [
    [], {"status": "finished"}, {"tile_id": "r0c0", "status": "done"},
    {"tile_id": "r0c0", "status": "error"},
    {"tile_id": "r0c0", "status": "finished", "assets": {"a.tif": {}}},
    {"tile_id": "r0c0", "status": "finished", "partials": []},
])
def test_a_record_not_in_the_contracts_shape_is_refused(document):
    with pytest.raises(RunContractError):
        TileRecord.from_json(document)


def test_the_run_step_defaults_to_the_single_task():
    assert run_step_of({}) == "run"
    assert run_step_of({RUN_STEP_ENV: "combine"}) == "combine"
    assert run_step_of({RUN_STEP_ENV: "tile", TILE_ID_ENV: "r0c0"}) == "tile"
    with pytest.raises(RunConfigError, match=TILE_ID_ENV):
        run_step_of({RUN_STEP_ENV: "tile"})
    with pytest.raises(RunConfigError, match="one of"):
        run_step_of({RUN_STEP_ENV: "tiles"})


def test_fanout_keys_live_under_the_results_prefix():
    assert catalog_layout.plan_key(PREFIX) == f"{PREFIX}plan.json"
    assert catalog_layout.tile_items_key(PREFIX) == f"{PREFIX}tiles.json"
    assert catalog_layout.tile_prefix(PREFIX, "r0c0") == f"{PREFIX}tiles/r0c0/"
    assert catalog_layout.partial_manifest_key(PREFIX) == f"{PREFIX}partial.json"
