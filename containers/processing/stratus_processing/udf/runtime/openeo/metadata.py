"""`openeo.metadata.CollectionMetadata`, so that UDFs written for the client's docs import: they define
`apply_metadata(metadata: CollectionMetadata, context) -> CollectionMetadata` beside their UDF. Stratus
derives a result's metadata from the cube the UDF returns and never calls `apply_metadata`."""

from __future__ import annotations


class CollectionMetadata:
    def __init__(self, metadata: dict | None = None, dimensions: list | None = None):
        self._orig_metadata = metadata or {}
        self._dimensions = dimensions or []
