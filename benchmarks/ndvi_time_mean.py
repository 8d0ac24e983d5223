"""Mean NDVI over time of a Sentinel-2-sized tile: the engine against plain rasterio + numpy.

Input (generated once, deterministically, into a temp dir keyed by `DATA_VERSION`, never committed):
4 dates × B04 and B08 of 5490 × 5490 px (a Sentinel-2 tile at 20 m, EPSG:32633) as COGs (uint16,
scale 0.0001, no-data 0, 512 px tiles, DEFLATE), with no-data swaths on some dates and a corner
without data on any date, plus a static STAC catalog on the local filesystem in the layout of the
data bucket (`stratus.catalog_layout`).

Measured, each run in its own subprocess (peak RSS is the kernel's high-water mark of the process's
own memory, `VmHWM`: what `/usr/bin/time -v` reports, minus what `ru_maxrss` inherits from the parent
through vfork+exec; time is wall time of the computation, after imports):
- baseline: rasterio + numpy as one would write it directly: read each band whole, NDVI per date
  (float64), `nanmean` over time, write a COG (same creation options as the engine's);
- engine: the openEO graph load_collection(B04, B08) → ndvi → reduce_dimension(t, mean) →
  save_result(GTiff), through `runner.evaluate` (tiled execution) with a local result store.

Prints both, the ratios engine/baseline, and checks the outputs agree (max |diff| < 1e-6, same
NaN mask). Run: `python -m benchmarks.ndvi_time_mean` (or `make bench`).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.static_catalog import wgs84_bbox, write_catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_VERSION = "ndvi-time-mean-v1"  # change when the generated input changes
SIZE = 5490  # px: a Sentinel-2 tile at 20 m
PIXEL = 20  # metres
EPSG = 32633
WEST, NORTH = 600000, 5400000
DATES = ["2022-06-03T09:50:59Z", "2022-06-13T09:50:59Z", "2022-06-23T09:50:59Z", "2022-07-03T09:50:59Z"]
COLLECTION = "bench-s2"
SCALE = 0.0001
RUNS = 3  # per variant, alternating; the median time and the largest peak RSS are reported
TIME_TARGET, RSS_TARGET = 1.3, 0.5  # engine / baseline


def data_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"stratus-bench-{DATA_VERSION}"


# --- input ----------------------------------------------------------------------------------------

def ensure_data() -> Path:
    root = data_dir()
    if (root / "complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "cogs").mkdir(parents=True)
    tasks = [(index, band) for index in range(len(DATES)) for band in ("B04", "B08")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda task: _write_band(root, *task), tasks))
    _write_catalog(root)
    (root / "complete").write_text(DATA_VERSION)
    return root


def _band_values(index: int, band: str) -> np.ndarray:
    """Smooth fields (parcels of vegetation greening over the dates) plus noise, uint16 DN."""
    rng = np.random.default_rng(1000 * index + (4 if band == "B04" else 8))
    axis = np.linspace(0, 1, SIZE, dtype=np.float32)
    u, v = axis[np.newaxis, :], axis[:, np.newaxis]
    field = np.cos(2 * np.pi * (7 * u + 3 * v)) * np.sin(2 * np.pi * (5 * v - 2 * u))  # -1..1, shared
    green = 0.3 + 0.15 * index + 0.25 * field  # vegetation share, growing with the dates
    dn = (2600 - 1800 * green) if band == "B04" else (1800 + 2600 * green)
    dn = dn + rng.normal(0, 60, size=(SIZE, SIZE)).astype(np.float32)
    values = np.clip(dn, 1, 10000).astype(np.uint16)
    if index == 1:
        values[:, : SIZE // 5] = 0  # a swath edge: no data in the western fifth
    if index == 2:
        values[SIZE // 2:, SIZE // 2:] = 0  # no data in the south-east quarter
    values[:200, :200] = 0  # no date has data here: NaN in the mean
    return values


def _write_band(root: Path, index: int, band: str) -> None:
    import rasterio  # noqa: PLC0415
    from affine import Affine  # noqa: PLC0415
    from rasterio.crs import CRS  # noqa: PLC0415

    profile = {"driver": "COG", "width": SIZE, "height": SIZE, "count": 1, "dtype": "uint16",
               "crs": CRS.from_epsg(EPSG), "transform": Affine(PIXEL, 0, WEST, 0, -PIXEL, NORTH), "nodata": 0,
               "compress": "DEFLATE", "predictor": 2, "blocksize": 512, "overviews": "NONE"}
    with rasterio.Env(), rasterio.open(root / "cogs" / f"{index}_{band}.tif", "w", **profile) as dst:
        dst.write(_band_values(index, band), 1)


def _write_catalog(root: Path) -> None:
    bbox = wgs84_bbox(EPSG, (WEST, NORTH - SIZE * PIXEL, WEST + SIZE * PIXEL, NORTH))
    bands = {"B04": "red", "B08": "nir"}
    items = [{
        "type": "Feature", "stac_version": "1.0.0", "id": f"bench_{index}", "collection": COLLECTION,
        "bbox": bbox, "geometry": None,
        "properties": {"datetime": moment, "proj:epsg": EPSG},
        "assets": {band: {
            "href": str(root / "cogs" / f"{index}_{band}.tif"),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
            "eo:bands": [{"name": band, "common_name": common}],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": SCALE, "offset": 0}],
            "proj:shape": [SIZE, SIZE], "proj:transform": [PIXEL, 0, WEST, 0, -PIXEL, NORTH],
        } for band, common in bands.items()},
        "links": [],
    } for index, moment in enumerate(DATES)]
    write_catalog(root, COLLECTION, items, bbox=bbox, interval=(DATES[0], DATES[-1]),
                  eo_bands=[{"name": b, "common_name": c} for b, c in bands.items()])


# --- the two variants (run in subprocesses) -----------------------------------------------------

def run_baseline(root: Path, out: Path) -> Path:
    import rasterio  # noqa: PLC0415

    ndvis = []
    for index in range(len(DATES)):
        bands = {}
        for band in ("B04", "B08"):
            with rasterio.open(root / "cogs" / f"{index}_{band}.tif") as src:
                dn = src.read(1)
                profile = src.profile
            values = dn.astype(np.float64) * SCALE
            values[dn == 0] = np.nan
            bands[band] = values
        with np.errstate(divide="ignore", invalid="ignore"):
            ndvis.append((bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]))
    with np.errstate(invalid="ignore"):
        import warnings  # noqa: PLC0415

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
            mean = np.nanmean(np.stack(ndvis), axis=0)
    target = out / "baseline.tif"
    cog = {"driver": "COG", "width": SIZE, "height": SIZE, "count": 1, "dtype": "float32", "crs": profile["crs"],
           "transform": profile["transform"], "nodata": np.nan, "compress": "DEFLATE", "predictor": "YES",
           "blocksize": 512, "overviews": "AUTO", "overview_resampling": "AVERAGE", "bigtiff": "IF_SAFER",
           "num_threads": "ALL_CPUS"}
    with rasterio.open(target, "w", **cog) as dst:
        dst.write(mean.astype(np.float32), 1)
    return target


def engine_process() -> dict:
    bounds = {"west": WEST, "south": NORTH - SIZE * PIXEL, "east": WEST + SIZE * PIXEL, "north": NORTH,
              "crs": EPSG}
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": COLLECTION, "spatial_extent": bounds, "temporal_extent": ["2022-06-01", "2022-08-01"],
            "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"},
                 "result": True},
    }}


def run_engine(root: Path, out: Path) -> Path:
    from stratus_processing.env import EvalEnv  # noqa: PLC0415
    from stratus_processing.io.cog import RasterReader  # noqa: PLC0415
    from stratus_processing.io.stac import DirectoryJsonStore, StacCatalog  # noqa: PLC0415
    from stratus_processing.results import DirectoryResultStore  # noqa: PLC0415
    from stratus_processing.runner import evaluate  # noqa: PLC0415

    store = DirectoryResultStore(out / "engine")
    env = EvalEnv(catalog=StacCatalog(DirectoryJsonStore(root)), rasters=RasterReader(), results=store)
    evaluate(engine_process(), env)
    [asset] = store.assets
    return store.path_of(asset.key)


def peak_rss_mib() -> float:
    """The high-water mark of this process's resident memory (all threads), in MiB."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(variant: str, root: Path, out: Path) -> None:
    """One measured run: prints {"seconds", "max_rss_mib", "output"} as JSON."""
    if variant == "engine":
        import stratus_processing.runner  # noqa: F401, PLC0415 - imports are not part of the measurement
    else:
        import rasterio  # noqa: F401, PLC0415
    started = time.perf_counter()
    output = (run_engine if variant == "engine" else run_baseline)(root, out)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "max_rss_mib": peak_rss_mib(), "output": str(output)}))


def _measure(variant: str, root: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "benchmarks.ndvi_time_mean", "--worker", variant, str(root),
                                str(out)], cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{completed.stdout}\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def compare(engine_path: str, baseline_path: str) -> tuple[float, bool]:
    import rasterio  # noqa: PLC0415

    with rasterio.open(engine_path) as a, rasterio.open(baseline_path) as b:
        if (a.crs, a.transform, a.shape) != (b.crs, b.transform, b.shape):
            raise AssertionError("the outputs are on different grids")
        engine, baseline = a.read(1), b.read(1)
    same_mask = bool(np.array_equal(np.isnan(engine), np.isnan(baseline)))
    valid = ~np.isnan(baseline)
    max_diff = float(np.max(np.abs(engine[valid] - baseline[valid]))) if valid.any() else 0.0
    return max_diff, same_mask


def main() -> None:
    started = time.perf_counter()
    # In a subprocess: generating leaves this process's memory high, and children would inherit that.
    subprocess.run([sys.executable, "-m", "benchmarks.ndvi_time_mean", "--generate"], cwd=REPO_ROOT, check=True)
    root = data_dir()
    generated = time.perf_counter() - started
    runs: dict[str, list[dict]] = {"baseline": [], "engine": []}
    with tempfile.TemporaryDirectory(prefix="stratus-bench-out-") as scratch:
        for attempt in range(RUNS):
            for variant in ("baseline", "engine"):
                runs[variant].append(_measure(variant, root, Path(scratch) / f"{variant}-{attempt}"))
        max_diff, same_mask = compare(runs["engine"][-1]["output"], runs["baseline"][-1]["output"])
    summary = {variant: {"seconds": statistics.median(r["seconds"] for r in results),
                         "max_rss_mib": max(r["max_rss_mib"] for r in results),
                         "process_seconds": statistics.median(r["process_seconds"] for r in results)}
               for variant, results in runs.items()}
    base, engine = summary["baseline"], summary["engine"]
    time_ratio, rss_ratio = engine["seconds"] / base["seconds"], engine["max_rss_mib"] / base["max_rss_mib"]
    print(f"ndvi_time_mean: {len(DATES)} dates × B04+B08 of {SIZE} × {SIZE} px, {os.cpu_count()} CPUs "
          f"(input {'generated' if generated > 1 else 'cached'} in {root})")
    for name, figures in (("baseline (rasterio+numpy)", base), ("engine (openEO graph)", engine)):
        print(f"  {name:26s} {figures['seconds']:6.2f} s compute ({figures['process_seconds']:5.2f} s with "
              f"interpreter start), peak RSS {figures['max_rss_mib']:7.0f} MiB")
    print(f"  engine/baseline: time {time_ratio:.2f} (target ≤ {TIME_TARGET}), peak RSS {rss_ratio:.2f} "
          f"(target ≤ {RSS_TARGET})")
    print(f"  outputs agree: max |diff| {max_diff:.2e} (< 1e-6: {max_diff < 1e-6}), same NaN mask: {same_mask}")
    if not (max_diff < 1e-6 and same_mask):
        raise SystemExit("ndvi_time_mean: the engine's output differs from the baseline's")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    elif sys.argv[1:] == ["--generate"]:
        ensure_data()
    else:
        main()
