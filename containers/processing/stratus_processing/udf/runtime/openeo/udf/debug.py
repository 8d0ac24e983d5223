"""`inspect`: a UDF's way to write to the job's logs (openeo.udf API)."""

from __future__ import annotations

# Entries the sandbox hands to the engine after the UDF ran (it writes them to the job's log).
ENTRIES: list[dict] = []
_MAX_ENTRIES = 100
_MAX_CHARS = 2000


def inspect(data=None, message: str = "", code: str = "User", level: str = "info") -> None:
    if len(ENTRIES) >= _MAX_ENTRIES:
        return
    text = str(message) if data is None else f"{message} {data!r}".strip()
    ENTRIES.append({"message": text[:_MAX_CHARS], "code": str(code)[:100], "level": str(level)})
