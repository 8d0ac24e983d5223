"""Input/output adapters of the engine: the STAC catalog, raster reads and result files."""
