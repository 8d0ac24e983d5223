"""The local STAC API / object store stand-in of tests/support_stac_server.py: HTTP Range semantics,
keep-alive, paging and filters like Earth Search's, href rewriting, counters, injected latency and
bandwidth; and, where the recorded Earth Search documents are present, that it answers the recorded
requests the way Earth Search did."""

from __future__ import annotations

import email.parser
import email.policy
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support_stac_server import (
    EARTH_SEARCH,
    S2_SCENE,
    S2_SCENE_ID,
    StacTestServer,
    earth_search_server,
    load_json,
    require_real_data,
)

PAYLOAD = bytes((i * 7 + i // 251) % 256 for i in range(10_000))


def make_item(item_id: str, collection: str, moment: str, bbox: list[float], **properties: Any) -> dict[str, Any]:
    west, south, east, north = bbox
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection, "bbox": bbox,
            "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                             [west, north], [west, south]]]},
            "properties": {"datetime": moment, **properties},
            "assets": {"red": {"href": f"https://data.example.test/{collection}/{item_id}/red.tif",
                               "type": "image/tiff; application=geotiff; profile=cloud-optimized"}},
            "links": [{"rel": "self", "href": f"https://api.example.test/v1/collections/{collection}/items/{item_id}"}]}


ITEMS = [
    make_item("a1", "alpha", "2023-06-01T10:00:00Z", [10, 45, 11, 46], **{"eo:cloud_cover": 5}),
    make_item("a2", "alpha", "2023-06-02T10:00:00Z", [10, 45, 11, 46], **{"eo:cloud_cover": 50}),
    make_item("a3", "alpha", "2023-06-03T10:00:00Z", [20, 45, 21, 46], **{"eo:cloud_cover": 15}),
    make_item("a4", "alpha", "2023-06-03T10:00:00Z", [10, 45, 11, 46], **{"eo:cloud_cover": 1}),
    make_item("a5", "alpha", "2023-06-04T10:00:00Z", [10, 45, 11, 46], **{"eo:cloud_cover": 80}),
    make_item("b1", "beta", "2023-06-02T12:00:00Z", [10, 45, 11, 46]),
    make_item("b2", "beta", "2023-07-01T12:00:00Z", [10.5, 45.5, 12, 47]),
]
COLLECTIONS = [{"type": "Collection", "id": cid, "stac_version": "1.0.0", "description": cid, "license": "CC0-1.0",
                "extent": {}, "links": [{"rel": "items", "href": f"https://api.example.test/v1/collections/{cid}/items"}]}
               for cid in ("alpha", "beta")]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("files")
    (root / "blob.tif").write_bytes(PAYLOAD)
    (root / "empty.tif").write_bytes(b"")
    (root.parent / "secret.txt").write_text("not served")
    return root


@pytest.fixture(scope="module")
def server(files) -> Iterator[StacTestServer]:
    with StacTestServer(collections=COLLECTIONS, items=ITEMS, files={"/files": files},
                        rewrite={"https://api.example.test": "", "https://data.example.test/": "/files/"}) as running:
        yield running


@pytest.fixture
def fresh(server) -> StacTestServer:
    server.reset_counters()
    return server


def request(server: StacTestServer, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            body: Any = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(server: StacTestServer, path: str, **kwargs: Any) -> Any:
    status, _, body = request(server, path, **kwargs)
    assert status == 200, body
    return json.loads(body)


# --- HTTP Range -----------------------------------------------------------------------------------

def test_whole_file_without_range(fresh):
    status, headers, body = request(fresh, "/files/blob.tif")
    assert status == 200 and body == PAYLOAD
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Length"] == str(len(PAYLOAD))
    assert headers["Content-Type"] == "image/tiff"


@pytest.mark.parametrize(("header", "start", "stop"), [
    ("bytes=0-99", 0, 100),
    ("bytes=9000-9499", 9000, 9500),
    ("bytes=-100", 9900, 10_000),  # suffix: the last 100 bytes
    ("bytes=9990-", 9990, 10_000),  # open-ended
    ("bytes=9990-20000", 9990, 10_000),  # an end past the file is clamped
    ("bytes=-20000", 0, 10_000),  # a suffix longer than the file is the whole file
])
def test_single_range(fresh, header, start, stop):
    status, headers, body = request(fresh, "/files/blob.tif", headers={"Range": header})
    assert status == 206 and body == PAYLOAD[start:stop]
    assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(PAYLOAD)}"
    assert headers["Content-Length"] == str(stop - start) and headers["Accept-Ranges"] == "bytes"


def test_multiple_ranges_are_a_multipart_response(fresh):
    status, headers, body = request(fresh, "/files/blob.tif", headers={"Range": "bytes=0-9,100-149,-5"})
    assert status == 206 and headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert int(headers["Content-Length"]) == len(body)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
    parts = [(part["Content-Range"], part.get_payload(decode=True)) for part in message.iter_parts()]
    assert parts == [("bytes 0-9/10000", PAYLOAD[:10]), ("bytes 100-149/10000", PAYLOAD[100:150]),
                     ("bytes 9995-9999/10000", PAYLOAD[-5:])]


def test_unsatisfiable_range_is_416(fresh):
    status, headers, body = request(fresh, "/files/blob.tif", headers={"Range": "bytes=10000-10100"})
    assert status == 416 and headers["Content-Range"] == "bytes */10000" and body == b""
    status, headers, _ = request(fresh, "/files/empty.tif", headers={"Range": "bytes=-10"})
    assert status == 416 and headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-1", "bytes=100-200,0-10", "items=0-1"])
def test_a_range_header_that_is_not_understood_is_ignored(fresh, header):
    # RFC 9110: a server may ignore Range; malformed, unordered or overlapping ones are not served in part
    status, _, body = request(fresh, "/files/blob.tif", headers={"Range": header})
    assert status == 200 and body == PAYLOAD


def test_multiple_ranges_can_be_refused_like_s3(files):
    with StacTestServer(files={"/files": files}, multiple_ranges=False) as server:
        status, _, body = request(server, "/files/blob.tif", headers={"Range": "bytes=0-9,100-109"})
        assert status == 200 and body == PAYLOAD
        status, _, body = request(server, "/files/blob.tif", headers={"Range": "bytes=0-9"})
        assert status == 206 and body == PAYLOAD[:10]


def test_head_has_the_headers_and_no_body(fresh):
    status, headers, body = request(fresh, "/files/blob.tif", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == "10000"
    assert fresh.stats("/files/blob.tif").requests == 1 and fresh.stats("/files/blob.tif").bytes == 0


def test_files_outside_the_directory_and_missing_files_are_404(fresh):
    assert request(fresh, "/files/../secret.txt")[0] == 404
    assert request(fresh, "/files/%2e%2e/secret.txt")[0] == 404
    assert request(fresh, "/files/missing.tif")[0] == 404
    assert request(fresh, "/files/blob.tif", method="POST", body={})[0] == 405


def test_keep_alive_serves_several_requests_on_one_connection(fresh):
    connection = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlparse(fresh.url).port, timeout=10)
    try:
        connection.request("GET", "/files/blob.tif", headers={"Range": "bytes=0-99"})
        first = connection.getresponse()
        assert first.status == 206 and first.read() == PAYLOAD[:100]
        socket_used = connection.sock
        connection.request("GET", "/v1/collections/alpha")
        second = connection.getresponse()
        assert second.status == 200 and json.loads(second.read())["id"] == "alpha"
        assert connection.sock is socket_used  # not reconnected
    finally:
        connection.close()


# --- counters, latency, bandwidth -------------------------------------------------------------------

def test_counters_per_path(fresh):
    request(fresh, "/files/blob.tif", headers={"Range": "bytes=0-99"})
    request(fresh, "/files/blob.tif", headers={"Range": "bytes=1000-1499"})
    _, _, collection = request(fresh, "/v1/collections/beta?x=1")
    assert fresh.stats("/files/blob.tif").requests == 2 and fresh.stats("/files/blob.tif").bytes == 600
    assert fresh.stats("/v1/collections/beta").bytes == len(collection)
    assert fresh.stats().requests == 3 and fresh.stats().bytes == 600 + len(collection)
    assert [(r.method, r.range, r.status, r.bytes) for r in fresh.log[:2]] == [
        ("GET", "bytes=0-99", 206, 100), ("GET", "bytes=1000-1499", 206, 500)]
    fresh.reset_counters()
    assert fresh.stats().requests == 0 and fresh.log == []


def test_injected_latency_delays_every_request(files):
    with StacTestServer(files={"/files": files}, latency_s=0.2) as server:
        started = time.perf_counter()
        request(server, "/files/blob.tif", headers={"Range": "bytes=0-0"})
        request(server, "/v1/collections")
        assert time.perf_counter() - started >= 0.4


def test_bandwidth_cap_paces_the_body(files):
    with StacTestServer(files={"/files": files}, bandwidth_bytes_per_s=40_000) as server:
        started = time.perf_counter()
        status, _, body = request(server, "/files/blob.tif")
        assert status == 200 and body == PAYLOAD
        assert time.perf_counter() - started >= len(PAYLOAD) / 40_000


# --- the STAC API -------------------------------------------------------------------------------------

def ids(page: dict[str, Any]) -> list[str]:
    return [feature["id"] for feature in page["features"]]


def next_link(page: dict[str, Any]) -> dict[str, Any] | None:
    return next((link for link in page["links"] if link["rel"] == "next"), None)


def test_post_search_pages_like_earth_search(fresh):
    # Given a search over both collections, three items a page
    body = {"collections": ["alpha", "beta"], "limit": 3}
    page = get_json(fresh, "/v1/search", method="POST", body=body)
    seen = []
    while page["features"]:
        seen += ids(page)
        link = next_link(page)
        # Then each `next` link repeats the request with the token of the page's last item, not merged
        assert link["method"] == "POST" and link["merge"] is False and link["href"] == f"{fresh.url}/v1/search"
        last = page["features"][-1]
        assert link["body"] == {**body, "next": f"{last['properties']['datetime']},{last['id']},{last['collection']}"}
        page = get_json(fresh, "/v1/search", method="POST", body=link["body"])
    # And the items come newest first (ties: id descending), each once; the page after the last is empty
    assert seen == ["b2", "a5", "a4", "a3", "b1", "a2", "a1"]
    assert page["numberMatched"] == 7 and page["numberReturned"] == 0 and next_link(page) is None


def test_get_search_pages_with_next_links(fresh):
    page = get_json(fresh, "/v1/search?collections=alpha&limit=2&bbox=10,45,11,46")
    seen = []
    while page["features"]:
        seen += ids(page)
        link = next_link(page)
        assert link["method"] == "GET" and "bbox=10.0%2C45.0%2C11.0%2C46.0" in link["href"]
        page = get_json(fresh, link["href"].removeprefix(fresh.url))
    assert seen == ["a5", "a4", "a2", "a1"]  # a3 lies elsewhere


@pytest.mark.parametrize(("body", "expected"), [
    ({"bbox": [11.5, 46.5, 13, 48]}, ["b2"]),
    ({"intersects": {"type": "Point", "coordinates": [20.5, 45.5]}}, ["a3"]),
    ({"datetime": "2023-06-02T00:00:00Z/2023-06-03T23:59:59Z"}, ["a4", "a3", "b1", "a2"]),
    ({"datetime": "../2023-06-01T10:00:00Z"}, ["a1"]),
    ({"datetime": "2023-06-04T00:00:00Z/.."}, ["b2", "a5"]),
    ({"datetime": "2023-07-01T12:00:00Z"}, ["b2"]),
    ({"ids": ["a1", "b2", "zz"]}, ["b2", "a1"]),
    ({"collections": ["alpha"], "query": {"eo:cloud_cover": {"lte": 15}}}, ["a4", "a3", "a1"]),
    ({"query": {"eo:cloud_cover": {"gt": 10, "lt": 60}}}, ["a3", "a2"]),
    ({"collections": ["gamma"]}, []),
])
def test_search_filters(fresh, body, expected):
    assert ids(get_json(fresh, "/v1/search", method="POST", body={**body, "limit": 100})) == expected


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": "many"}, {"bbox": [1, 2, 3]},
                                  {"datetime": "yesterday"}, {"query": {"eo:cloud_cover": {"like": 1}}}])
def test_bad_searches_are_400(fresh, body):
    status, _, response = request(fresh, "/v1/search", method="POST", body=body)
    assert status == 400 and json.loads(response)["code"] == "BadRequest"
    assert request(fresh, "/v1/search?bbox=a,b,c,d")[0] == 400


def test_collections_items_and_404s(fresh):
    landing = get_json(fresh, "/v1")
    assert {(link["rel"], link.get("method")) for link in landing["links"]} >= {("search", "GET"), ("search", "POST")}
    assert [c["id"] for c in get_json(fresh, "/v1/collections")["collections"]] == ["alpha", "beta"]
    page = get_json(fresh, "/v1/collections/alpha/items?limit=4")
    assert ids(page) == ["a5", "a4", "a3", "a2"] and "/v1/collections/alpha/items?" in next_link(page)["href"]
    assert ids(get_json(fresh, next_link(page)["href"].removeprefix(fresh.url))) == ["a1"]
    assert get_json(fresh, "/v1/collections/beta/items/b1")["id"] == "b1"
    for path in ("/v1/collections/gamma", "/v1/collections/beta/items/a1", "/v1/nothing"):
        status, _, body = request(fresh, path)
        assert status == 404 and json.loads(body) == {"code": "NotFound", "description": "Not Found"}


def test_hrefs_point_at_the_server(fresh):
    # Given documents whose hrefs name the public hosts
    item = get_json(fresh, "/v1/collections/alpha/items/a1")
    # Then they are served pointing at this server, where the asset is (with Range support)
    assert item["links"][0]["href"] == f"{fresh.url}/v1/collections/alpha/items/a1"
    assert item["assets"]["red"]["href"] == f"{fresh.url}/files/alpha/a1/red.tif"
    collection = get_json(fresh, "/v1/collections/beta")
    assert collection["links"][0]["href"] == f"{fresh.url}/v1/collections/beta/items"
    assert fresh.href("https://elsewhere.test/x") == "https://elsewhere.test/x"
    assert ITEMS[0]["assets"]["red"]["href"].startswith("https://data.example.test/")  # the source is left alone


# --- the recorded Earth Search documents ---------------------------------------------------------------

@pytest.fixture(scope="module")
def earth_search() -> Iterator[StacTestServer]:
    data = require_real_data()
    with earth_search_server(data) as server:
        yield server


def test_recorded_searches_are_answered_as_earth_search_did(earth_search):
    # Given the search requests recorded from Earth Search v1 (their answers are what the server knows)
    data = require_real_data()
    recordings = [r for r in load_json(data / "earth-search-v1" / "recordings.json")
                  if r["method"] == "POST" and r["url"] == f"{EARTH_SEARCH}/v1/search"]
    assert recordings
    for recording in recordings:
        recorded = load_json(data / recording["file"])
        # When replaying one
        answer = get_json(earth_search, "/v1/search", method="POST", body=recording["request_body"])
        # Then the same items in the same order, and (while the server knows all of them) the same next link
        assert ids(answer) == ids(recorded), recording["file"]
        if recorded["numberMatched"] == answer["numberMatched"]:
            assert answer["links"] == earth_search.localized(recorded["links"])


def test_recorded_documents_are_served_with_local_hrefs(earth_search):
    data = require_real_data()
    landing = get_json(earth_search, "/v1")
    assert landing["id"] == load_json(data / "earth-search-v1" / "landing.json")["id"]
    assert all(not link["href"].startswith(EARTH_SEARCH) for link in landing["links"])
    collection = get_json(earth_search, "/v1/collections/sentinel-2-l2a")
    assert collection["item_assets"]["red"]["raster:bands"][0]["scale"] == 0.0001
    assert {c["id"] for c in get_json(earth_search, "/v1/collections")["collections"]} == {
        "sentinel-2-l2a", "landsat-c2-l2", "cop-dem-glo-30"}
    # The real scene's COGs are served where its item says
    item = get_json(earth_search, f"/v1/collections/sentinel-2-l2a/items/{S2_SCENE_ID}")
    for key, name in (("red", "B04"), ("nir", "B08"), ("scl", "SCL")):
        href = item["assets"][key]["href"]
        assert href == f"{earth_search.url}/{S2_SCENE}/{name}.tif"
        status, headers, body = request(earth_search, href.removeprefix(earth_search.url),
                                        headers={"Range": "bytes=0-3"})
        assert status == 206 and body in (b"II*\x00", b"MM\x00*")
