"""The token signing key from Secrets Manager, fetched once per process and on demand."""

from __future__ import annotations

from typing import Any


class SecretValue:
    def __init__(self, secrets_client: Any, secret_id: str) -> None:
        self._client = secrets_client
        self._secret_id = secret_id
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        return self._value
