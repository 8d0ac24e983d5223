"""The openEO process implementations; importing this package registers them all in
`registry.DEFAULT_REGISTRY`. Grouped like the openEO process categories."""

from stratus_processing.processes import arrays, cubes, load, math, reducers, save  # noqa: F401
