"""The dry run sizes load_collection from the catalog, without the raster stack."""

from stratus.domain.estimate import estimate_graph

COLLECTION = {"id": "c", "cube:dimensions": {"x": {"step": 10}, "y": {"step": 10},
                                             "bands": {"values": ["B04", "B08", "SCL"]}}}


def item(day, epsg=32632, x0=678000, y0=5153000, size=300, bbox=(11.3, 46.4, 11.4, 46.5)):
    return {"bbox": list(bbox), "properties": {"datetime": f"2022-06-{day:02d}T10:00:00Z", "proj:epsg": epsg},
            "assets": {"B04": {"proj:transform": [10, 0, x0, 0, -10, y0], "proj:shape": [size, size]}}}


ITEMS = [item(2), item(7), item(12), item(7, epsg=32633, x0=600000, y0=5342000, bbox=(16.3, 48.1, 16.4, 48.2))]


def graph(extent, bands=("B04", "B08"), temporal=("2022-06-01", "2022-07-01")):
    return {"load": {"process_id": "load_collection", "arguments": {
        "id": "c", "spatial_extent": extent, "temporal_extent": list(temporal), "bands": list(bands)}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                 "result": True}}


def estimate(g):
    return estimate_graph(g, lambda cid: COLLECTION if cid == "c" else None, lambda cid, search: ITEMS)


def test_native_bbox_counts_pixels_dates_and_bands():
    result = estimate(graph({"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}))
    (load,) = result.loads
    # 96 x 84 px, items of the other UTM zone don't touch the box, the 7th is one date
    assert (load.width, load.height, load.dates, load.bands) == (96, 84, 3, 2)
    assert result.values == 96 * 84 * 3 * 2 and result.cube_bytes == result.values * 8


def test_degrees_are_turned_into_metres_and_time_filters():
    result = estimate(graph({"west": 11.0, "east": 12.0, "south": 46.0, "north": 47.0}, bands=(),
                            temporal=("2022-06-05", "2022-06-10")))
    (load,) = result.loads
    assert 7_500 < load.width < 7_900 and 11_000 < load.height < 11_100  # ~77 km x ~110 km at 10 m
    assert load.dates == 1 and load.bands == 3  # no bands given: all of them


def test_loads_inside_callbacks_and_unknown_collections():
    inner = graph({"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632})
    outer = {"x": {"process_id": "apply", "arguments": {"process": {"process_graph": inner}}, "result": True},
             "y": {"process_id": "load_collection", "arguments": {"id": "unknown"}}}
    assert len(estimate(outer).loads) == 1


BOLZANO_UTM = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}


def open_load(*downstream, bands=("B04", "B08")):
    """An open load (no extents) followed by a chain of (process_id, arguments) nodes on its data."""
    nodes = {"load": {"process_id": "load_collection", "arguments": {
        "id": "c", "spatial_extent": None, "temporal_extent": None, "bands": list(bands)}}}
    previous = "load"
    for index, (process_id, arguments) in enumerate(downstream):
        nodes[f"n{index}"] = {"process_id": process_id, "arguments": {"data": {"from_node": previous}, **arguments}}
        previous = f"n{index}"
    nodes[previous]["result"] = True
    return nodes


def test_filters_after_the_load_narrow_it_as_in_the_engine():
    # load_collection(...).filter_temporal(...).filter_bbox(...).filter_bands(...)
    (load,) = estimate(open_load(("filter_temporal", {"extent": ["2022-06-05", "2022-06-10"]}),
                                 ("filter_bbox", {"extent": BOLZANO_UTM}),
                                 ("filter_bands", {"bands": ["B04"]}))).loads
    assert (load.width, load.height, load.dates, load.bands) == (96, 84, 1, 1)
    # Without the filters: every date, both bands, the largest item's footprint
    (whole,) = estimate(open_load(("save_result", {"format": "GTiff"}))).loads
    assert whole.dates == 3 and whole.bands == 2 and whole.width > 700


def test_aggregate_spatial_geometries_narrow_the_area():
    polygon = {"type": "Polygon", "coordinates": [[[11.30, 46.40], [11.31, 46.40], [11.31, 46.41], [11.30, 46.40]]]}
    (load,) = estimate(open_load(("aggregate_spatial", {"geometries": polygon, "reducer": {"process_graph": {
        "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}))).loads
    assert 70 < load.width < 80 and 105 < load.height < 115  # ~770 m x ~1.1 km at 10 m
    # And a geometry given as a graph parameter counts once its value is known
    parameterised = open_load(("aggregate_spatial", {"geometries": {"from_parameter": "geometry"},
                                                     "reducer": "mean"}))
    (unknown,) = estimate_graph(parameterised, lambda cid: COLLECTION, lambda cid, search: ITEMS).loads
    (known,) = estimate_graph(parameterised, lambda cid: COLLECTION, lambda cid, search: ITEMS,
                              parameters={"geometry": polygon}).loads
    assert unknown.width > 700 and known.width == load.width


def test_a_kernel_before_the_filter_keeps_the_whole_area():
    (load,) = estimate(open_load(("apply_kernel", {"kernel": [[1]]}), ("filter_bbox", {"extent": BOLZANO_UTM}))).loads
    assert load.width > 700
