"""How Stratus handles Sentinel-2 L2A, in one place for the engine (`stratus_processing.io.sentinel2`,
which implements it) and the API (`/collections` shows `SENTINEL2_DESCRIPTION`). Plain Python: the API
Lambda imports it."""

from __future__ import annotations

# Appended to the `description` of Sentinel-2 L2A collections in `/collections` (CommonMark).
SENTINEL2_DESCRIPTION = (
    "**Sentinel-2 L2A in Stratus.** Of overlapping items of one tile and datatake produced with several "
    "processing baselines, only those of the newest baseline are loaded. `load_collection` returns surface "
    "reflectance: each item's own `raster:bands` scale and offset are applied, so from processing baseline "
    "04.00 on reflectance = DN × 0.0001 − 0.1 and before it DN × 0.0001 (items without `raster:bands` get "
    "both from `s2:processing_baseline`). `SCL` is a band with its class values, unscaled. Digital number 0 "
    "is no-data. Cloud-optimised GeoTIFF assets are read, never their JPEG 2000 twins. `load_stac` keeps "
    "the stored digital numbers, as openEO specifies.")

REFLECTANCE_SCALE = 0.0001
BOA_OFFSET = -0.1  # BOA_ADD_OFFSET (-1000 DN) × the scale
OFFSET_BASELINE = (4, 0)  # the first processing baseline whose digital numbers carry the offset
