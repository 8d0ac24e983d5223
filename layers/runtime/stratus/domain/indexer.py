"""The catalogue indexer: one batch of ingest-queue records in, one index file per collection out.

Records are ingest messages (`stratus.domain.stac_items.IngestMessage`: Transactions and harvests) or S3 event
notifications for item JSON put under the ingest prefix. Each item is validated on its own: an invalid one is
parked in the DLQ with its reason and the record counts as done, so it never holds back the good ones. A
collection whose file cannot be written fails only its own records (partial batch response), which SQS
redelivers; a redelivered change carries its first acceptance time, so writing it again changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import unquote, unquote_plus

from stratus import catalog_layout
from stratus.domain.stac_items import DELETE, UPSERT, IngestMessage, InvalidItem, check_id, validate_item


class IndexWriter(Protocol):
    def write(self, changes: Sequence[tuple[IngestMessage, dict[str, Any] | None]]) -> list[str]: ...

    def compact(self, collection: str, min_files: int) -> str | None: ...


class IngestObjects(Protocol):
    def read(self, key: str) -> bytes: ...


class Rejects(Protocol):
    def park(self, body: str, reason: str) -> None: ...


@dataclass(frozen=True)
class Record:
    message_id: str
    body: str


@dataclass
class BatchOutcome:
    failed: list[str] = field(default_factory=list)  # message ids to redeliver
    indexed: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (message id, reason)
    files: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


class Indexer:
    def __init__(self, index: IndexWriter, objects: IngestObjects, rejects: Rejects, *,
                 compact_after_files: int) -> None:
        self._index = index
        self._objects = objects
        self._rejects = rejects
        self._compact_after_files = compact_after_files

    def handle(self, records: Sequence[Record]) -> BatchOutcome:
        outcome = BatchOutcome()
        by_collection: dict[str, list[tuple[str, IngestMessage, dict[str, Any] | None]]] = {}
        for record in records:
            try:
                messages = self._messages(record)
            except InvalidItem as invalid:
                self._reject(outcome, record.message_id, record.body, str(invalid))
                continue
            except Exception:  # noqa: BLE001 - an ingest object we could not read now: try the record again
                outcome.failed.append(record.message_id)
                continue
            for message in messages:
                try:
                    item = self._checked(message)
                except InvalidItem as invalid:
                    self._reject(outcome, record.message_id, message.to_json(), str(invalid))
                    continue
                by_collection.setdefault(message.collection, []).append((record.message_id, message, item))
        for collection, changes in by_collection.items():
            try:
                outcome.files += self._index.write([(message, item) for _, message, item in changes])
                outcome.indexed += len(changes)
            except Exception:  # noqa: BLE001 - S3 or disk trouble: SQS redelivers this collection's records
                outcome.failed += sorted({message_id for message_id, _, _ in changes})
                continue
            try:
                self._index.compact(collection, self._compact_after_files)
            except Exception:  # noqa: BLE001 - compaction is an optimisation: the next batch tries again
                pass
        outcome.failed = sorted(set(outcome.failed))
        return outcome

    def _reject(self, outcome: BatchOutcome, message_id: str, body: str, reason: str) -> None:
        self._rejects.park(body, reason)
        outcome.rejected.append((message_id, reason))

    def _checked(self, message: IngestMessage) -> dict[str, Any] | None:
        check_id(message.collection, "the collection id")
        check_id(message.item_id, "the item id")
        if message.action == DELETE:
            return None
        item = validate_item(message.item, message.collection)
        if item["id"] != message.item_id:
            raise InvalidItem("the message's item id is not the item's")
        return item

    def _messages(self, record: Record) -> list[IngestMessage]:
        try:
            body = json.loads(record.body)
        except ValueError:
            raise InvalidItem("the record is not JSON") from None
        if isinstance(body, dict) and "Records" in body:
            return [m for event in body["Records"] for m in self._from_s3_event(event)]
        if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
            return []  # S3 checks the notification target with this when the notification is configured
        return [IngestMessage.from_dict(body)]

    def _from_s3_event(self, event: dict[str, Any]) -> list[IngestMessage]:
        """`ingest/<collection>/<name>.json`: an Item, or a FeatureCollection of Items."""
        if not str(event.get("eventName", "")).startswith("ObjectCreated"):
            return []
        key = unquote_plus(event["s3"]["object"]["key"])
        prefix = catalog_layout.ingest_prefix()
        collection, _, name = key[len(prefix):].partition("/") if key.startswith(prefix) else ("", "", "")
        if not collection or not name:
            raise InvalidItem(f"{key}: ingest objects go under {prefix}<collection id>/")
        accepted_ns = _event_time_ns(event.get("eventTime"))
        try:
            document = json.loads(self._objects.read(key))
        except ValueError:
            raise InvalidItem(f"{key} is not JSON") from None
        items = document.get("features") if isinstance(document, dict) and document.get("type") == \
            "FeatureCollection" else [document]
        if not isinstance(items, list):
            raise InvalidItem(f"{key}: features must be a list")
        return [IngestMessage(UPSERT, unquote(collection), str(item.get("id", "")) if isinstance(item, dict) else "",
                              accepted_ns, item) for item in items]


def _event_time_ns(text: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() * 1_000_000_000)
    except ValueError:
        raise InvalidItem(f"the S3 event has no valid eventTime: {text!r}") from None
