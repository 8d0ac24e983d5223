"""The vector proposals on small GeoJSON: load_geojson, load_url (a local HTTP server; private hosts
refused unless allowed), filter_vector, vector_reproject, vector_buffer and the point samplers."""

from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from shapely.geometry import shape
from stratus_processing import vector_cube as vectors
from stratus_processing.env import EvalEnv
from stratus_processing.graph import evaluate_graph
from stratus_processing.io.stac import DocumentReader, S3JsonStore, StacCatalog

# Two squares near Bolzano (about 1.1 km x 0.8 km each) and a point far away.
SQUARE_A = {"type": "Polygon", "coordinates": [[[11.30, 46.48], [11.31, 46.48], [11.31, 46.49], [11.30, 46.49],
                                                [11.30, 46.48]]]}
SQUARE_B = {"type": "Polygon", "coordinates": [[[11.32, 46.48], [11.33, 46.48], [11.33, 46.49], [11.32, 46.49],
                                                [11.32, 46.48]]]}
FAR_POINT = {"type": "Point", "coordinates": [12.5, 47.5]}
COLLECTION = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "a", "geometry": SQUARE_A,
     "properties": {"name": "A", "height": 250, "ndvi": [0.1, 0.2]}},
    {"type": "Feature", "id": "b", "geometry": SQUARE_B, "properties": {"name": "B", "height": 300}},
    {"type": "Feature", "id": "far", "geometry": FAR_POINT, "properties": {"name": "far"}},
]}


def run(graph, env=None, **arguments):
    return evaluate_graph(graph, env or EvalEnv(), arguments=arguments)


def chain(*steps):
    """Nodes applied one after the other, each taking the previous one's result as its first argument."""
    graph = {}
    for i, (process_id, first, arguments) in enumerate(steps):
        if i:
            arguments = {first: {"from_node": f"n{i - 1}"}, **arguments}
        graph[f"n{i}"] = {"process_id": process_id, "arguments": arguments}
    graph[f"n{len(steps) - 1}"]["result"] = True
    return graph


def load(**arguments):
    return ("load_geojson", "data", {"data": COLLECTION, **arguments})


def test_load_geojson_keeps_features_and_builds_a_properties_dimension():
    cube = run(chain(load()))
    assert cube.dims == (vectors.GEOMETRY,) and list(cube[vectors.FEATURE_ID].values) == ["a", "b", "far"]
    heights = run(chain(load(properties=["height", "name"])))
    assert list(heights["properties"].values) == ["height", "name"]
    np.testing.assert_array_equal(heights.values, [[250, np.nan], [300, np.nan], [np.nan, np.nan]])
    arrays = run(chain(load(properties=["ndvi"])))
    assert list(arrays["properties"].values) == [0, 1]
    np.testing.assert_array_equal(arrays.values, [[0.1, 0.2], [np.nan, np.nan], [np.nan, np.nan]])


@pytest.mark.parametrize(("relation", "kept"), [("intersects", ["a"]), ("disjoint", ["b", "far"]),
                                                ("within", [])])
def test_filter_vector(relation, kept):
    around_a = {"type": "Polygon", "coordinates": [[[11.295, 46.475], [11.315, 46.475], [11.315, 46.485],
                                                    [11.295, 46.485], [11.295, 46.475]]]}
    result = run(chain(load(), ("filter_vector", "data", {"geometries": around_a, "relation": relation})))
    assert list(result[vectors.FEATURE_ID].values) == kept


def test_buffer_needs_a_metric_crs_and_grows_by_meters():
    with pytest.raises(Exception) as error:
        run(chain(load(), ("vector_buffer", "geometries", {"distance": 10})))
    assert error.value.code == "UnitMismatch"
    buffered = run(chain(load(), ("vector_reproject", "data", {"projection": 32632}),
                         ("vector_buffer", "geometries", {"distance": 100})))
    area_before = _area_m2(SQUARE_A)
    grown = _area_m2(buffered[vectors.FEATURE_GEOMETRY].values[0].__geo_interface__)
    assert grown > area_before + 100 * 4 * 700  # every side moved out by 100 m (sides > 700 m)
    assert buffered[vectors.FEATURE_GEOMETRY].values[2].geom_type == "Polygon"  # the point became a disc
    shrunk = run(chain(load(), ("vector_reproject", "data", {"projection": 32632}),
                       ("vector_buffer", "geometries", {"distance": -1000})))
    assert shrunk[vectors.FEATURE_GEOMETRY].values[0] is None  # eroded away: empty


def _area_m2(geojson):
    import shapely
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, 32632, always_xy=True)
    return shapely.transform(shape(geojson), lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))).area


def test_regular_points_grid_in_polygons_and_the_point_itself():
    cube = run(chain(load(), ("vector_reproject", "data", {"projection": 32632}),
                     ("vector_to_regular_points", "data", {"distance": 250})))
    a, b, far = cube[vectors.FEATURE_GEOMETRY].values
    assert a.geom_type == "MultiPoint" and 8 <= len(a.geoms) <= 20  # ~770 m x 1110 m in 250 m cells
    assert all(shape(SQUARE_A).contains(p) for p in a.geoms)
    assert len(far.geoms) == 1 and far.geoms[0].distance(shape(FAR_POINT)) < 1e-9
    separate = run(chain(load(), ("vector_reproject", "data", {"projection": 32632}),
                         ("vector_to_regular_points", "data", {"distance": 250, "group": False})))
    assert separate.sizes[vectors.GEOMETRY] == len(a.geoms) + len(b.geoms) + 1
    assert separate[vectors.FEATURE_PROPERTIES].values[0]["name"] == "A"


def test_random_points_are_seeded_inside_and_counted():
    def sample(**arguments):
        return run(chain(load(), ("vector_to_random_points", "data", arguments)))

    first, again = sample(geometry_count=5, seed=42), sample(geometry_count=5, seed=42)
    points = first[vectors.FEATURE_GEOMETRY].values
    assert [p.wkt for p in points] == [p.wkt for p in again[vectors.FEATURE_GEOMETRY].values]
    assert len(points[0].geoms) == 5 and all(shape(SQUARE_A).contains(p) for p in points[0].geoms)
    assert len(points[2].geoms) == 1  # a single point has one to give
    other = sample(geometry_count=5, seed=7)[vectors.FEATURE_GEOMETRY].values
    assert points[0].wkt != other[0].wkt
    total = sample(total_count=4, group=False, seed=1)
    assert total.sizes[vectors.GEOMETRY] == 4  # spread as 2 + 1 + 1, one Point feature each
    with pytest.raises(Exception) as error:
        sample(total_count=2)
    assert error.value.code == "CountMismatch"


# --- load_url -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def geojson_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps(COLLECTION).encode()
            self.send_response(200 if self.path == "/fields.geojson" else 404)
            self.send_header("Content-Type", "application/geo+json")
            self.end_headers()
            self.wfile.write(body if self.path == "/fields.geojson" else b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


def _env(*, allow_private_hosts):
    documents = DocumentReader(allow_private_hosts=allow_private_hosts)
    return EvalEnv(catalog=StacCatalog(S3JsonStore(None, "unused"), documents=documents))


def test_load_url_reads_geojson_through_the_outbound_guard(geojson_server):
    url = f"{geojson_server}/fields.geojson"
    cube = run(chain(("load_url", "url", {"url": url, "format": "GeoJSON"})), _env(allow_private_hosts=True))
    assert list(cube[vectors.FEATURE_ID].values) == ["a", "b", "far"]
    with pytest.raises(Exception, match="not") as refused:  # a loopback address, not allow-listed
        run(chain(("load_url", "url", {"url": url, "format": "geojson"})), _env(allow_private_hosts=False))
    assert refused.value.status_code == 400
    with pytest.raises(Exception) as unsuitable:
        run(chain(("load_url", "url", {"url": url, "format": "GTiff"})), _env(allow_private_hosts=True))
    assert unsuitable.value.code == "FormatUnsuitable"
