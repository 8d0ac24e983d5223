"""load_stac and STAC sources: static catalogs over HTTP and S3, a STAC API with paging, property
filters, common band names, reprojection onto a common grid; against a local HTTP server in a
thread (COGs read through GDAL's /vsicurl/ with Range requests), no network."""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from rasterio.crs import CRS
from stratus import catalog_layout
from stratus.errors import ProcessParameterInvalidException
from stratus.outbound import AllowList, OutboundGuard
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import NoDataAvailableException
from stratus_processing.graph import evaluate_graph
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.load import plan_load
from stratus_processing.io.stac import (
    DocumentReader,
    S3JsonStore,
    SearchRequest,
    StacApi,
    StacCatalog,
    StacItem,
    StacReadError,
    bands_from_assets,
    resolve_bands,
    resolve_href,
)

from tests.unit.processing.conftest import DEMO_BUCKET
from tests.unit.processing.processing_testkit import BOLZANO_EXTENT, JUNE_2022

COLLECTION = "sentinel-2-l2a-demo"


# --- a local STAC server ----------------------------------------------------------------------------

class StacServer:
    """Static files under `/static/` and `/data/` (with HTTP Range support, as S3 and CDNs have) and
    a STAC API under `/api/` over the same items: `/api`, `/api/collections/<id>`, `/api/search`
    (POST and GET, `limit` per page, `next` links carrying a token), `/api/collections/<id>/items`."""

    def __init__(self, root: Path, items: list[dict[str, Any]], collection: dict[str, Any], page_size: int = 3):
        self.root = root
        self.items = items
        self.collection = collection
        self.page_size = page_size
        self.requests: list[tuple[str, str, Any]] = []
        self.refuse_post = False
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except ConnectionError:
                    pass  # GDAL closes a connection once it has the bytes it needs

            def do_GET(self) -> None:
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", urllib.parse.unquote(self.path.removeprefix("/redirect?to=")))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if self.path.startswith("/api"):
                    server.requests.append(("GET", self.path, None))
                    return self._json(*server.api_get(self.path))
                super().do_GET()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(("POST", self.path, body))
                if server.refuse_post:
                    return self._json(405, {"code": "MethodNotAllowed"})
                return self._json(*server.api_search(body, method="POST"))

            def send_head(self) -> Any:
                path = self.translate_path(self.path.split("?")[0])
                match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if not match or not os.path.isfile(path):
                    return super().send_head()
                size = os.path.getsize(path)
                start, end = int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)
                with open(path, "rb") as source:
                    source.seek(start)
                    data = source.read(end - start + 1)
                self.send_response(206)
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return io.BytesIO(data)

            def _json(self, status: int, document: Any) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> StacServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.shutdown()
        self._http.server_close()

    # the API
    def api_get(self, path: str) -> tuple[int, Any]:
        parsed = urllib.parse.urlparse(path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        cid = self.collection["id"]
        if parsed.path in ("/api", "/api/"):
            return 200, {"type": "Catalog", "id": "api", "description": "test API", "stac_version": "1.0.0",
                         "conformsTo": [], "links": [{"rel": "search", "href": f"{self.url}/api/search",
                                                      "type": "application/geo+json", "method": "POST"}]}
        if parsed.path == f"/api/collections/{cid}":
            return 200, {**self.collection, "links": [
                {"rel": "self", "href": f"{self.url}/api/collections/{cid}"},
                {"rel": "root", "href": f"{self.url}/api", "type": "application/json"},
                {"rel": "items", "href": f"{self.url}/api/collections/{cid}/items", "type": "application/geo+json"}]}
        if parsed.path == "/api/search":
            body = {k: v for k, v in query.items()}
            if "bbox" in body:
                body["bbox"] = [float(v) for v in body["bbox"].split(",")]
            if "collections" in body:
                body["collections"] = body["collections"].split(",")
            if "query" in body:
                body["query"] = json.loads(body["query"])
            return self.api_search(body, method="GET")
        return 404, {"code": "NotFound"}

    def api_search(self, body: dict[str, Any], *, method: str) -> tuple[int, Any]:
        matching = [i for i in self.items if self._matches(i, body)]
        limit = min(int(body.get("limit", 10)), self.page_size)
        offset = int(body.get("token", 0))
        page = matching[offset:offset + limit]
        links = []
        if offset + limit < len(matching):
            if method == "POST":
                links.append({"rel": "next", "href": f"{self.url}/api/search", "method": "POST",
                              "body": {**body, "token": offset + limit}})
            else:
                query = {k: (",".join(map(str, v)) if isinstance(v, list) else json.dumps(v) if isinstance(v, dict)
                             else v) for k, v in {**body, "token": offset + limit}.items()}
                links.append({"rel": "next", "href": f"{self.url}/api/search?{urllib.parse.urlencode(query)}"})
        return 200, {"type": "FeatureCollection", "features": page, "links": links}

    def _matches(self, item: dict[str, Any], body: dict[str, Any]) -> bool:
        if body.get("collections") and item["collection"] not in body["collections"]:
            return False
        if body.get("bbox"):
            w, s, e, n = body["bbox"]
            iw, is_, ie, in_ = item["bbox"]
            if iw > e or ie < w or is_ > n or in_ < s:
                return False
        if body.get("datetime"):
            start, _, end = body["datetime"].partition("/")
            moment = item["properties"]["datetime"]
            if (start not in ("", "..") and moment < start.replace("+00:00", "Z")) or (
                    end not in ("", "..") and moment > end):
                return False
        for name, conditions in (body.get("query") or {}).items():
            value = item["properties"].get(name)
            for op, limit in conditions.items():
                if not {"lte": value <= limit, "lt": value < limit, "gte": value >= limit, "gt": value > limit,
                        "eq": value == limit, "neq": value != limit}[op]:
                    return False
        return True


def demo_documents(demo_s3) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    base = demo_s3.path(DEMO_BUCKET, "")
    collection = json.loads((base / catalog_layout.collection_key(COLLECTION)).read_text())
    items = [json.loads(p.read_text()) for p in sorted((base / catalog_layout.items_prefix(COLLECTION)).glob("*.json"))]
    return collection, items


@pytest.fixture(scope="module")
def stac_server(demo_s3, tmp_path_factory) -> Iterator[StacServer]:
    """The demo collection as a static catalog (relative links and asset hrefs) and as a STAC API
    (absolute hrefs), all served over HTTP."""
    root = tmp_path_factory.mktemp("stac-http")
    (root / "data").symlink_to(demo_s3.path(DEMO_BUCKET, "data"))
    collection, items = demo_documents(demo_s3)
    with StacServer(root, [], collection) as server:
        static = root / "static"
        (static / "items").mkdir(parents=True)
        api_items = []
        for item in items:
            relative = json.loads(json.dumps(item))
            for asset in relative["assets"].values():
                asset["href"] = "../../" + asset["href"].removeprefix(f"s3://{DEMO_BUCKET}/")
            (static / "items" / f"{item['id']}.json").write_text(json.dumps(relative))
            absolute = json.loads(json.dumps(item))
            for asset in absolute["assets"].values():
                asset["href"] = f"{server.url}/" + asset["href"].removeprefix(f"s3://{DEMO_BUCKET}/")
            absolute["links"] = []
            api_items.append(absolute)
        (static / "collection.json").write_text(json.dumps(collection))
        server.items = sorted(api_items, key=lambda i: i["properties"]["datetime"])
        yield server


@pytest.fixture
def http_env(demo_s3, result_store, reporter) -> EvalEnv:
    """Reads STAC over HTTP from the local server (so private hosts are allowed here) and the demo
    catalog; rasters through /vsicurl/ for http hrefs and the demo directory for s3:// ones."""
    def resolve(href: str) -> str:
        return demo_s3.resolve_href(href) if href.startswith("s3://") else resolve_vsicurl(href)
    documents = DocumentReader(s3_client=demo_s3, s3_buckets=[DEMO_BUCKET], allow_private_hosts=True)
    return EvalEnv(catalog=StacCatalog(S3JsonStore(demo_s3, DEMO_BUCKET), documents=documents),
                   rasters=RasterReader(resolve_href=resolve), results=result_store, reporter=reporter)


def resolve_vsicurl(href: str) -> str:
    from stratus_processing.io.cog import gdal_path
    return gdal_path(href)


def load_stac(env, url, **arguments):
    arguments = {"url": url, "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022, **arguments}
    return evaluate_graph({"l": {"process_id": "load_stac", "arguments": arguments, "result": True}}, env)


def load_collection(env, **arguments):
    arguments = {"id": COLLECTION, "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022, **arguments}
    return evaluate_graph({"l": {"process_id": "load_collection", "arguments": arguments, "result": True}}, env)


def cloud_filter(op="lte", limit=10):
    return {"eo:cloud_cover": {"process_graph": {"c": {
        "process_id": op, "arguments": {"x": {"from_parameter": "value"}, "y": limit}, "result": True}}}}


# --- load_stac ----------------------------------------------------------------------------------

def test_load_stac_static_collection_over_http_equals_load_collection_unscaled(stac_server, http_env):
    # Given the demo collection as a static catalog on an HTTP server, and the same through load_collection
    reference = load_collection(http_env, bands=["B04", "B08"])
    # When loading it with load_stac by common band names
    cube = load_stac(http_env, f"{stac_server.url}/static/collection.json", bands=["red", "nir"])
    # Then: the same grid, dates and bands, read by window over HTTP; values not scaled (the spec)
    assert cubes.band_names(cube) == ["B04", "B08"] and cubes.common_names(cube) == {"B04": "red", "B08": "nir"}
    assert cubes.grid_of(cube) == cubes.grid_of(reference)
    assert cubes.time_labels(cube) == cubes.time_labels(reference)
    np.testing.assert_allclose(cube.values * 0.0001, reference.values, rtol=1e-12)
    assert np.isnan(cube.values).any()  # the no-data corner of 2022-06-22 is NaN, not 0


def test_load_stac_api_collection_pages_through_search_and_filters_properties(stac_server, http_env):
    # Given a STAC API collection URL and a cloud cover condition
    stac_server.requests.clear()
    url = f"{stac_server.url}/api/collections/{COLLECTION}"
    # When
    cube = load_stac(http_env, url, bands=["B08"], properties=cloud_filter("lte", 10))
    # Then the 2022-06-12 date (25 % cloud) is gone; the rest of June remains
    assert [t.day for t in cubes.time_labels(cube)] == [2, 7, 17, 22, 27]
    # And the search went to /search by POST, with the extents and the condition as a query, over pages
    searches = [body for method, path, body in stac_server.requests if method == "POST"]
    assert len(searches) >= 2 and searches[1]["token"] == 3
    first = searches[0]
    assert first["collections"] == [COLLECTION] and first["query"] == {"eo:cloud_cover": {"lte": 10}}
    assert first["datetime"] == "2022-06-01T00:00:00Z/2022-07-01T00:00:00Z"
    west, south, east, north = first["bbox"]
    assert 11.34 < west < east < 11.36 and 46.48 < south < north < 46.51


def test_load_stac_falls_back_to_get_search(stac_server, http_env):
    stac_server.requests.clear()
    stac_server.refuse_post = True
    try:
        cube = load_stac(http_env, f"{stac_server.url}/api/collections/{COLLECTION}", bands=["B04"],
                         properties=cloud_filter("gt", 10))
    finally:
        stac_server.refuse_post = False
    assert [t.day for t in cubes.time_labels(cube)] == [12]
    assert [m for m, *_ in stac_server.requests].count("GET") >= 2  # collection, root, search pages


def test_load_stac_single_item(stac_server, http_env):
    item = stac_server.items[0]
    cube = load_stac(http_env, f"{stac_server.url}/static/items/{item['id']}.json", bands=["B04"])
    assert cube.sizes["t"] == 1 and cubes.time_labels(cube)[0].day == 2
    with pytest.raises(NoDataAvailableException):
        load_stac(http_env, f"{stac_server.url}/static/items/{item['id']}.json", temporal_extent=["2023-01-01", None])


def test_load_stac_from_s3_static_catalog(http_env, demo_s3):
    # Given the demo catalog's collection document in the data bucket (relative item links)
    url = f"s3://{DEMO_BUCKET}/{catalog_layout.collection_key(COLLECTION)}"
    # When
    cube = load_stac(http_env, url, bands=["B08"])
    # Then the items are found through their links, and the assets read from the bucket
    assert cube.sizes["t"] == 6 and cubes.grid_of(cube).width == 96
    assert np.nanmax(cube.values) > 1000  # stored DN, not reflectance


def test_load_stac_refuses_unreadable_sources(stac_server, http_env, demo_s3, result_store):
    with pytest.raises(ProcessParameterInvalidException, match="bucket 'other-bucket'"):
        load_stac(http_env, "s3://other-bucket/catalog.json")
    with pytest.raises(ProcessParameterInvalidException, match="HTTP 404"):
        load_stac(http_env, f"{stac_server.url}/static/missing.json")
    with pytest.raises(ProcessParameterInvalidException, match="only http"):
        load_stac(http_env, "/etc/passwd")
    # The container's credentials endpoint and other private addresses are off limits by default
    strict = EvalEnv(catalog=StacCatalog(S3JsonStore(demo_s3, DEMO_BUCKET)), rasters=RasterReader(),
                     results=result_store)
    with pytest.raises(ProcessParameterInvalidException, match="not a public address"):
        load_stac(strict, f"{stac_server.url}/static/collection.json")
    with pytest.raises(ProcessParameterInvalidException, match="not a public address"):
        load_stac(strict, "http://169.254.170.2/v2/credentials/x")


# --- load_collection: properties, common names, grids -------------------------------------------

def test_load_collection_filters_by_properties(http_env):
    cube = load_collection(http_env, bands=["B04"], properties=cloud_filter("lte", 10))
    assert [t.day for t in cubes.time_labels(cube)] == [2, 7, 17, 22, 27]
    cube = load_collection(http_env, bands=["B04"], properties={
        **cloud_filter("gte", 0),
        "platform": {"process_graph": {"c": {"process_id": "eq", "result": True, "arguments": {
            "x": {"from_parameter": "value"}, "y": "sentinel-2b"}}}}})
    assert [t.day for t in cubes.time_labels(cube)] == [7, 17, 27]


def test_load_collection_backed_by_a_stac_api(stac_server, demo_s3, reporter, result_store):
    # Given a collection document in the data bucket that points at a STAC API for its items
    collection, _ = demo_documents(demo_s3)
    api_collection = {**collection, "id": "s2-from-api", "links": [
        {"rel": "items", "href": f"{stac_server.url}/api/collections/{COLLECTION}/items"},
        {"rel": "root", "href": f"{stac_server.url}/api"}]}
    demo_s3.put_object(Bucket=DEMO_BUCKET, Key=catalog_layout.collection_key("s2-from-api"),
                       Body=json.dumps({**api_collection, "id": COLLECTION}).encode())
    env = EvalEnv(catalog=StacCatalog(S3JsonStore(demo_s3, DEMO_BUCKET),
                                      documents=DocumentReader(allow_private_hosts=True)),
                  rasters=RasterReader(), results=result_store, reporter=reporter)
    try:
        stac_server.requests.clear()
        cube = load_collection(env, id="s2-from-api", bands=["nir"])
    finally:
        demo_s3.path(DEMO_BUCKET, catalog_layout.collection_key("s2-from-api")).unlink()
    # Then the items come from the API's search, the pixels over HTTP, scaled like any collection
    assert any(path.startswith("/api/search") for _, path, _ in stac_server.requests)
    assert cube.sizes["t"] == 6 and 0 < np.nanmax(cube.values) < 1


def test_plan_uses_the_most_common_crs(demo_s3):
    # Given two Vienna items (EPSG:32633) and one earlier Bolzano item (EPSG:32632)
    _, documents = demo_documents(demo_s3)
    items = sorted((StacItem.from_document(d) for d in documents), key=lambda i: i.datetime)
    bolzano = [i for i in items if i.properties["proj:epsg"] == 32632][:1]
    vienna = [i for i in items if i.properties["proj:epsg"] == 32633][:2]
    bands = resolve_bands(bands_from_assets(documents[0]["assets"]), ["B04", "SCL"])
    # When planning a load over all of them
    plan = plan_load(bolzano + vienna, bands, None, RasterReader(), apply_scale=True)
    # Then the grid is Vienna's zone at 10 m (the finest band), aligned to Vienna's pixels
    assert plan.grid.crs == CRS.from_epsg(32633) and plan.grid.resolution == (10, 10)
    assert (plan.grid.transform.c - 600000) % 10 == 0
    assert len(plan.days) == 3  # Bolzano is reprojected into it, on its own date


def test_items_without_projection_metadata_use_the_file_grid(demo_s3):
    _, documents = demo_documents(demo_s3)
    document = json.loads(json.dumps(documents[0]))
    for asset in document["assets"].values():
        for key in ("proj:shape", "proj:transform"):
            asset.pop(key)
    document["properties"].pop("proj:epsg")
    item = StacItem.from_document(document)
    reader = RasterReader(resolve_href=demo_s3.resolve_href)
    plan = plan_load([item], resolve_bands(item.bands, ["nir"]), None, reader, apply_scale=True)
    assert plan.grid.crs == CRS.from_epsg(32632) and plan.grid.resolution == (10, 10)


# --- building blocks ----------------------------------------------------------------------------

def test_bands_from_assets_and_common_names():
    assets = {
        "red": {"href": "r.tif", "type": "image/tiff; application=geotiff", "roles": ["data"],
                "eo:bands": [{"name": "B04", "common_name": "red"}]},
        "nir": {"href": "n.tif", "roles": ["data"], "eo:bands": [{"name": "B08", "common_name": "nir"}]},
        "visual": {"href": "v.tif", "roles": ["visual"], "eo:bands": [{"name": "B04"}, {"name": "B03"}]},
        "thumbnail": {"href": "t.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
        "scl": {"href": "s.tif", "roles": ["data"]},
    }
    bands = bands_from_assets(assets)
    assert [(b.name, b.asset_key) for b in bands] == [("B04", "red"), ("B08", "nir"), ("scl", "scl")]
    # by band name, by asset key and by common name; a name beats a common name
    assert [b.name for b in resolve_bands(bands, ["nir", "B04", "scl"])] == ["B08", "B04", "scl"]
    with pytest.raises(KeyError):
        resolve_bands(bands, ["swir16"])


def test_resolve_href():
    assert resolve_href("https://x.org/a/b/item.json", "../c/d.tif") == "https://x.org/a/c/d.tif"
    assert resolve_href("s3://bucket/stac/col/collection.json", "./items/i.json") == "s3://bucket/stac/col/items/i.json"
    assert resolve_href("s3://bucket/a/b.json", "https://elsewhere/x.tif") == "https://elsewhere/x.tif"


def test_simple_conditions_become_an_api_query():
    from stratus_processing.graph import GraphCallback, ProcessGraph
    from stratus_processing.processes.load import _api_query
    from stratus_processing.registry import DEFAULT_REGISTRY

    def condition(process_id, x, y, **more):
        graph = ProcessGraph({"c": {"process_id": process_id, "result": True, "arguments": {"x": x, "y": y, **more}}})
        return GraphCallback(graph, parameter="properties", registry=DEFAULT_REGISTRY, outer_arguments={})

    value = {"from_parameter": "value"}
    assert _api_query({"eo:cloud_cover": condition("lte", value, 50), "platform": condition("eq", "s2a", value),
                       "view:sun_elevation": condition("lt", 30, value)}) == {
        "eo:cloud_cover": {"lte": 50}, "platform": {"eq": "s2a"}, "view:sun_elevation": {"gt": 30}}
    assert _api_query({"eo:cloud_cover": condition("eq", value, 50, delta=1)}) is None
    assert _api_query({"eo:cloud_cover": condition("between", value, 50)}) is None


def test_search_request_body_and_local_filter():
    request = SearchRequest(bbox=(1, 2, 3, 4), start=None, end=cubes.parse_utc("2022-07-01"))
    assert request.api_body("c") == {"limit": 250, "collections": ["c"], "bbox": [1, 2, 3, 4],
                                     "datetime": "../2022-07-01T00:00:00Z"}


def test_api_without_search_uses_the_items_endpoint(stac_server):
    api = StacApi(DocumentReader(allow_private_hosts=True), search_url=None,
                  items_url=f"{stac_server.url}/api/search")  # the test server's search answers GETs alike
    items = api.search(COLLECTION, SearchRequest(start=cubes.parse_utc("2022-06-01"),
                                                 end=cubes.parse_utc("2022-06-10")))
    assert [i.datetime.day for i in items] == [2, 3, 7, 8]


def test_assets_behind_presigned_urls_are_read_by_window(stac_server, demo_s3):
    # Given an asset href with a query string, as presigned URLs have
    item = stac_server.items[0]
    href = item["assets"]["B04"]["href"] + "?X-Amz-Expires=3600&X-Amz-Signature=abc"
    grid = StacItem.from_document(item).asset_grid("B04")
    # When read through /vsicurl/
    values = RasterReader().read(href, grid, nodata=0)
    # Then the same pixels as the file itself
    local = RasterReader(resolve_href=demo_s3.resolve_href).read(
        f"s3://{DEMO_BUCKET}/" + item["assets"]["B04"]["href"].split("/", 3)[3], grid, nodata=0)
    np.testing.assert_array_equal(values, local)


def test_redirects_are_checked_like_urls(stac_server):
    # Given a reader that may read 127.0.0.1 but not "localhost" (standing in for a private host)
    class Reader(DocumentReader):
        def check_href(self, href):
            if urllib.parse.urlparse(href).hostname == "localhost":
                raise ValueError("the host 'localhost' is not a public address")
            super().check_href(href)

    reader = Reader(allow_private_hosts=True)
    port = urllib.parse.urlparse(stac_server.url).port
    target = urllib.parse.quote(f"http://localhost:{port}/static/collection.json")
    allowed = urllib.parse.quote(f"{stac_server.url}/static/collection.json")
    assert reader.read(f"{stac_server.url}/redirect?to={allowed}")["type"] == "Collection"
    # When a server redirects there / Then
    with pytest.raises(StacReadError, match="redirected to a URL that may not be read"):
        reader.read(f"{stac_server.url}/redirect?to={target}")


def test_document_reader_errors(stac_server):
    reader = DocumentReader(allow_private_hosts=True)
    with pytest.raises(StacReadError, match="not JSON"):
        reader.read(f"{stac_server.url}/data/{COLLECTION}")  # a directory listing, HTML
    with pytest.raises(StacReadError, match="unsupported URL scheme"):
        reader.read("ftp://example.org/x.json")


def test_an_asset_on_an_unresolvable_host_is_not_refused_as_private():
    # the read itself fails later with its own message; the check only refuses internal addresses
    reader = DocumentReader(guard=OutboundGuard(resolver=lambda host, port: []))
    reader.check_href("https://assets.example.com/B04.tif")
    with pytest.raises(ValueError, match="not a public address"):
        DocumentReader().check_href("http://169.254.169.254/latest/meta-data/")


def test_a_document_is_read_from_the_address_its_host_was_checked_at(stac_server):
    # Given a name server that answers the STAC server's (allow-listed) address once, then the metadata endpoint
    answers = [["127.0.0.1"], ["169.254.169.254"]]
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return answers[min(len(lookups), 2) - 1]

    reader = DocumentReader(guard=OutboundGuard(AllowList.parse("127.0.0.1/32"), resolver=resolver))
    port = urllib.parse.urlparse(stac_server.url).port
    # When a document is read by that name / Then one lookup served check and connection alike
    assert reader.read(f"http://stac.example.com:{port}/static/collection.json")["type"] == "Collection"
    assert lookups == ["stac.example.com"]
    # and the next read, whose lookup answers the metadata endpoint, is refused before any connection
    with pytest.raises(StacReadError, match="not a public address"):
        reader.read(f"http://stac.example.com:{port}/static/collection.json")
