"""`/processes` lists exactly what the engine runs, with the official metadata (never retyped)."""

import hashlib
import json
from importlib import resources

import stratus_processing.processes  # noqa: F401  (registers every process)
from stratus.domain.processes import predefined_process_ids, predefined_processes
from stratus_processing.registry import DEFAULT_REGISTRY
from tests.support import CONFORMANCE, require_shared


def test_listed_processes_equal_the_engine_registry():
    assert predefined_process_ids() == set(DEFAULT_REGISTRY)


# Community processes openeo-processes does not define (the geopyspark back-end's, used by the client
# docs): Stratus writes their specs, with the same names and parameters.
STRATUS_SPECS = {"to_scl_dilation_mask", "mask_scl_dilation"}
# The random-forest processes were official proposals until openeo-processes removed them from 2.0.0
# (commit 81a4594, for a later ML release), so the shared copy of 2.0.0-rc.2 lacks them: ours are the files
# of the commit before, f86913846deb665ce892af6bff35fe54ae677f2a, checked by their git blob ids.
ML_PROPOSAL_BLOBS = {
    "fit_class_random_forest": "6eb874bf900b6703ba32b48baed510466e011b16",
    "fit_regr_random_forest": "51191fa5a6076a5de77a6ebc5fc1613d881bd3a6",
    "predict_random_forest": "62c54e9f2082d99c3e437ef39eee92fd0722e858",
    "save_ml_model": "5e9ea8b04e2a20109b677b9886ce7312caa79973",
    "load_ml_model": "151513c801a8c0360ea40833581d9987b0fa2396",
}
# Stratus's own specs: class probabilities (shaped like predict_random_forest) and the land-cover service's
# quality assurance (a seeded held-out split, the accuracy report).
STRATUS_ML_SPECS = {"predict_class_probabilities", "split_training_samples", "class_accuracy_report"}


def test_specs_are_verbatim_copies_of_the_official_ones():
    official = require_shared(CONFORMANCE / "openeo-processes")
    for spec in predefined_processes():
        if spec["id"] in STRATUS_SPECS | STRATUS_ML_SPECS | set(ML_PROPOSAL_BLOBS):
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


def _git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def test_ml_specs_are_the_upstream_proposal_files():
    folder = resources.files("stratus") / "process_specs"
    for process_id, blob in ML_PROPOSAL_BLOBS.items():
        assert _git_blob_id((folder / f"{process_id}.json").read_bytes()) == blob, process_id
    assert predefined_process_ids() >= set(ML_PROPOSAL_BLOBS) | STRATUS_ML_SPECS


def test_stratus_ml_specs_are_experimental_and_absent_upstream():
    official = require_shared(CONFORMANCE / "openeo-processes")
    specs = {spec["id"]: spec for spec in predefined_processes() if spec["id"] in STRATUS_ML_SPECS}
    assert set(specs) == STRATUS_ML_SPECS
    for process_id, spec in specs.items():
        assert not (official / f"{process_id}.json").exists()
        assert not (official / "proposals" / f"{process_id}.json").exists()
        assert spec["experimental"] is True and "machine learning" in spec["categories"]
        assert spec["description"] and spec["returns"]["schema"]
        names = [p["name"] for p in spec["parameters"]]
        assert len(set(names)) == len(names)
