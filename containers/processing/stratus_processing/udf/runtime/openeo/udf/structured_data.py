"""`StructuredData`: a dict, list or table a UDF passes on (openeo.udf API)."""

from __future__ import annotations


class StructuredData:
    def __init__(self, data, description: str | None = None, type: str | None = None):
        self.data = data
        self.type = type or data.__class__.__name__
        self.description = description or "Data from a UDF"

    def __repr__(self) -> str:
        return f"<StructuredData with {self.type}>"
