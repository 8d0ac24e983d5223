"""What every PynamoDB repository needs alike: recognising a failed write condition, and the opaque
page tokens of list endpoints (a DynamoDB start key, base64-encoded, checked when it comes back)."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable


def is_condition_failure(error: Exception) -> bool:
    """A conditional write refused because its condition did not hold (not an outage)."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def encode_page_token(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_page_token(token: str, names: set[str], invalid: Callable[[], Exception],
                      owner: tuple[str, str] | None = None) -> dict[str, Any]:
    """The start key in a page token, which must have exactly the key attributes `names` (and, for a
    per-user listing, `owner` = (attribute, user id)); raises `invalid()` otherwise."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
        valid = isinstance(key, dict) and set(key) == names and all(isinstance(v, dict) for v in key.values())
        if valid and owner is not None:
            valid = key[owner[0]] == {"S": owner[1]}
    except (ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise invalid()
    return key
