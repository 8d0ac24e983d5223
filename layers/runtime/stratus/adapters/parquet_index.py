"""The catalogue index: immutable Parquet files per collection in S3 (`catalog_layout.index_partition_prefix`),
searched with DuckDB. See docs/catalog.md for why.

Each indexer batch writes one file per collection: a row per change with the item's id, the acceptance time of
the change (`_seq`), a tombstone flag, the footprint (`bbox` struct, WKB geometry), the times, every scalar
property as a column of its own (stac-geoparquet's flat layout, so CQL2 compiles to plain SQL) and the item's
JSON. The newest row of an (collection, id) is the item: writes are upserts without reading, a re-sent change
writes a row equal to the one it repeats, and compaction folds a collection's files into one.

Searches copy the (immutable) files to local disk once per warm container and query them there; DuckDB's
spatial functions are not needed: bbox tests use the bbox columns, CQL2's spatial operators are Python UDFs
(shapely) on the rows left over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import duckdb
from botocore.exceptions import ClientError

from stratus import catalog_layout
from stratus.domain.stac_items import DELETE, IngestMessage
from stratus.domain.stac_search import InvalidSearch, SearchPage, SearchRequest, filter_properties

# Columns of our own; a property of the same name stays in the item JSON only.
_RESERVED = {"collection", "id", "_seq", "_deleted", "_item", "geometry", "bbox", "datetime", "start_datetime",
             "end_datetime"}
_FIXED_COLUMNS = {
    "collection": "VARCHAR", "id": "VARCHAR", "_seq": "BIGINT", "_deleted": "BOOLEAN", "_item": "VARCHAR",
    "geometry": "VARCHAR", "xmin": "DOUBLE", "ymin": "DOUBLE", "xmax": "DOUBLE", "ymax": "DOUBLE",
    "datetime": "TIMESTAMPTZ", "start_datetime": "TIMESTAMPTZ", "end_datetime": "TIMESTAMPTZ",
}
_SPATIAL = {
    "st_intersects": "intersects", "st_contains": "contains", "st_within": "within", "st_disjoint": "disjoint",
    "st_equals": "equals", "st_touches": "touches", "st_overlaps": "overlaps", "st_crosses": "crosses",
}


@dataclass(frozen=True)
class IndexFile:
    key: str
    size: int


class _Vanished(Exception):
    """A listed file was deleted before we copied it: a compaction folded it into a newer file."""


logger = logging.getLogger(__name__)

_LISTING_ATTEMPTS = 3  # a search retries with a fresh listing when a compaction ran between listing and copying


class ParquetIndex:
    def __init__(self, s3: Any, bucket: str, cache_dir: str | None = None) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._cache_dir = cache_dir or tempfile.mkdtemp(prefix="stratus-index-")
        os.makedirs(self._cache_dir, exist_ok=True)
        self._schemas: dict[tuple[str, ...], dict[str, str]] = {}
        self._searcher: duckdb.DuckDBPyConnection | None = None  # one per container: connecting costs ~50 ms
        self._lock = threading.Lock()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._searcher is None:
            self._searcher = _connection(self._cache_dir)
        return self._searcher

    # --- writing -------------------------------------------------------------------------------------------

    def write(self, changes: Sequence[tuple[IngestMessage, dict[str, Any] | None]]) -> list[str]:
        """One Parquet file per collection for `changes` (a message with its validated item, or None for a
        delete); returns the keys written."""
        newest: dict[tuple[str, str], tuple[IngestMessage, dict[str, Any] | None]] = {}
        for message, item in changes:  # one row per item and file: a file never needs deduplicating on its own
            key = (message.collection, message.item_id)
            if key not in newest or newest[key][0].accepted_ns <= message.accepted_ns:
                newest[key] = (message, item)
        by_collection: dict[str, list[dict[str, Any]]] = {}
        rows = [_row(message, item) for message, item in newest.values()]
        _geometries_as_wkb(rows)
        for row in rows:
            by_collection.setdefault(row["collection"], []).append(row)
        return [self._put_rows(collection, rows) for collection, rows in by_collection.items()]

    def _put_rows(self, collection: str, rows: list[dict[str, Any]], *, name: str = "batch") -> str:
        seq = max(row["_seq"] for row in rows)
        key = f"{catalog_layout.index_partition_prefix(collection)}{seq:020d}-{name}-{uuid.uuid4().hex}.parquet"
        with tempfile.TemporaryDirectory(prefix="stratus-index-write-") as tmp:
            ndjson, parquet = os.path.join(tmp, "rows.ndjson"), os.path.join(tmp, "rows.parquet")
            with open(ndjson, "w") as out:
                for row in rows:
                    out.write(json.dumps(row, separators=(",", ":")))
                    out.write("\n")
            columns = {**_FIXED_COLUMNS, **_property_columns(rows)}
            connection = duckdb.connect()
            try:
                connection.execute(
                    f"COPY (SELECT * EXCLUDE (xmin, ymin, xmax, ymax, geometry), from_hex(geometry) AS geometry,"
                    f" struct_pack(xmin := xmin, ymin := ymin, xmax := xmax, ymax := ymax) AS bbox"
                    f" FROM read_json(?, format='newline_delimited', columns={_struct(columns)})"
                    f" ORDER BY id) TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)",
                    [ndjson])
            finally:
                connection.close()
            with open(parquet, "rb") as data:
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=data.read())
        return key

    def compact(self, collection: str, min_files: int) -> str | None:
        """Folds the collection's files into one when there are at least `min_files`: the newest row per item
        (tombstones too, so a late older version can never resurrect a deleted item). Files written meanwhile
        are not touched; a file deleted under us by a parallel compaction aborts this one (harmless)."""
        files = self.files(collection)
        if len(files) < min_files:
            return None
        paths = self._local(files)
        connection = duckdb.connect()
        try:
            rows = connection.execute(
                f"SELECT * EXCLUDE (bbox, geometry), hex(geometry) AS geometry,"
                f" bbox.xmin AS xmin, bbox.ymin AS ymin, bbox.xmax AS xmax, bbox.ymax AS ymax"
                f" FROM ({_latest(paths)})").fetchall()
            names = [d[0] for d in connection.description]
        finally:
            connection.close()
        if not rows:
            return None
        records = [dict(zip(names, row)) for row in rows]
        for record in records:
            for column in ("datetime", "start_datetime", "end_datetime"):
                if isinstance(record.get(column), datetime):
                    record[column] = record[column].isoformat()
        key = self._put_rows(collection, records, name="compacted")
        for file in files:
            self._s3.delete_object(Bucket=self._bucket, Key=file.key)
        return key

    # --- reading -------------------------------------------------------------------------------------------

    def files(self, collection: str) -> list[IndexFile]:
        paginator = self._s3.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=self._bucket, Prefix=catalog_layout.index_partition_prefix(collection)):
            found += [IndexFile(o["Key"], o["Size"]) for o in page.get("Contents", [])
                      if o["Key"].endswith(".parquet")]
        return found

    def search(self, request: SearchRequest) -> SearchPage:
        paths = self._current(request.collections)
        if not paths:
            return SearchPage([], 0)
        columns = self._columns(paths)
        if request.filter is not None:
            lists = {name for name, kind in columns.items() if kind.endswith("[]")}
            request = replace(request, filter=_on_lists(request.filter, lists))
        # a queryable no file has is null in every item (queryables allow additional properties)
        wanted = {key.field for key in request.sortby} | filter_properties(request.filter)
        missing = sorted(wanted - columns.keys())
        where, params = _conditions(request)
        order = ", ".join([*(f"{_identifier(k.field)} {'DESC' if k.descending else 'ASC'} NULLS LAST"
                             for k in request.sortby),
                           "datetime DESC NULLS LAST", "collection", "id"])
        sql = (f"SELECT _item, count(*) OVER () FROM ({_latest(paths, missing)}) WHERE NOT _deleted"
               f"{''.join(f' AND ({c})' for c in where)} ORDER BY {order} LIMIT ? OFFSET ?")
        try:
            rows = self._query(sql, [*params, request.limit + 1, request.offset])
        except (duckdb.BinderException, duckdb.ConversionException, duckdb.InvalidInputException,
                duckdb.ParserException) as error:
            raise InvalidSearch(_search_error(error)) from None
        matched = rows[0][1] if rows else 0
        if not rows and request.offset:
            matched = self._count(paths, missing, where, params)
        items = [json.loads(row[0]) for row in rows[: request.limit]]
        more = len(rows) > request.limit
        return SearchPage(items, matched, request.offset + request.limit if more else None)

    def _count(self, paths: list[str], missing: list[str], where: list[str], params: list[Any]) -> int:
        return self._query(f"SELECT count(*) FROM ({_latest(paths, missing)}) WHERE NOT _deleted"
                           f"{''.join(f' AND ({c})' for c in where)}", params)[0][0]

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of `sql` on the container's search connection, once more on a new connection after a DuckDB
        internal error: such an error invalidates the connection's database (seen on CI, once in a few
        hundred runs: "Attempted to access index 0 within vector of size 0" on a search by ids)."""
        try:
            return self._fetch_all(sql, params)
        except duckdb.InternalException:
            logger.warning("DuckDB internal error on a search; retrying on a new connection", exc_info=True)
            with self._lock:
                self._searcher = None
        return self._fetch_all(sql, params)

    def _fetch_all(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _columns(self, paths: list[str]) -> dict[str, str]:
        """Column name -> type across `paths` (remembered for the latest set of files only)."""
        key = tuple(paths)
        known = self._schemas  # one read: another thread may replace it meanwhile
        if key in known:
            return known[key]
        connection = duckdb.connect()
        try:
            connection.execute(f"DESCRIBE SELECT * FROM read_parquet({_paths(paths)}, union_by_name=true)")
            schema = {row[0]: row[1] for row in connection.fetchall()}
        finally:
            connection.close()
        self._schemas = {key: schema}
        return schema

    def items(self, collection: str, *, bbox: Sequence[float] | None, start: datetime | None,
              end: datetime | None) -> list[dict[str, Any]] | None:
        """Every item of `collection` intersecting `bbox` and [start, end] (for `load_collection`); None when
        the collection has no index yet."""
        paths = self._current((collection,))
        if not paths:
            return None
        request = SearchRequest(collections=(collection,), bbox=tuple(bbox) if bbox is not None else None,
                                interval=(start, end) if start is not None or end is not None else None)
        where, params = _conditions(request)
        with self._lock:
            rows = self._connection().execute(
                f"SELECT _item FROM ({_latest(paths)}) WHERE NOT _deleted"
                f"{''.join(f' AND ({c})' for c in where)}", params).fetchall()
        return [json.loads(row[0]) for row in rows]

    def get_item(self, collection: str, item_id: str) -> dict[str, Any] | None:
        page = self.search(SearchRequest(collections=(collection,), ids=(item_id,), limit=1))
        return page.items[0] if page.items else None

    def queryables(self, collections: Sequence[str]) -> dict[str, str]:
        """Column name -> DuckDB type of the properties indexed for `collections`."""
        paths = self._current(collections)
        if not paths:
            return {}
        connection = duckdb.connect()
        try:
            connection.execute(f"DESCRIBE SELECT * FROM read_parquet({_paths(paths)}, union_by_name=true)")
            return {name: kind for name, kind, *_ in connection.fetchall() if name not in ("_item", "_seq", "_deleted")}
        finally:
            connection.close()

    def _current(self, collections: Sequence[str]) -> list[str]:
        """Local copies of the collections' files as listed now. A compaction may delete listed files before we
        copy them (its file holds their rows): then the listing is taken again."""
        for attempt in range(_LISTING_ATTEMPTS):
            files = [file for collection in collections for file in self.files(collection)]
            try:
                return self._local(files)
            except _Vanished:
                if attempt == _LISTING_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _local(self, files: Iterable[IndexFile]) -> list[str]:
        """Local copies of the (immutable) files, made once per container."""
        paths = []
        for file in files:
            path = os.path.join(self._cache_dir, hashlib.sha256(file.key.encode()).hexdigest() + ".parquet")
            if not os.path.exists(path):
                partial = f"{path}.{uuid.uuid4().hex}.part"
                try:
                    self._s3.download_file(self._bucket, file.key, partial)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                        raise _Vanished(file.key) from error
                    raise
                os.replace(partial, path)
            paths.append(path)
        return paths

    def clear_cache(self) -> None:
        shutil.rmtree(self._cache_dir, ignore_errors=True)
        os.makedirs(self._cache_dir, exist_ok=True)


def _row(message: IngestMessage, item: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"collection": message.collection, "id": message.item_id, "_seq": message.accepted_ns,
                           "_deleted": message.action == DELETE or item is None}
    if row["_deleted"]:
        return row
    properties = item.get("properties") or {}
    bbox = item["bbox"]
    west, south, east, north = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox
    row.update(_item=json.dumps(item, separators=(",", ":")), geometry=json.dumps(item["geometry"]),
               xmin=west, ymin=south, xmax=east, ymax=north,
               datetime=properties.get("datetime"), start_datetime=properties.get("start_datetime"),
               end_datetime=properties.get("end_datetime"))
    for name, value in properties.items():
        if name not in _RESERVED and (value is None or isinstance(value, (str, int, float, bool)) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value))):
            row[name] = value
    return row


def _geometries_as_wkb(rows: list[dict[str, Any]]) -> None:
    """GeoJSON text -> WKB hex, for all rows at once (shapely is vectorised)."""
    import shapely

    placed = [row for row in rows if row.get("geometry") is not None]
    if placed:
        shapes = shapely.from_geojson([row["geometry"] for row in placed])
        for row, wkb in zip(placed, shapely.to_wkb(shapes, hex=True)):
            row["geometry"] = wkb


def _property_columns(rows: list[dict[str, Any]]) -> dict[str, str]:
    """A type per property column: BOOLEAN, DOUBLE, VARCHAR or VARCHAR[] (lists of strings). Mixed scalars are
    written as text; a property that is a list in one item and a scalar in another gets no column (it stays in
    the item's JSON) and is taken out of `rows`."""
    kinds: dict[str, set[str]] = {}
    for row in rows:
        for name, value in row.items():
            if name in _FIXED_COLUMNS or value is None:
                continue
            kind = "BOOLEAN" if isinstance(value, bool) else "DOUBLE" if isinstance(value, (int, float)) \
                else "VARCHAR[]" if isinstance(value, list) else "VARCHAR"
            kinds.setdefault(name, set()).add(kind)
    unusable = {name for name, k in kinds.items() if "VARCHAR[]" in k and len(k) > 1}
    for row in rows:
        for name in unusable & row.keys():
            del row[name]
    return {name: next(iter(k)) if len(k) == 1 else "VARCHAR" for name, k in kinds.items() if name not in unusable}


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in columns.items()) + "}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _paths(paths: list[str]) -> str:
    return "[" + ", ".join(_literal(p) for p in paths) + "]"


def _latest(paths: list[str], missing: Sequence[str] = ()) -> str:
    """The newest row of each item across `paths`, with null columns named `missing`. Each file holds an item
    once, so one file needs no deduplication; across files, the newest versions are found on the narrow key
    columns first, so only matching rows are read whole."""
    nulls = "".join(f", NULL AS {_identifier(name)}" for name in missing)
    if len(paths) == 1:
        return f"SELECT *{nulls} FROM read_parquet({_paths(paths)})"
    # a change re-sent lands in two files with the same `_seq`: the file name breaks the tie
    rows = f"read_parquet({_paths(paths)}, union_by_name=true, filename=true)"
    return (f"SELECT * EXCLUDE (filename){nulls} FROM {rows} WHERE (collection, id, _seq, filename) IN"
            f" (SELECT collection, id, max(_seq), arg_max(filename, _seq) FROM {rows} GROUP BY collection, id)")


def _conditions(request: SearchRequest) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if request.collections:
        where.append(f"collection IN ({', '.join('?' * len(request.collections))})")
        params += list(request.collections)
    if request.ids:
        where.append(f"id IN ({', '.join('?' * len(request.ids))})")
        params += list(request.ids)
    box = request.bbox
    if request.intersects is not None:
        box = _bounds(request.intersects)
        where.append("st_intersects(geometry, ?)")
        params.append(_shape(json.dumps(request.intersects)).wkb)
    if box is not None:
        west, south, east, north = box
        where.append("bbox.ymax >= ? AND bbox.ymin <= ?")
        params += [south, north]
        if west <= east:
            where.append("bbox.xmax >= ? AND bbox.xmin <= ?")
        else:  # across the antimeridian
            where.append("(bbox.xmax >= ? OR bbox.xmin <= ?)")
        params += [west, east]
    if request.interval is not None:
        start, end = request.interval
        if start is not None:
            where.append("coalesce(end_datetime, datetime) >= ?")
            params.append(start.astimezone(timezone.utc))
        if end is not None:
            where.append("coalesce(start_datetime, datetime) <= ?")
            params.append(end.astimezone(timezone.utc))
    if request.filter is not None:
        import cql2

        where.append(cql2.Expr(request.filter).to_sql())
    return where, params


def _on_lists(node: Any, list_columns: set[str]) -> Any:
    """`in` on a property that is a list of strings (e.g. `instruments`): true when the list holds any of the
    values (CQL2's `a_contains` per value, which DuckDB runs as `@>`)."""
    if isinstance(node, list):
        return [_on_lists(part, list_columns) for part in node]
    if not isinstance(node, dict):
        return node
    args = node.get("args")
    if node.get("op") == "in" and isinstance(args, list) and len(args) == 2 and isinstance(args[0], dict) \
            and args[0].get("property") in list_columns and isinstance(args[1], list) and args[1]:
        tests = [{"op": "a_contains", "args": [args[0], [value]]} for value in args[1]]
        return tests[0] if len(tests) == 1 else {"op": "or", "args": tests}
    return {key: _on_lists(value, list_columns) for key, value in node.items()}


def _bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    try:
        return tuple(_shape(json.dumps(geometry)).bounds)  # type: ignore[return-value]
    except Exception:  # noqa: BLE001 - shapely raises several kinds for bad GeoJSON
        raise InvalidSearch("intersects is not a valid GeoJSON geometry") from None


@lru_cache(maxsize=256)
def _shape(text: str) -> Any:
    import shapely

    return shapely.from_geojson(text) if text.lstrip().startswith("{") else shapely.from_wkt(text)


@lru_cache(maxsize=1024)
def _wkb(data: bytes) -> Any:
    import shapely

    return shapely.from_wkb(data)


def _wkt_to_wkb(text: str | None) -> bytes | None:
    """WKT or GeoJSON -> WKB (DuckDB's GEOMETRY)."""
    return None if text is None else _shape(text).wkb


def _spatial(predicate: str) -> Any:
    def test(left: bytes | None, right: bytes | None) -> bool | None:
        if left is None or right is None:
            return None
        return bool(getattr(_wkb(left), predicate)(_wkb(right)))

    return test


def _connection(readable_dir: str) -> duckdb.DuckDBPyConnection:
    """A search connection: the spatial UDFs, and no file but the index's local copies (nor `getenv` & co.)."""
    connection = duckdb.connect()
    text, geometry = duckdb.sqltype("VARCHAR"), duckdb.sqltype("BLOB")  # geometries are WKB
    # CQL2's SQL names the functions of DuckDB's spatial extension, which is not bundled (and would be downloaded)
    for name in ("st_geomfromtext", "st_geomfromgeojson"):
        connection.create_function(name, _wkt_to_wkb, [text], geometry, null_handling="special")
    for name, predicate in _SPATIAL.items():
        connection.create_function(name, _spatial(predicate), [geometry, geometry], duckdb.sqltype("BOOLEAN"),
                                   null_handling="special")
    connection.execute("SET allowed_directories = ?", [[os.path.join(readable_dir, "")]])
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def _search_error(error: Exception) -> str:
    message = str(error).splitlines()[0]
    if "not found in FROM clause" in message or "Referenced column" in message:
        return f"unknown queryable or sort field: {message.split(':', 1)[-1].strip()[:200]}"
    return f"the search cannot be run: {message[:200]}"


def now_ns() -> int:
    return time.time_ns()
