"""The token signing key from Secrets Manager, fetched on first use and again after a while.

Rotation keeps users logged in: a new key (`put-secret-value`, docs/operations.md) becomes `AWSCURRENT` and signs
new tokens, the one before stays `AWSPREVIOUS` and still verifies the tokens it signed until they expire. A
container re-reads the secret every `refresh_after_s` and, at most every `min_refresh_s`, when a token matches
neither key it knows (a token signed by a newer key than this container has seen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

REFRESH_AFTER_S = 300.0
MIN_REFRESH_S = 30.0  # bounds the secret reads that tokens matching no key can cause


class SecretValue:
    def __init__(self, secrets_client: Any, secret_id: str, refresh_after_s: float = REFRESH_AFTER_S,
                 min_refresh_s: float = MIN_REFRESH_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = secrets_client
        self._secret_id = secret_id
        self._refresh_after_s = refresh_after_s
        self._min_refresh_s = min_refresh_s
        self._clock = clock
        self._keys: tuple[str, str | None] | None = None  # (current, previous)
        self._read_at = 0.0

    def __call__(self) -> str:
        """The current key (signs new tokens)."""
        return self._read(refresh=False)[0]

    def verification_keys(self, refresh: bool = False) -> list[str]:
        """The keys a token may be signed with, current first; `refresh`: re-read the secret unless it was read
        within `min_refresh_s`."""
        current, previous = self._read(refresh)
        return [current] if previous is None or previous == current else [current, previous]

    def _read(self, refresh: bool) -> tuple[str, str | None]:
        age = self._clock() - self._read_at
        if self._keys is None or age >= self._refresh_after_s or (refresh and age >= self._min_refresh_s):
            current = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
            self._keys = (current, self._previous())
            self._read_at = self._clock()
        return self._keys

    def _previous(self) -> str | None:
        try:
            return self._client.get_secret_value(SecretId=self._secret_id, VersionStage="AWSPREVIOUS")["SecretString"]
        except self._client.exceptions.ResourceNotFoundException:
            return None  # never rotated
