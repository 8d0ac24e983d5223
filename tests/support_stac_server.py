"""A local stand-in for a STAC API and the object store behind it, for tests and benchmarks.

`StacTestServer` serves, from a thread on 127.0.0.1:
- a minimal STAC API under `/v1` (Earth Search's layout): the landing page, `/conformance`,
  `/collections`, `/collections/<id>`, `/collections/<id>/items[/<item>]` and `/search` (GET and
  POST: `collections`, `ids`, `bbox`, `intersects` (by its bounding box), `datetime`, `query`,
  `limit`, and paging by a `next` token). As in Earth Search (stac-server): items are ordered by
  datetime, then id, both descending; the token is the last item's `datetime,id,collection`; a
  POST's `next` link repeats the request body with the token (`merge: false`); and every
  non-empty page has a `next` link, so the last page is an empty one.
  Every href in a served document that starts with a `rewrite` prefix points at this server.
- files under URL prefixes (`files`), with HTTP Range support as S3 and CDNs have it: single,
  suffix and multiple ranges (206, `multipart/byteranges`), 416 when none is satisfiable,
  `Accept-Ranges`, `Content-Length`, HEAD, and HTTP/1.1 keep-alive.

For network conditions it can add a delay to every request (`latency_s`, before the response)
and cap each response's throughput (`bandwidth_bytes_per_s`, per connection, as S3's per-request
throughput). It counts requests and bytes sent per path (`stats`, `log`).

`earth_search_server()` builds one from the recorded Earth Search v1 documents and the real
Sentinel-2 L2A COGs of `REAL_DATA` (see tests/fixtures/real/README.md).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from werkzeug.http import parse_range_header

REPO_ROOT = Path(__file__).resolve().parents[1]
# The recorded documents and COGs ship in the repository (tests/fixtures/real/build.py rebuilds them).
REAL_DATA = Path(os.environ.get("STRATUS_REAL_DATA") or REPO_ROOT / "tests" / "fixtures" / "real" / "data")

EARTH_SEARCH = "https://earth-search.aws.element84.com"
SENTINEL_COGS_HTTPS = "https://sentinel-cogs.s3.us-west-2.amazonaws.com/"
S2_SCENE = "sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
S2_SCENE_ID = "S2A_29RKH_20200219_0_L2A"

API_PREFIX = "/v1"
DEFAULT_LIMIT = 10  # Earth Search's
MAX_LIMIT = 10_000
_CHUNK = 16 * 1024


@dataclass
class PathStats:
    requests: int = 0
    bytes: int = 0  # response body bytes sent


@dataclass
class RequestRecord:
    method: str
    path: str  # without the query string
    range: str | None  # the Range header as sent
    status: int
    bytes: int = 0  # body bytes handed to the socket so far


class StacTestServer:
    """See the module docstring. Use as a context manager; `url` is `http://127.0.0.1:<port>`."""

    def __init__(self, *, landing: Mapping[str, Any] | None = None,
                 collections: Iterable[Mapping[str, Any]] = (), items: Iterable[Mapping[str, Any]] = (),
                 files: Mapping[str, Path] | None = None, rewrite: Mapping[str, str] | None = None,
                 latency_s: float = 0.0, bandwidth_bytes_per_s: float | None = None,
                 multiple_ranges: bool = True) -> None:
        self.landing = dict(landing) if landing is not None else None
        self.collections = {c["id"]: dict(c) for c in collections}
        self.items = {(i["collection"], i["id"]): dict(i) for i in items}
        self.files = {"/" + prefix.strip("/") + "/": Path(directory) for prefix, directory in (files or {}).items()}
        self.latency_s = latency_s
        self.bandwidth_bytes_per_s = bandwidth_bytes_per_s
        self.multiple_ranges = multiple_ranges  # False: ignore multi-range requests and send the whole file, as S3
        self._lock = threading.Lock()
        self._stats: dict[str, PathStats] = {}
        self._log: list[RequestRecord] = []
        self._search_bodies: list[dict[str, Any]] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        # Longest prefix first, so a more specific prefix wins.
        self._rewrite = sorted((rewrite or {}).items(), key=lambda pair: -len(pair[0]))
        self._thread = threading.Thread(target=self._http.serve_forever, name="stac-test-server", daemon=True)

    def __enter__(self) -> StacTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    # --- counters -------------------------------------------------------------------------------

    def stats(self, path: str | None = None) -> PathStats:
        """Requests and bytes for one path, or for all paths together."""
        with self._lock:
            if path is not None:
                found = self._stats.get(path, PathStats())
                return PathStats(found.requests, found.bytes)
            return PathStats(sum(s.requests for s in self._stats.values()), sum(s.bytes for s in self._stats.values()))

    def stats_by_path(self) -> dict[str, PathStats]:
        with self._lock:
            return {path: PathStats(s.requests, s.bytes) for path, s in self._stats.items()}

    @property
    def log(self) -> list[RequestRecord]:
        with self._lock:
            return [RequestRecord(r.method, r.path, r.range, r.status, r.bytes) for r in self._log]

    @property
    def search_bodies(self) -> list[dict[str, Any]]:
        """The bodies of the POST /search requests received, in order."""
        with self._lock:
            return [json.loads(json.dumps(body)) for body in self._search_bodies]

    def reset_counters(self) -> None:
        with self._lock:
            self._stats.clear()
            self._log.clear()
            self._search_bodies.clear()

    # Counted as the response goes out (before each write), so a client that has read a response
    # sees it counted.
    def _begin(self, record: RequestRecord) -> RequestRecord:
        with self._lock:
            self._stats.setdefault(record.path, PathStats()).requests += 1
            self._log.append(record)
        return record

    def _add_bytes(self, record: RequestRecord, count: int) -> None:
        with self._lock:
            record.bytes += count
            self._stats[record.path].bytes += count

    # --- documents ------------------------------------------------------------------------------

    def href(self, url: str) -> str:
        """`url` as this server serves it (unchanged when no rewrite prefix matches)."""
        for prefix, target in self._rewrite:
            if url.startswith(prefix):
                return self.url + target + url[len(prefix):]
        return url

    def localized(self, document: Any) -> Any:
        """A deep copy of `document` with every string that starts with a rewrite prefix rewritten."""
        if isinstance(document, str):
            return self.href(document)
        if isinstance(document, Mapping):
            return {key: self.localized(value) for key, value in document.items()}
        if isinstance(document, list):
            return [self.localized(value) for value in document]
        return document

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    def item_url(self, collection_id: str, item_id: str) -> str:
        return f"{self.api_url}/collections/{collection_id}/items/{item_id}"

    def api_get(self, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
        parts = [urllib.parse.unquote(p) for p in path.removeprefix(API_PREFIX).strip("/").split("/") if p]
        if not parts:
            return HTTPStatus.OK, self._landing()
        if parts == ["conformance"]:
            return HTTPStatus.OK, {"conformsTo": (self.landing or {}).get("conformsTo", [])}
        if parts == ["search"]:
            try:
                return self.search(_search_body(query), method="GET")
            except ValueError as exc:
                return _bad_request(str(exc))
        if parts[0] != "collections":
            return _not_found()
        if len(parts) == 1:
            return HTTPStatus.OK, {"collections": [self.localized(c) for c in self.collections.values()],
                                   "links": [{"rel": "self", "type": "application/json", "href": f"{self.api_url}/collections"},
                                             {"rel": "root", "type": "application/json", "href": self.api_url}]}
        collection = self.collections.get(parts[1])
        if collection is None:
            return _not_found()
        if len(parts) == 2:
            return HTTPStatus.OK, self.localized(collection)
        if parts[2] != "items" or len(parts) > 4:
            return _not_found()
        if len(parts) == 4:
            item = self.items.get((parts[1], parts[3]))
            return (HTTPStatus.OK, self.localized(item)) if item is not None else _not_found()
        try:
            body = _search_body(query)
        except ValueError as exc:
            return _bad_request(str(exc))
        body.pop("collections", None)
        return self.search(body, method="GET", collection_id=parts[1])

    def search(self, body: Mapping[str, Any], *, method: str, collection_id: str | None = None) -> tuple[int, Any]:
        """One page of the items matching `body`, with a `next` link while more remain."""
        try:
            limit = int(body.get("limit", DEFAULT_LIMIT))
            if limit < 1:
                raise ValueError("limit must be positive")
            matching = [item for item in self._ordered_items()
                        if (collection_id is None or item["collection"] == collection_id) and _matches(item, body)]
        except (TypeError, ValueError) as exc:
            return _bad_request(str(exc))
        limit = min(limit, MAX_LIMIT)
        start = 0
        if body.get("next"):
            keys = [_token(item) for item in matching]
            start = keys.index(body["next"]) + 1 if body["next"] in keys else len(matching)
        page = matching[start:start + limit]
        links: list[dict[str, Any]] = []
        endpoint = f"{self.api_url}/collections/{collection_id}/items" if collection_id else f"{self.api_url}/search"
        if page:  # as Earth Search: a `next` link after every non-empty page, so the last one is empty
            following = {**{k: v for k, v in body.items() if k != "next"}, "next": _token(page[-1])}
            if method == "POST":
                links.append({"rel": "next", "title": "Next page of Items", "method": "POST",
                              "type": "application/geo+json", "href": endpoint, "merge": False, "body": following})
            else:
                links.append({"rel": "next", "title": "Next page of Items", "method": "GET",
                              "type": "application/geo+json", "href": f"{endpoint}?{_query_string(following)}"})
        links.append({"rel": "root", "type": "application/json", "href": self.api_url})
        return HTTPStatus.OK, {
            "type": "FeatureCollection", "stac_version": "1.0.0", "stac_extensions": [],
            "context": {"limit": limit, "matched": len(matching), "returned": len(page)},
            "numberMatched": len(matching), "numberReturned": len(page),
            "features": [self.localized(item) for item in page], "links": links}

    def _ordered_items(self) -> list[dict[str, Any]]:
        return sorted(self.items.values(), key=lambda i: (_item_start(i), i["id"]), reverse=True)

    def _landing(self) -> dict[str, Any]:
        if self.landing is not None:
            return self.localized(self.landing)
        return {"type": "Catalog", "id": "stac-test-server", "stac_version": "1.0.0", "description": "test STAC API",
                "conformsTo": [], "links": [
                    {"rel": "self", "type": "application/json", "href": self.api_url},
                    {"rel": "root", "type": "application/json", "href": self.api_url},
                    {"rel": "data", "type": "application/json", "href": f"{self.api_url}/collections"},
                    {"rel": "search", "type": "application/geo+json", "method": "GET", "href": f"{self.api_url}/search"},
                    {"rel": "search", "type": "application/geo+json", "method": "POST", "href": f"{self.api_url}/search"},
                    *({"rel": "child", "type": "application/json", "href": f"{self.api_url}/collections/{cid}"}
                      for cid in self.collections)]}

    # --- files ----------------------------------------------------------------------------------

    def file_for(self, path: str) -> Path | None:
        for prefix, directory in self.files.items():
            if path.startswith(prefix):
                candidate = (directory / urllib.parse.unquote(path[len(prefix):])).resolve()
                if candidate.is_file() and candidate.is_relative_to(directory.resolve()):
                    return candidate
        return None


def _handler_for(server: StacTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every response carries a Content-Length
        # Headers and body leave in separate writes: with Nagle's algorithm the body would wait for the
        # client's delayed ACK (40 ms on Linux). Servers such as S3 and nginx send without delay.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (ConnectionError, TimeoutError):
                self.close_connection = True  # the client went away mid-response (GDAL does, once it has its bytes)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._delay()
            path = self.path.split("?", 1)[0]
            if path.rstrip("/") != f"{API_PREFIX}/search":
                return self._json(path, *_not_found(), method_not_allowed=server.file_for(path) is not None)
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as exc:
                return self._json(path, *_bad_request(f"invalid JSON body: {exc}"))
            with server._lock:
                server._search_bodies.append(body)
            return self._json(path, *server.search(body, method="POST"))

        def _serve(self, *, head: bool) -> None:
            self._delay()
            parsed = urllib.parse.urlsplit(self.path)
            if parsed.path == API_PREFIX or parsed.path.startswith(API_PREFIX + "/"):
                query = dict(urllib.parse.parse_qsl(parsed.query))
                return self._json(parsed.path, *server.api_get(parsed.path, query), head=head)
            file = server.file_for(parsed.path)
            if file is None:
                return self._json(parsed.path, *_not_found(), head=head)
            return self._file(parsed.path, file, head=head)

        def _delay(self) -> None:
            if server.latency_s > 0:
                time.sleep(server.latency_s)

        def _json(self, path: str, status: int, document: Any, *, head: bool = False,
                  method_not_allowed: bool = False) -> None:
            if method_not_allowed:
                status, document = HTTPStatus.METHOD_NOT_ALLOWED, {"code": "MethodNotAllowed",
                                                                   "description": "Method Not Allowed"}
            body = json.dumps(document).encode()
            record = server._begin(RequestRecord(self.command, path, None, int(status)))
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status >= 400 or "features" not in document
                             else "application/geo+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self._write(body, record)

        def _file(self, path: str, file: Path, *, head: bool) -> None:
            size = file.stat().st_size
            header = self.headers.get("Range")
            ranges = _satisfiable_ranges(header, size) if header else None
            if ranges is not None and len(ranges) > 1 and not server.multiple_ranges:
                ranges = None
            if ranges == []:
                server._begin(RequestRecord(self.command, path, header, 416))
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            with file.open("rb") as source:
                if ranges is None:
                    status = HTTPStatus.OK
                    headers = {"Content-Type": _media_type(file), "Content-Length": str(size)}
                    body_parts: list[bytes | tuple[int, int]] = [(0, size)]
                elif len(ranges) == 1:
                    (start, stop), status = ranges[0], HTTPStatus.PARTIAL_CONTENT
                    headers = {"Content-Type": _media_type(file), "Content-Range": f"bytes {start}-{stop - 1}/{size}",
                               "Content-Length": str(stop - start)}
                    body_parts = [(start, stop)]
                else:
                    status, boundary = HTTPStatus.PARTIAL_CONTENT, uuid.uuid4().hex
                    body_parts = []
                    for start, stop in ranges:
                        body_parts.append((f"--{boundary}\r\nContent-Type: {_media_type(file)}\r\n"
                                           f"Content-Range: bytes {start}-{stop - 1}/{size}\r\n\r\n").encode())
                        body_parts += [(start, stop), b"\r\n"]
                    body_parts.append(f"--{boundary}--\r\n".encode())
                    length = sum(len(p) if isinstance(p, bytes) else p[1] - p[0] for p in body_parts)
                    headers = {"Content-Type": f"multipart/byteranges; boundary={boundary}",
                               "Content-Length": str(length)}
                record = server._begin(RequestRecord(self.command, path, header, int(status)))
                self.send_response(status)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Last-Modified", self.date_time_string(int(file.stat().st_mtime)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if head:
                    return None
                for part in body_parts:
                    if isinstance(part, bytes):
                        self._write(part, record)
                    else:
                        source.seek(part[0])
                        remaining = part[1] - part[0]
                        while remaining:
                            chunk = source.read(min(_CHUNK, remaining))
                            self._write(chunk, record)
                            remaining -= len(chunk)
                return None

        def _write(self, data: bytes, record: RequestRecord) -> None:
            """Write `data`, paced to the bandwidth cap (per connection)."""
            cap = server.bandwidth_bytes_per_s
            started = time.perf_counter()
            for offset in range(0, len(data), _CHUNK):
                chunk = data[offset:offset + _CHUNK]
                # A chunk leaves when a link of that bandwidth would have carried it.
                if cap and (wait := started + (offset + len(chunk)) / cap - time.perf_counter()) > 0:
                    time.sleep(wait)
                server._add_bytes(record, len(chunk))
                self.wfile.write(chunk)

    return Handler


# --- search semantics -----------------------------------------------------------------------------

def _search_body(query: Mapping[str, str]) -> dict[str, Any]:
    """A GET search's parameters as a POST body."""
    body: dict[str, Any] = dict(query)
    try:
        if "bbox" in body:
            body["bbox"] = [float(v) for v in body["bbox"].split(",")]
        for key in ("collections", "ids"):
            if key in body:
                body[key] = [v for v in body[key].split(",") if v]
        for key in ("intersects", "query"):
            if key in body:
                body[key] = json.loads(body[key])
    except ValueError as exc:
        raise ValueError(f"invalid search parameter: {exc}") from None
    return body


def _query_string(body: Mapping[str, Any]) -> str:
    def encode(value: Any) -> str:
        if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            return ",".join(str(v) for v in value)
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return urllib.parse.urlencode({key: encode(value) for key, value in body.items()})


def _matches(item: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    if body.get("collections") and item["collection"] not in body["collections"]:
        return False
    if body.get("ids") and item["id"] not in body["ids"]:
        return False
    box = body.get("bbox") or (_geometry_bbox(body["intersects"]) if body.get("intersects") else None)
    if box is not None:
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        if len(box) != 4:
            raise ValueError("bbox must have 4 or 6 numbers")
        bbox = item["bbox"]
        west, south, east, north = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
        if west > box[2] or east < box[0] or south > box[3] or north < box[1]:
            return False
    if body.get("datetime"):
        low, high = _interval(body["datetime"])
        start, end = _item_start(item), _item_end(item)
        if (low is not None and end < low) or (high is not None and start > high):
            return False
    for name, conditions in (body.get("query") or {}).items():
        value = item["properties"].get(name)
        for op, operand in conditions.items():
            if not _compare(op, value, operand):
                return False
    return True


def _compare(op: str, value: Any, operand: Any) -> bool:
    if op == "eq":
        return value == operand
    if op == "neq":
        return value != operand
    if op == "in":
        return value in operand
    if op not in ("lt", "lte", "gt", "gte"):
        raise ValueError(f"unsupported query operator {op!r}")
    if value is None:
        return False
    return {"lt": value < operand, "lte": value <= operand, "gt": value > operand, "gte": value >= operand}[op]


def _geometry_bbox(geometry: Mapping[str, Any]) -> list[float]:
    points = list(_coordinates(geometry["coordinates"]))
    if not points:
        raise ValueError("intersects has no coordinates")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def _coordinates(value: Any) -> Iterator[tuple[float, float]]:
    if value and isinstance(value[0], (int, float)):
        yield float(value[0]), float(value[1])
    else:
        for inner in value:
            yield from _coordinates(inner)


def _interval(text: str) -> tuple[datetime | None, datetime | None]:
    if "/" not in text:
        instant = _parse_time(text)
        return instant, instant
    low, high = text.split("/", 1)
    return (None if low in ("", "..") else _parse_time(low)), (None if high in ("", "..") else _parse_time(high))


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid datetime {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _item_start(item: Mapping[str, Any]) -> datetime:
    properties = item["properties"]
    return _parse_time(properties.get("datetime") or properties["start_datetime"])


def _item_end(item: Mapping[str, Any]) -> datetime:
    properties = item["properties"]
    return _parse_time(properties.get("datetime") or properties.get("end_datetime") or properties["start_datetime"])


def _token(item: Mapping[str, Any]) -> str:
    return f"{item['properties'].get('datetime') or item['properties'].get('start_datetime')},{item['id']},{item['collection']}"


def _not_found() -> tuple[int, dict[str, str]]:
    return HTTPStatus.NOT_FOUND, {"code": "NotFound", "description": "Not Found"}  # Earth Search's body


def _bad_request(description: str) -> tuple[int, dict[str, str]]:
    return HTTPStatus.BAD_REQUEST, {"code": "BadRequest", "description": description}


def _satisfiable_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """[(start, stop)] of a Range header (stop exclusive); [] when none is satisfiable; None when the
    header is to be ignored (malformed, another unit, or overlapping/unordered ranges)."""
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes":
        return None
    ranges = []
    for start, stop in parsed.ranges:
        if start < 0:  # a suffix: the last -start bytes
            if size == 0:
                continue
            start, stop = max(size + start, 0), size
        else:
            if start >= size:
                continue
            stop = size if stop is None else min(stop, size)
        ranges.append((start, stop))
    return ranges


def _media_type(file: Path) -> str:
    return {".tif": "image/tiff", ".tiff": "image/tiff", ".json": "application/json"}.get(file.suffix.lower(),
                                                                                         "application/octet-stream")


# --- the recorded Earth Search documents and the real Sentinel-2 scene ------------------------------

def real_data_dir(data_dir: Path = REAL_DATA) -> Path | None:
    """`data_dir` if the real material is there, else None."""
    return data_dir if (data_dir / "earth-search-v1" / "recordings.json").is_file() else None


def require_real_data(data_dir: Path = REAL_DATA) -> Path:
    """`data_dir`, or a pytest skip saying where the material is expected."""
    if real_data_dir(data_dir) is None:
        import pytest  # noqa: PLC0415 - only tests skip; benchmarks check `REAL_DATA` themselves

        pytest.skip(f"{data_dir} is absent: the recorded Earth Search documents and real COGs ship in "
                    "tests/fixtures/real/data/ (STRATUS_REAL_DATA overrides); see tests/fixtures/real/README.md")
    return data_dir


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def recorded_items(data_dir: Path = REAL_DATA) -> list[dict[str, Any]]:
    """The items of every recorded search page, and the real Sentinel-2 scene's item."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for recording in load_json(data_dir / "earth-search-v1" / "recordings.json"):
        document = load_json(data_dir / recording["file"])
        for feature in document.get("features") or []:
            items[(feature["collection"], feature["id"])] = feature
    scene = scene_item(data_dir)
    items[(scene["collection"], scene["id"])] = scene
    return list(items.values())


def scene_item(data_dir: Path = REAL_DATA) -> dict[str, Any]:
    """The Earth Search v1 item of S2A_29RKH_20200219_0_L2A, with the `proj:shape`/`proj:transform`
    of the assets whose COGs are here set to those files' grid (they are cut-outs of 10x-reduced
    copies; the recorded values describe the full-resolution originals)."""
    import rasterio  # noqa: PLC0415

    item = load_json(data_dir / S2_SCENE / f"{S2_SCENE_ID}.json")
    for asset in item["assets"].values():
        href = asset["href"]
        if not href.startswith(SENTINEL_COGS_HTTPS):
            continue
        local = data_dir / "sentinel-cogs" / href.removeprefix(SENTINEL_COGS_HTTPS)
        if local.is_file():
            with rasterio.open(local) as src:
                asset["proj:shape"] = [src.height, src.width]
                asset["proj:transform"] = list(src.transform)[:6]
    return item


def earth_search_server(data_dir: Path = REAL_DATA, **options: Any) -> StacTestServer:
    """A `StacTestServer` with Earth Search's recorded landing page, the `sentinel-2-l2a`,
    `landsat-c2-l2` and `cop-dem-glo-30` collections, the recorded items and the real scene, its
    COGs under `/sentinel-cogs/`; Earth Search and sentinel-cogs hrefs point at the server."""
    es = data_dir / "earth-search-v1"
    collections = [load_json(path) for path in sorted((es / "collections").glob("*.json"))]
    return StacTestServer(
        landing=load_json(es / "landing.json"), collections=collections, items=recorded_items(data_dir),
        files={"/sentinel-cogs": data_dir / "sentinel-cogs"},
        rewrite={EARTH_SEARCH: "", SENTINEL_COGS_HTTPS: "/sentinel-cogs/"},
        **options)


__all__ = ["EARTH_SEARCH", "REAL_DATA", "S2_SCENE", "S2_SCENE_ID", "PathStats", "RequestRecord", "StacTestServer",
           "earth_search_server", "load_json", "recorded_items", "require_real_data", "scene_item"]
