"""The run manifest (`stratus.run_contract.ResultsManifest`) built from a run's outputs.

Written last, so its presence means every asset it lists exists. The API (`stratus.domain.results`)
turns it into a STAC 1.1 Collection with one Item per asset, replacing each asset's `key` by a
presigned `href`. Asset fields follow the STAC extensions file
(`file:size`, `file:checksum`), projection (`proj:code`, `proj:epsg`, `proj:*`), raster
(`raster:bands`, `raster:sampling`, `raster:spatial_resolution`) and eo (`eo:bands`); `datetime` for
an asset of one time step, else its `start_datetime`/`end_datetime`. A gridded asset also carries
its own WGS84 `bbox` and footprint `geometry`, which become its Item's: the API can't compute them,
it doesn't import the raster stack.
"""

from __future__ import annotations

from typing import Any

from stratus.run_contract import ResultsManifest

from stratus_processing.cube import isoformat_utc
from stratus_processing.grid import Grid
from stratus_processing.results import AssetRecord


def build_manifest(assets: list[AssetRecord]) -> ResultsManifest:
    gridded = [a for a in assets if a.grid is not None]
    bbox = _union([a.grid.bounds_wgs84() for a in gridded]) if gridded else None
    starts = [a.start_datetime for a in assets if a.start_datetime]
    ends = [a.end_datetime for a in assets if a.end_datetime]
    properties: dict[str, Any] = {
        "datetime": None,
        "start_datetime": isoformat_utc(min(starts)) if starts else None,
        "end_datetime": isoformat_utc(max(ends)) if ends else None,
    }
    epsgs = {a.grid.epsg for a in gridded}
    if len(epsgs) == 1:
        properties["proj:epsg"] = epsgs.pop()
    return ResultsManifest(
        assets={a.name: _asset(a) for a in assets},
        bbox=list(bbox) if bbox else None,
        geometry=_geometry(gridded, bbox) if bbox else None,
        properties=properties,
    )


def _asset(record: AssetRecord) -> dict[str, Any]:
    asset: dict[str, Any] = {
        "key": record.key,
        "type": record.media_type,
        "roles": list(record.roles),
        "title": record.title,
        "file:size": record.file_size,
    }
    if record.file_checksum:
        asset["file:checksum"] = record.file_checksum
    if record.datetime is not None:
        asset["datetime"] = isoformat_utc(record.datetime)
    elif record.start_datetime is not None and record.end_datetime is not None:
        # An asset spanning several acquisitions (a temporal reduction, a netCDF with all dates).
        asset["start_datetime"] = isoformat_utc(record.start_datetime)
        asset["end_datetime"] = isoformat_utc(record.end_datetime)
    if record.grid is not None:
        grid = record.grid
        asset["proj:epsg"] = grid.epsg
        if grid.epsg is None:
            asset["proj:wkt2"] = grid.crs.to_wkt()
        else:
            asset["proj:code"] = f"EPSG:{grid.epsg}"
        asset["proj:shape"] = [grid.height, grid.width]
        asset["proj:transform"] = list(grid.transform)[:6]
        asset["proj:bbox"] = list(grid.bounds)
        asset["bbox"] = list(grid.bounds_wgs84())
        asset["geometry"] = grid.footprint_wgs84()
        # raster extension v2: pixels are areas (GeoTIFF AREA_OR_POINT=Area, CF cells); a resolution in metres
        asset["raster:sampling"] = "area"
        if grid.crs.is_projected and _in_metres(grid):
            asset["raster:spatial_resolution"] = max(grid.resolution)
    if record.raster_bands:
        asset["raster:bands"] = record.raster_bands
    if record.eo_bands:
        asset["eo:bands"] = record.eo_bands
    asset.update(record.extra)
    return asset


def _in_metres(grid: Grid) -> bool:
    units = (grid.crs.linear_units or "").lower()
    return units in ("metre", "meter", "m", "metres", "meters")


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _geometry(gridded: list[AssetRecord], bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    """The exact footprint when all assets share one grid (the usual case), else the bbox outline."""
    grids = {a.grid for a in gridded}
    return grids.pop().footprint_wgs84() if len(grids) == 1 else _bbox_polygon(bbox)


def _bbox_polygon(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    west, south, east, north = bbox
    return {"type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}
