"""Harvests' reads of remote STAC APIs, through the outbound guard (resolved once, public addresses only)."""

from __future__ import annotations

import json
from typing import Any

from stratus.outbound import OutboundFailed, OutboundGuard, OutboundRefused, Timeouts

MAX_PAGE_BYTES = 32 * 1024 * 1024


class RemoteSearchFailed(Exception):
    pass


class GuardedRemoteSearch:
    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard

    def page(self, url: str, body: dict[str, Any] | None, budget_s: float) -> dict[str, Any]:
        """POST `body` to `url`, or GET `url` when `body` is None; redirects are not followed."""
        try:
            response = self._guard.request(
                "GET" if body is None else "POST", url, body=None if body is None else json.dumps(body).encode(),
                max_body_bytes=MAX_PAGE_BYTES,
                headers={"Content-Type": "application/json", "Accept": "application/geo+json"},
                timeouts=Timeouts(connect_s=min(5.0, budget_s), read_s=min(15.0, budget_s), budget_s=budget_s))
        except OutboundRefused as refused:
            raise RemoteSearchFailed(f"{url} is not allowed: {refused}") from None
        except OutboundFailed as failed:
            raise RemoteSearchFailed(f"{url} did not answer: {failed}") from None
        if response.status != 200 or response.truncated:
            raise RemoteSearchFailed(f"{url} answered {response.status}")
        try:
            page = json.loads(response.body)
        except ValueError:
            raise RemoteSearchFailed(f"{url} did not answer with JSON") from None
        if not isinstance(page, dict):
            raise RemoteSearchFailed(f"{url} did not answer with an ItemCollection")
        return page
