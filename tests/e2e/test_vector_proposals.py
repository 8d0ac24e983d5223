"""The vector proposals through the real client and the local system: GeoJSON in, buffered and
sampled, GeoJSON out (`POST /result`)."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import shape

pytestmark = pytest.mark.e2e

FIELD = {"type": "Polygon", "coordinates": [[[11.30, 46.48], [11.31, 46.48], [11.31, 46.49], [11.30, 46.49],
                                             [11.30, 46.48]]]}


def test_geojson_is_buffered_sampled_and_returned(connection, tmp_path):
    fields = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "field-1", "geometry": FIELD, "properties": {"crop": "maize"}}]}
    graph = {
        "load": {"process_id": "load_geojson", "arguments": {"data": fields}},
        "utm": {"process_id": "vector_reproject", "arguments": {"data": {"from_node": "load"}, "projection": 32632}},
        "shrunk": {"process_id": "vector_buffer", "arguments": {"geometries": {"from_node": "utm"}, "distance": -100}},
        "points": {"process_id": "vector_to_regular_points",
                   "arguments": {"data": {"from_node": "shrunk"}, "distance": 200}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "points"}, "format": "GeoJSON"},
                 "result": True},
    }
    path = tmp_path / "points.geojson"
    connection.download(graph, outputfile=path)
    [feature] = json.loads(path.read_text())["features"]
    points = shape(feature["geometry"])
    assert feature["properties"]["crop"] == "maize" and points.geom_type == "MultiPoint"
    assert len(points.geoms) >= 6 and all(shape(FIELD).contains(p) for p in points.geoms)
