"""Sentinel-2 item handling (`stratus_processing.io.sentinel2`) on the recorded Earth Search items; the
reprocessed twins are copies of a real item with another baseline (what an archive holding both lists)."""

from __future__ import annotations

import copy

import pytest
from stratus_processing.io import sentinel2
from stratus_processing.io.stac import StacItem

from tests.support_stac_server import recorded_items, require_real_data


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict]:
    return {item["id"]: item for item in recorded_items(require_real_data())}


def twin(document: dict, *, new_id: str, baseline: str, datastrip: str | None = None) -> dict:
    copied = copy.deepcopy(document)
    copied["id"] = new_id
    properties = copied["properties"]
    old = properties["s2:processing_baseline"]
    properties["s2:processing_baseline"] = baseline
    properties["s2:datatake_id"] = properties["s2:datatake_id"].replace(f"_N{old}", f"_N{baseline}")
    if datastrip is not None:
        properties["s2:datastrip_id"] = datastrip
    return copied


def items(*documents: dict) -> list[StacItem]:
    return [StacItem.from_document(d) for d in documents]


def test_of_two_baselines_of_one_product_the_newest_stays(recorded):
    real = recorded["S2A_13TDE_20231008_0_L2A"]  # baseline 05.09
    older = twin(real, new_id="S2A_13TDE_20231008_1_L2A", baseline="04.00")
    kept, superseded = sentinel2.prepare_items(items(older, real))
    assert [i.id for i in kept] == ["S2A_13TDE_20231008_0_L2A"]
    assert [i.id for i in superseded] == ["S2A_13TDE_20231008_1_L2A"]


def test_items_of_one_baseline_all_stay_to_be_mosaicked(recorded):
    real = recorded["S2A_13TDE_20231008_0_L2A"]
    other_datastrip = twin(real, new_id="S2A_13TDE_20231008_1_L2A", baseline="05.09", datastrip="another")
    kept, superseded = sentinel2.prepare_items(items(real, other_datastrip))
    assert len(kept) == 2 and superseded == []


def test_other_tiles_days_and_collections_are_left_alone(recorded):
    documents = list(recorded.values())  # S2 13TDE 2023, S2 29RKH 2020, Landsat, DEM tiles
    kept, superseded = sentinel2.prepare_items(items(*documents))
    assert superseded == [] and [i.id for i in kept] == [d["id"] for d in documents]
    landsat = next(i for i in kept if i.id.startswith("LC08"))
    assert landsat.assets == StacItem.from_document(recorded[landsat.id]).assets


def test_radiometry_comes_from_the_item_else_from_its_baseline(recorded):
    real = StacItem.from_document(recorded["S2A_13TDE_20231008_0_L2A"])
    [kept], _ = sentinel2.prepare_items([real])
    assert kept.raster_band("red")["offset"] == -0.1 and kept.raster_band("red")["scale"] == 0.0001
    bare_document = copy.deepcopy(recorded["S2A_13TDE_20231008_0_L2A"])
    for asset in bare_document["assets"].values():
        asset.pop("raster:bands", None)
    [bare], _ = sentinel2.prepare_items(items(bare_document))
    assert (bare.raster_band("red")["scale"], bare.raster_band("red")["offset"]) == (0.0001, -0.1)
    assert "scale" not in bare.raster_band("scl") and "offset" not in bare.raster_band("scl")
    assert "scale" not in bare.raster_band("aot")
    old = twin(bare_document, new_id="x", baseline="03.01")
    [before], _ = sentinel2.prepare_items(items(old))
    assert before.raster_band("nir")["offset"] == 0.0
