"""How large and how deep a request may be, for both APIs: checked where bodies and ids enter, so
nothing downstream (the JSON parser's recursion, DynamoDB's 400 KB items and 2 KB keys, S3's 1 KB
keys) ever sees input it would fail on with a server error."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

# A body that becomes one DynamoDB item (a job, a user-defined process, a service) with its metadata
# must stay below the 400 KB item limit; the process is stored as one JSON string.
MAX_STORED_BODY_BYTES = 300_000
# An order's parameters are stored twice (as submitted and bound into the service's graph).
MAX_ORDER_BODY_BYTES = 150_000
# Bodies that are processed but not stored (`POST /result`, `POST /validation`): Lambda's 6 MB payload
# cap, base64 and the event's own fields leave about this much.
MAX_PROCESSED_BODY_BYTES = 4_000_000
# Real process graphs nest callbacks and GeoJSON a few dozen levels deep; thousands of levels are an attack
# on the parser (Python's json raises RecursionError near 1,000).
MAX_JSON_DEPTH = 100
# Ids in paths (jobs, orders, process graphs, services, customers): ours are far shorter, keys end at 2 KB.
MAX_ID_CHARS = 256


class BodyRefused(ValueError):
    """Why a request body cannot be used (the caller raises its API's own error with this reason)."""


def parse_json_body(body: str | bytes | None, max_bytes: int) -> Any:
    """The JSON value of a body within the size and depth limits; raises `BodyRefused` otherwise."""
    if body is None or body == "" or body == b"":
        raise BodyRefused("the request body is not valid JSON")
    size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
    if size > max_bytes:
        raise BodyRefused(f"the request body has {size:,} bytes, more than the {max_bytes:,} allowed here")
    try:
        value = json.loads(body)
    except RecursionError:
        raise BodyRefused(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, TypeError):  # includes JSONDecodeError and UnicodeDecodeError
        raise BodyRefused("the request body is not valid JSON") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise BodyRefused(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, `[]` and `{}` are 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if depth + 1 > MAX_JSON_DEPTH:  # deep enough to refuse: no need to walk further
            return depth + 1
        stack.extend((child, depth + 1) for child in children)
    return deepest


def plausible_id(value: str) -> bool:
    """Could be an id of ours: not empty, not too long, no control or format characters."""
    return 0 < len(value) <= MAX_ID_CHARS and not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
                                                      for c in value)
