"""The catalogue index (Parquet in an in-process S3, searched with DuckDB) and the indexer's batches."""

from __future__ import annotations

import json
from dataclasses import replace

import boto3
import duckdb
import pytest
from moto import mock_aws

from stratus.adapters.parquet_index import ParquetIndex
from stratus.domain import stac_items
from stratus.domain.indexer import Indexer, Record
from stratus.domain.stac_search import InvalidSearch, from_body, from_query_string

BUCKET = "catalogue-test"


def item(number: int, *, cloud: float = 10.0, day: int = 1, x: float = 0.0, y: float = 0.0, **properties):
    return {"type": "Feature", "stac_version": "1.1.0", "id": f"item-{number:03d}",
            "geometry": {"type": "Point", "coordinates": [x, y]}, "bbox": [x, y, x, y],
            "properties": {"datetime": f"2024-05-{day:02d}T10:00:00Z", "eo:cloud_cover": cloud,
                           "instruments": ["msi"], **properties},
            "links": [], "assets": {"data": {"href": f"s3://bucket/{number}.tif"}}}


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        yield client


@pytest.fixture
def index(s3, tmp_path):
    return ParquetIndex(s3, BUCKET, cache_dir=str(tmp_path))


def upserts(items, collection="c1", accepted_ns=1_000):
    return [(stac_items.upsert(collection, i, accepted_ns + n), stac_items.validate_item(i, collection))
            for n, i in enumerate(items)]


def ids(page):
    return [feature["id"] for feature in page.items]


def search(index, body, collections=("c1",)):
    return index.search(from_body(body).with_collections(tuple(collections)))


def test_search_filters_by_bbox_datetime_and_cql2_and_sorts(index):
    index.write(upserts([item(n, cloud=n * 10.0, day=n + 1, x=n, y=n) for n in range(6)]))
    assert ids(search(index, {"bbox": [1.5, 1.5, 4.5, 4.5]})) == ["item-004", "item-003", "item-002"]
    assert ids(search(index, {"datetime": "2024-05-02T00:00:00Z/2024-05-03T23:00:00Z"})) == ["item-002", "item-001"]
    page = search(index, {"filter": {"op": "<", "args": [{"property": "properties.eo:cloud_cover"}, 25]},
                          "sortby": [{"field": "properties.eo:cloud_cover", "direction": "asc"}]})
    assert ids(page) == ["item-000", "item-001", "item-002"]
    text = index.search(from_query_string({
        "filter": "S_INTERSECTS(geometry, POLYGON((0.5 0.5, 3.5 0.5, 3.5 3.5, 0.5 3.5, 0.5 0.5))) AND "
                  "\"eo:cloud_cover\" >= 20", "sortby": "-datetime"}).with_collections(("c1",)))
    assert ids(text) == ["item-003", "item-002"]
    assert ids(search(index, {"query": {"instruments": {"in": ["msi"]}, "eo:cloud_cover": {"gt": 40}}})) == \
        ["item-005"]
    # a queryable no item has matches nothing instead of failing the search
    assert ids(search(index, {"filter": {"op": "=", "args": [{"property": "mission"}, "x"]}})) == []


def test_pages_by_token_until_every_item_was_seen(index):
    index.write(upserts([item(n, day=n % 28 + 1) for n in range(25)]))
    seen, offset = [], 0
    while offset is not None:
        page = index.search(replace(from_body({"limit": 10}), collections=("c1",), offset=offset))
        assert page.matched == 25
        seen += ids(page)
        offset = page.next_offset
    assert sorted(seen) == [f"item-{n:03d}" for n in range(25)]


def test_upserts_keep_the_newest_version_and_deletes_hide_items(index):
    index.write(upserts([item(1, cloud=50.0)], accepted_ns=2_000))
    index.write(upserts([item(1, cloud=10.0)], accepted_ns=1_000))  # older, arriving late: ignored
    assert index.get_item("c1", "item-001")["properties"]["eo:cloud_cover"] == 50.0
    index.write([(stac_items.delete("c1", "item-001", 3_000), None)])
    assert index.get_item("c1", "item-001") is None


def test_writing_a_batch_again_changes_nothing(index):
    batch = upserts([item(n) for n in range(5)])
    index.write(batch)
    before = search(index, {"limit": 100})
    index.write(batch)
    after = search(index, {"limit": 100})
    assert after.items == before.items and after.matched == before.matched == 5


def test_compaction_folds_files_and_keeps_tombstones(index):
    for n in range(4):
        index.write(upserts([item(n)], accepted_ns=1_000 + n))
    index.write([(stac_items.delete("c1", "item-000", 9_000), None)])
    assert index.compact("c1", min_files=3) is not None
    assert len(index.files("c1")) == 1
    assert sorted(ids(search(index, {}))) == ["item-001", "item-002", "item-003"]
    index.write(upserts([item(0)], accepted_ns=5_000))  # a late copy older than the delete stays deleted
    assert index.get_item("c1", "item-000") is None


def test_bad_searches_are_refused():
    for body in ({"datetime": "1985-04-12T23:20:50,52Z"}, {"datetime": "2020-01-01"}, {"bbox": [1, 2, 3]},
                 {"filter": "eo:cloud_cover <<< 3"}, {"limit": 0}, {"fields": None}, {"sortby": [{"x": 1}]},
                 {"token": "not-a-token"}):
        with pytest.raises(InvalidSearch):
            from_body(body)


class Rejects:
    def __init__(self):
        self.parked: list[tuple[str, str]] = []

    def park(self, body, reason):
        self.parked.append((body, reason))


class Objects:
    def __init__(self, documents):
        self.documents = documents

    def read(self, key):
        return json.dumps(self.documents[key]).encode()


def test_a_bad_item_is_parked_with_its_reason_and_the_rest_of_the_batch_is_indexed(index):
    rejects = Rejects()
    malformed = {**item(2), "properties": {}}  # no datetime
    records = [Record(f"m{n}", stac_items.upsert("c1", i, 100 + n).to_json())
               for n, i in enumerate([item(0), item(1), malformed])]
    outcome = Indexer(index, Objects({}), rejects, compact_after_files=16).handle(records + [Record("m9", "{")])
    assert outcome.failed == [] and outcome.indexed == 2
    assert sorted(ids(search(index, {}))) == ["item-000", "item-001"]
    reasons = dict((json.loads(body).get("item_id", body) if body != "{" else "{", reason)
                   for body, reason in rejects.parked)
    assert "datetime" in reasons["item-002"] or "properties" in reasons["item-002"]
    assert "not JSON" in reasons["{"]


def test_items_put_under_the_ingest_prefix_are_indexed_from_the_s3_event(index):
    objects = Objects({"ingest/c2/batch.json": {"type": "FeatureCollection", "features": [item(7), item(8)]}})
    event = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2024-06-01T00:00:00.000Z",
                          "s3": {"object": {"key": "ingest/c2/batch.json"}}}]}
    outcome = Indexer(index, objects, Rejects(), compact_after_files=16).handle([Record("s3", json.dumps(event))])
    assert outcome.indexed == 2
    assert sorted(ids(search(index, {}, collections=("c2",)))) == ["item-007", "item-008"]


def test_a_collection_that_cannot_be_written_fails_only_its_records(index):
    class HalfBroken:
        def write(self, changes):
            if changes[0][0].collection == "broken":
                raise OSError("S3 is down")
            return index.write(changes)

        def compact(self, collection, min_files):
            return None

    records = [Record("ok", stac_items.upsert("c1", item(1)).to_json()),
               Record("bad", stac_items.upsert("broken", item(2)).to_json())]
    outcome = Indexer(HalfBroken(), Objects({}), Rejects(), compact_after_files=16).handle(records)
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert ids(search(index, {})) == ["item-001"]


def test_load_collection_searches_an_indexed_own_collection_through_the_index(index, tmp_path):
    from datetime import datetime, timezone

    from stratus_processing.io.stac import DirectoryJsonStore, StacCatalog

    (tmp_path / "stac" / "collections" / "c1").mkdir(parents=True)
    (tmp_path / "stac" / "collections" / "c1" / "collection.json").write_text(json.dumps(
        {"type": "Collection", "id": "c1", "links": [], "item_assets": {}}))
    catalog = StacCatalog(DirectoryJsonStore(tmp_path), index=index)
    assert catalog.search("c1") == []  # not indexed yet: its item files are listed (there are none)
    index.write(upserts([item(n, day=n + 1, x=n, y=n) for n in range(5)]))
    found = catalog.search("c1", bbox=(0.5, 0.5, 3.5, 3.5), start=datetime(2024, 5, 1, tzinfo=timezone.utc),
                           end=datetime(2024, 5, 4, tzinfo=timezone.utc))
    assert [i.id for i in found] == ["item-001", "item-002"]  # [start, end): item-003 is at 05-04T10


def test_filters_may_not_call_functions_of_the_database():
    # CQL2 custom functions become SQL function calls: DuckDB's getenv would read the credentials
    for text in ("getenv('AWS_SECRET_ACCESS_KEY') = 'x'", "read_text('/etc/passwd') = 'x'"):
        with pytest.raises(InvalidSearch, match="unsupported"):
            from_query_string({"filter": text})
    with pytest.raises(InvalidSearch, match="unsupported"):
        from_body({"filter": {"op": "=", "args": [{"op": "getenv", "args": ["HOME"]}, "x"]}})


def test_the_search_connection_reads_nothing_but_the_index(index):
    index.write(upserts([item(1)]))
    index.search(from_body({}).with_collections(("c1",)))
    with pytest.raises(Exception, match="disabled|Permission"):
        index._connection().execute("SELECT * FROM read_text('/etc/passwd')")


def test_a_search_listing_files_a_compaction_then_deletes_finds_the_compacted_file(s3, tmp_path):
    """A compaction in another container deletes the files this search has just listed: the search lists
    again instead of failing (it did fail with a 500, once, under load in CI)."""
    writer = ParquetIndex(s3, BUCKET, cache_dir=str(tmp_path / "writer"))
    for n in range(3):
        writer.write(upserts([item(n, day=n + 1)], accepted_ns=1_000 + n))
    searcher = ParquetIndex(s3, BUCKET, cache_dir=str(tmp_path / "searcher"))
    listed_before_compaction = searcher.files("c1")
    listings = []

    def files_then_compaction(collection):
        listings.append(collection)
        if len(listings) == 1:
            writer.compact("c1", min_files=3)
            return listed_before_compaction
        return ParquetIndex.files(searcher, collection)

    searcher.files = files_then_compaction
    assert sorted(ids(search(searcher, {}))) == ["item-000", "item-001", "item-002"]
    assert len(listings) == 2 and len(ParquetIndex.files(searcher, "c1")) == 1


def test_a_search_after_a_duckdb_internal_error_runs_again_on_a_new_connection(index):
    # Given an indexed collection, and a search connection that DuckDB has invalidated: an internal error
    # (seen once on CI: "Attempted to access index 0 within vector of size 0") leaves it failing every query
    index.write(upserts([item(1), item(2)]))

    class Invalidated:
        def execute(self, *args, **kwargs):
            raise duckdb.InternalException("INTERNAL Error: Attempted to access index 0 within vector of size 0")

    index._searcher = Invalidated()
    # When a search comes
    page = search(index, {"ids": ["item-002", "item-001"]})
    # Then it is answered from a new connection, which the next searches use too
    assert sorted(ids(page)) == ["item-001", "item-002"]
    assert not isinstance(index._searcher, Invalidated)
