"""Test doubles and builders for the processing engine tests (no AWS, no network)."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from botocore.exceptions import ClientError
from rasterio.crs import CRS
from rasterio.windows import Window
from stratus_processing.cube import make_cube
from stratus_processing.grid import Grid
from stratus_processing.io.cog import RasterReader

# The extent the end-to-end NDVI scenario uses: on the demo's 10 m grid, 96 × 84 px.
BOLZANO_EXTENT = {"west": 679720, "east": 680680, "south": 5151080, "north": 5151920, "crs": 32632}
JUNE_2022 = ["2022-06-01", "2022-07-01"]


class RecordingReader(RasterReader):
    """A real reader that also records the grids it reads onto and the assets it fetches ahead."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.read_grids: list[Grid] = []
        self.prefetched: list[str] = []

    def read(self, href: str, grid: Grid, **kwargs: Any) -> np.ndarray:
        self.read_grids.append(grid)
        return super().read(href, grid, **kwargs)

    def prefetch(self, href: str, grid: Grid, **kwargs: Any) -> None:
        self.prefetched.append(href)
        super().prefetch(href, grid, **kwargs)


class DirectoryS3:
    """The slice of the boto3 S3 client the demo generator and the engine use, on a directory
    (`root/<bucket>/<key>`), so `s3://bucket/key` hrefs map to local paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.written: list[str] = []  # keys in the order they were written

    def path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def resolve_href(self, href: str) -> str:
        bucket, _, key = href.removeprefix("s3://").partition("/")
        return str(self.path(bucket, key))

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        target = self.path(Bucket, Key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Body)
        self.written.append(Key)
        return {}

    def upload_file(self, filename: str, bucket: str, key: str, ExtraArgs: dict[str, Any] | None = None) -> None:
        target = self.path(bucket, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(filename, target)
        self.written.append(key)

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        target = self.path(Bucket, Key)
        if not target.is_file():
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}},
                              "GetObject")
        return {"Body": io.BytesIO(target.read_bytes())}

    def list_objects_v2(self, *, Bucket: str, Prefix: str = "", **_: Any) -> dict[str, Any]:
        base = self.root / Bucket
        files = sorted((str(p.relative_to(base)), p.stat().st_size) for p in base.rglob("*") if p.is_file())
        return {"Contents": [{"Key": k, "Size": size} for k, size in files if k.startswith(Prefix)],
                "IsTruncated": False}

    def get_paginator(self, operation: str) -> _OnePage:
        assert operation == "list_objects_v2", operation
        return _OnePage(self.list_objects_v2)


class _OnePage:
    """boto3's paginator over a listing that always fits one page."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [self._call(**kwargs)]


class RecordingSQS:
    """Collects sent messages per queue URL."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = {}

    def send_message(self, *, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        self.messages.setdefault(QueueUrl, []).append(json.loads(MessageBody))
        return {"MessageId": str(sum(len(m) for m in self.messages.values()))}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def small_grid(width: int = 5, height: int = 4, *, epsg: int = 32632, west: float = 600000.0,
               north: float = 5000000.0, resolution: float = 10.0) -> Grid:
    return Grid(CRS.from_epsg(epsg), Affine(resolution, 0, west, 0, -resolution, north), width, height)


def red_nir_cube(red: np.ndarray, nir: np.ndarray, *, times: Sequence[datetime] | None = None,
                 grid: Grid | None = None):
    """A (t, bands, y, x) cube with bands B04 (red) and B08 (nir); arrays shaped (t, y, x)."""
    red, nir = np.asarray(red, dtype=float), np.asarray(nir, dtype=float)
    t, height, width = red.shape
    grid = grid or small_grid(width, height)
    times = times or [utc(2022, 6, 2 + 5 * i, 10) for i in range(t)]
    values = np.stack([red, nir], axis=1)
    return make_cube(values, grid=grid, times=times, bands=["B04", "B08"], common_names=["red", "nir"])


def reference_mean_ndvi(read_cog: Any, items: Sequence[dict[str, Any]], extent: dict[str, float], *,
                        dtype: Any = np.float64) -> np.ndarray:
    """mean over dates of (B08 - B04) / (B08 + B04), straight from the source COGs with numpy:
    window from the item's own transform, scale from STAC, no-data 0 -> NaN, nanmean.
    `read_cog(href)` returns the COG's bytes. `dtype`: the precision of the scaled values and the
    NDVI (float32: what the engine computes for a graph storing a float32 raster); the mean sums
    in float64 either way."""
    ndvis = []
    for item in items:
        bands = {}
        for band in ("B04", "B08"):
            asset = item["assets"][band]
            transform = Affine(*asset["proj:transform"])
            col = round((extent["west"] - transform.c) / transform.a)
            row = round((transform.f - extent["north"]) / -transform.e)
            width = round((extent["east"] - extent["west"]) / transform.a)
            height = round((extent["north"] - extent["south"]) / -transform.e)
            with rasterio.MemoryFile(read_cog(asset["href"])) as memfile, memfile.open() as src:
                dn = src.read(1, window=Window(col, row, width, height)).astype(dtype)
            raster_band = asset["raster:bands"][0]
            values = dn * dtype(raster_band["scale"]) + dtype(raster_band.get("offset", 0))
            values[dn == raster_band["nodata"]] = np.nan
            bands[band] = values
        ndvis.append((bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels without any valid date: NaN
        return np.nanmean(np.stack(ndvis).astype(np.float64), axis=0)


def mean_ndvi_graph(**save_arguments: Any) -> dict[str, Any]:
    """The end-to-end scenario's graph: the demo's June mean NDVI over Bolzano, saved with `save_arguments`."""
    return {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "sentinel-2-l2a-demo", "spatial_extent": BOLZANO_EXTENT, "temporal_extent": JUNE_2022,
            "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, **save_arguments},
                 "result": True},
    }


def june_items(read_json: Any, keys: Sequence[str], *, area_epsg: int = 32632) -> list[dict[str, Any]]:
    """The demo items of one area in June 2022, by datetime."""
    items = [read_json(k) for k in keys if k.endswith(".json")]
    items = [i for i in items if i["properties"]["proj:epsg"] == area_epsg
             and i["properties"]["datetime"].startswith("2022-06")]
    return sorted(items, key=lambda i: i["properties"]["datetime"])


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
