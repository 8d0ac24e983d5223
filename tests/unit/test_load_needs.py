"""What a graph keeps of each load (pure Python, shared by the API's dry run and the engine)."""

from datetime import datetime, timezone

from stratus.domain.load_needs import analyse_loads

BOX_A = {"west": 11.0, "south": 46.0, "east": 11.5, "north": 46.5}
BOX_B = {"west": 11.2, "south": 46.2, "east": 12.0, "north": 46.8, "crs": "EPSG:4326"}


def n(process_id, result=False, **arguments):
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


def ref(node_id):
    return {"from_node": node_id}


LOAD = n("load_collection", id="c", spatial_extent=None, temporal_extent=None)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_a_chain_of_filters_gives_area_time_and_bands_with_their_sources():
    needs = analyse_loads({
        "load": LOAD,
        "t": n("filter_temporal", data=ref("load"), extent=["2022-06-01", "2022-07-01T12:00:00Z"]),
        "b": n("filter_bbox", data=ref("t"), extent=BOX_A),
        "bands": n("filter_bands", data=ref("b"), bands=["B04", "B08"]),
        "ndvi": n("ndvi", data=ref("bands"), result=True),
    })["load"]
    assert [r.bounds for r in needs.regions] == [(11.0, 46.0, 11.5, 46.5)] and needs.regions[0].crs == 4326
    assert needs.interval() == (utc(2022, 6, 1), utc(2022, 7, 1, 12))
    assert needs.bands() == ("B04", "B08")
    assert {kind: [s.describe() for s in sources] for kind, sources in needs.sources().items()} == {
        "area": ["filter_bbox 'b' (extent)"], "time": ["filter_temporal 't' (extent)"],
        "bands": ["filter_bands 'bands' (bands)"]}


def test_paths_are_united_and_an_unfiltered_path_keeps_everything():
    graph = {
        "load": LOAD,
        "a": n("filter_bbox", data=ref("load"), extent=BOX_A),
        "b": n("filter_bbox", data=ref("load"), extent=BOX_B),
        "ta": n("filter_temporal", data=ref("a"), extent=["2022-06-01", "2022-06-10"]),
        "tb": n("filter_temporal", data=ref("b"), extent=["2022-06-05", None]),
        "m": n("merge_cubes", cube1=ref("ta"), cube2=ref("tb"), result=True),
    }
    needs = analyse_loads(graph)["load"]
    assert [r.bounds for r in needs.regions] == [(11.0, 46.0, 11.5, 46.5), (11.2, 46.2, 12.0, 46.8)]
    assert needs.interval() == (utc(2022, 6, 1), None)  # one path is open-ended
    # a third output straight from the load: nothing is narrowed
    graph["raw"] = n("save_result", data=ref("load"), format="GTiff")
    assert not analyse_loads(graph)["load"].narrowed


def test_processes_that_look_beyond_a_pixel_or_rename_stop_the_narrowing():
    kernel = analyse_loads({"load": LOAD, "k": n("apply_kernel", data=ref("load"), kernel=[[1]]),
                            "b": n("filter_bbox", data=ref("k"), extent=BOX_A, result=True)})["load"]
    assert kernel.regions is None
    renamed = analyse_loads({"load": LOAD,
                             "r": n("rename_labels", data=ref("load"), dimension="bands", target=["x"]),
                             "f": n("filter_bands", data=ref("r"), bands=["x"], result=True)})["load"]
    assert renamed.band_selections is None
    over_time = analyse_loads({"load": LOAD,
                               "c": n("apply_dimension", data=ref("load"), dimension="t", process={}),
                               "t": n("filter_temporal", data=ref("c"), extent=["2022-06-01", None]),
                               "b": n("filter_bbox", data=ref("t"), extent=BOX_A, result=True)})["load"]
    assert over_time.intervals is None and over_time.regions is not None  # along t only: the area still narrows
    user = analyse_loads({"load": LOAD, "u": n("my_process", data=ref("load")),
                          "b": n("filter_bbox", data=ref("u"), extent=BOX_A, result=True)})["load"]
    assert not user.narrowed


def test_geometries_parameters_and_what_cannot_be_known():
    polygon = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[5.1793, 51.2498], [5.1787, 51.2467], [5.1852, 51.2450], [5.1873, 51.2491], [5.1793, 51.2498]]]}}]}
    graph = {"load": LOAD, "agg": n("aggregate_spatial", data=ref("load"), geometries={"from_parameter": "geometry"},
                                    reducer="mean", result=True)}
    [region] = analyse_loads(graph, {"geometry": polygon})["load"].regions
    assert region.bounds == (5.1787, 51.245, 5.1873, 51.2498) and region.source.process_id == "aggregate_spatial"
    assert analyse_loads(graph)["load"].regions is None  # the parameter's value is unknown
    from_vector_cube = {"load": LOAD, "v": n("load_geojson", data={}),
                        "agg": n("aggregate_spatial", data=ref("load"), geometries=ref("v"), reducer="mean",
                                 result=True)}
    assert analyse_loads(from_vector_cube)["load"].regions is None
    utm = {"type": "Polygon", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}},
           "coordinates": [[[600000, 5000000], [600100, 5000000], [600100, 5000100], [600000, 5000000]]]}
    masked = analyse_loads({"load": LOAD, "m": n("mask_polygon", data=ref("load"), mask=utm, result=True)})["load"]
    assert masked.regions[0].crs == 32632
    malformed = analyse_loads({"load": LOAD, "b": n("filter_bbox", data=ref("load"),
                                                    extent={**BOX_A, "west": 12}, result=True)})["load"]
    assert malformed.regions is None


def test_several_statistics_over_time_make_new_bands_so_bands_are_not_narrowed():
    statistics = {"process_graph": {
        "m": n("mean", data={"from_parameter": "data"}), "s": n("sd", data={"from_parameter": "data"}),
        "a": n("array_create", data=[ref("m"), ref("s")], result=True)}}
    single = {"process_graph": {"m": n("mean", data={"from_parameter": "data"}, result=True)}}

    def needs(reducer):
        return analyse_loads({"load": LOAD,
                              "r": n("reduce_dimension", data=ref("load"), dimension="t", reducer=reducer),
                              "f": n("filter_bands", data=ref("r"), bands=["B04_mean"], result=True)})["load"]

    assert needs(statistics).band_selections is None  # B04_mean is made by the reducer, not loaded
    assert needs(single).bands() == ("B04_mean",)
