"""The openEO process implementations; importing this package registers them all in
`registry.DEFAULT_REGISTRY`. Grouped like the openEO process categories."""

from stratus_processing.processes import (  # noqa: F401
    array_elements,
    arrays,
    combine,
    comparison,
    cubes,
    dates,
    dimensions,
    filters,
    load,
    logic,
    math,
    ml,
    neighbourhoods,
    reducers,
    save,
    scl,
    spatial,
    statistics,
    temporal,
    text,
    udf,
    vector,
)
