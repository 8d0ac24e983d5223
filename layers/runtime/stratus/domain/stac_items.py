"""STAC Items entering the catalogue index: the ingest messages of the ingest queue and the checks every item
passes before it is indexed (the STAC 1.1 Item schema plus the fields the index needs).

The schemas in `stratus/stac_schemas/` are the STAC 1.1.0 core and GeoJSON schemas as pystac bundles them
(Apache-2.0), so validation never fetches anything; jsonschema-rs checks an item in microseconds.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

UPSERT, DELETE = "upsert", "delete"
ACTIONS = (UPSERT, DELETE)
MAX_ID_CHARS = 256
# collection and item ids become S3 key parts and URL path segments: no slashes, no control characters
_ID = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,256}$")
_SCHEMA_FILES = {
    "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/": (
        "item.json", "basics.json", "bands.json", "common.json", "data-values.json", "datetime.json",
        "instrument.json", "licensing.json", "provider.json"),
    "https://geojson.org/schema/": ("Feature.json", "Geometry.json"),
}


class InvalidItem(ValueError):
    """The reason an item is not indexed (it goes to the ingest DLQ with it)."""


@dataclass(frozen=True)
class IngestMessage:
    """One change to the index: upsert an item or delete one, accepted at `accepted_ns` (nanoseconds since the
    epoch). The acceptance time orders the versions of an item: a redelivered or re-sent message keeps it, so
    processing a message twice changes nothing, and an older version never replaces a newer one."""

    action: str
    collection: str
    item_id: str
    accepted_ns: int
    item: dict[str, Any] | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {"action": self.action, "collection": self.collection, "item_id": self.item_id,
                                "accepted_ns": self.accepted_ns}
        if self.item is not None:
            body["item"] = self.item
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> IngestMessage:
        try:
            return cls.from_dict(json.loads(text))
        except ValueError:
            raise InvalidItem("not an ingest message: not JSON") from None

    @classmethod
    def from_dict(cls, body: Any) -> IngestMessage:
        try:
            action, collection, accepted_ns = body["action"], body["collection"], int(body["accepted_ns"])
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidItem(f"not an ingest message: {error}") from None
        if action not in ACTIONS:
            raise InvalidItem(f"unknown action {action!r}")
        item = body.get("item")
        item_id = body.get("item_id") or (item.get("id") if isinstance(item, dict) else None)
        if not isinstance(item_id, str):
            raise InvalidItem("the message names no item id")
        return cls(action, str(collection), item_id, accepted_ns, item if action == UPSERT else None)


def upsert(collection: str, item: dict[str, Any], accepted_ns: int | None = None) -> IngestMessage:
    item_id = item.get("id") if isinstance(item, dict) else None
    return IngestMessage(UPSERT, collection, item_id if isinstance(item_id, str) else "", accepted_ns or time.time_ns(),
                         item)


def delete(collection: str, item_id: str, accepted_ns: int | None = None) -> IngestMessage:
    return IngestMessage(DELETE, collection, item_id, accepted_ns or time.time_ns())


def check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidItem(f"{what} must be 1-{MAX_ID_CHARS} characters without '/', '\\' or control characters")
    return value


def validate_item(item: Any, collection: str) -> dict[str, Any]:
    """The item as it is indexed (its `collection` set), or `InvalidItem` with the reason."""
    if not isinstance(item, dict):
        raise InvalidItem("an item must be a JSON object")
    check_id(item.get("id"), "the item id")
    if item.get("collection", collection) != collection:
        raise InvalidItem(f"the item belongs to collection {item.get('collection')!r}, not {collection!r}")
    properties = item.get("properties")
    if not isinstance(properties, dict):
        raise InvalidItem("properties must be an object")
    if properties.get("datetime") is None and (properties.get("start_datetime") is None
                                               or properties.get("end_datetime") is None):
        raise InvalidItem("an item needs properties.datetime, or start_datetime and end_datetime")
    errors = [f"{'/'.join(str(p) for p in error.instance_path) or '(item)'}: {error.message}"
              for error in _item_validator().iter_errors(_as_served(item, collection))]
    if errors:
        raise InvalidItem("; ".join(sorted(set(errors))[:5]))
    # what the index needs beyond the schema: a footprint and a time to search by
    if item.get("geometry") is None or not item.get("bbox"):
        raise InvalidItem("the item needs a geometry and a bbox to be searchable")
    bbox = item["bbox"]
    if len(bbox) == 6:
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    if not (-180 <= bbox[0] <= 180 and -180 <= bbox[2] <= 180 and -90 <= bbox[1] <= bbox[3] <= 90):
        raise InvalidItem("bbox must be WGS 84 longitudes and latitudes (south <= north)")
    item = {**item, "collection": collection}
    properties = item["properties"]
    for name in ("datetime", "start_datetime", "end_datetime"):
        if properties.get(name) is not None:
            parse_datetime(properties[name], name)
    return item


def _as_served(item: dict[str, Any], collection: str) -> dict[str, Any]:
    """The item as the API serves it, for the 1.1 schema: in its collection, with a collection link (the API
    sets both), and STAC 1.0 items checked as 1.1 ones (1.1 only adds to 1.0's Item)."""
    served = {**item, "collection": collection}
    if isinstance(item.get("links"), list):
        served["links"] = [link for link in item["links"] if not (isinstance(link, dict) and
                                                                  link.get("rel") == "collection")]
        served["links"].append({"rel": "collection", "href": f"../{collection}"})
    if isinstance(item.get("stac_version"), str) and item["stac_version"].startswith("1.0."):
        served["stac_version"] = "1.1.0"
    return served


def parse_datetime(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidItem(f"{name} is not an RFC 3339 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidItem(f"{name} needs a time zone: {value!r}")
    return parsed


@lru_cache(maxsize=1)
def _item_validator() -> Any:
    import jsonschema_rs  # the indexer's dependency, not the API's

    folder = resources.files("stratus") / "stac_schemas"
    documents = [(base + name, json.loads((folder / name).read_text()))
                 for base, names in _SCHEMA_FILES.items() for name in names]
    registry = jsonschema_rs.Registry(documents)
    return jsonschema_rs.Draft7Validator(dict(documents)[f"{next(iter(_SCHEMA_FILES))}item.json"],
                                         registry=registry)
