"""`/processes` lists exactly what the engine runs, with the official metadata (never retyped)."""

import json

import stratus_processing.processes  # noqa: F401  (registers every process)
from stratus.domain.processes import predefined_process_ids, predefined_processes
from stratus_processing.registry import DEFAULT_REGISTRY
from tests.support import CONFORMANCE, require_shared


def test_listed_processes_equal_the_engine_registry():
    assert predefined_process_ids() == set(DEFAULT_REGISTRY)


# Community processes openeo-processes does not define (the geopyspark back-end's, used by the client
# docs): Stratus writes their specs, with the same names and parameters.
STRATUS_SPECS = {"to_scl_dilation_mask", "mask_scl_dilation"}


def test_specs_are_verbatim_copies_of_the_official_ones():
    official = require_shared(CONFORMANCE / "openeo-processes")
    for spec in predefined_processes():
        if spec["id"] in STRATUS_SPECS:
            continue
        # experimental processes the issues ask for (e.g. load_stac) live under proposals/
        path = official / f"{spec['id']}.json"
        if not path.exists():
            path = official / "proposals" / f"{spec['id']}.json"
        assert spec == json.loads(path.read_text()), spec["id"]


def test_stratus_specs_are_experimental_processes_absent_upstream():
    official = require_shared(CONFORMANCE / "openeo-processes")
    specs = {spec["id"]: spec for spec in predefined_processes() if spec["id"] in STRATUS_SPECS}
    assert set(specs) == STRATUS_SPECS
    for process_id, spec in specs.items():
        assert not (official / f"{process_id}.json").exists()
        assert not (official / "proposals" / f"{process_id}.json").exists()
        assert spec["experimental"] is True
        assert spec["description"] and spec["returns"]["schema"]
        names = [p["name"] for p in spec["parameters"]]
        assert names[0] == "data" and len(set(names)) == len(names)
        assert all(p.get("optional") is True and "default" in p for p in spec["parameters"][1:])
