"""Random-forest prediction over a Sentinel-2 tile with 40 predictors: the engine against plain scikit-learn,
both reading the same GeoTIFFs from disk and writing the class map to a GeoTIFF.

Input (generated once into the cache directory, reused by later runs; never committed): 40 predictor bands
F00..F39 of size × size px (10 m, EPSG:32633) as tiled GeoTIFFs (float32, 512 px blocks, uncompressed, NaN
no-data: a corner without data in every band, a strip without data in F00), smooth class fields plus noise,
and a static STAC catalog of one item in the layout of the data bucket. Cache: `$STRATUS_BENCH_CACHE` or
`<tmp>/stratus-bench-cache`, one folder per size; disk: 40 × size² × 4 bytes (18 GiB at 10 980 px, 160 MiB
at 1 024 px) plus the two outputs and the engine's staging copy (under 2 GiB at 10 980 px).

Model: a classification forest (`TREES` trees, at most `MAX_DEPTH` levels, 8 classes, seed 42) trained once
on 20 000 overlapping samples and saved as the engine's model file (`stratus_processing.ml`, skops); both
variants load that file.

Measured, each variant in its own subprocess (peak RSS is the kernel's high-water mark `VmHWM`; time is the
wall time after imports: model load, reads, prediction, writing the map), GDAL's block cache bounded alike
(128 MiB, the engine's setting) so the memory compared is the code's, not a cache default:
- baseline: what one writes with rasterio + scikit-learn when the stack does not fit in memory: for each
  512 px block, read the 40 bands, `estimator.predict` (n_jobs = all cores, float32) on the pixels with
  every predictor valid, write the block into a tiled GeoTIFF (float32, NaN no-data, DEFLATE);
- engine: the openEO graph load_collection(F00..F39) → reduce_dimension(bands, predict_random_forest(data,
  load_ml_model(...))) → save_result(GTiff) through `runner.evaluate`, as a batch job runs it (tiled).

Prints the model, both variants, the ratios engine/baseline against the targets (time ≤ 1.2×, peak RSS ≤
1.0×), and fails when the two maps differ (same NaN mask, same classes). Run `python -m
benchmarks.random_forest` (full tile, 10 980 px: minutes per variant; a quiet machine), `--medium`
(4 096 px) or `--quick` (1 024 px); `--size N` for another size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.static_catalog import wgs84_bbox, write_catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_VERSION = "random-forest-v2"  # change when the generated input or the model changes
FULL_SIZE, MEDIUM_SIZE, QUICK_SIZE = 10980, 4096, 1024  # px: a Sentinel-2 tile at 10 m; the smaller checks
FEATURES, CLASSES, SEED = 40, 8, 42
TREES, MAX_DEPTH, TRAINING_SAMPLES = 50, 16, 20000
BANDS = [f"F{i:02d}" for i in range(FEATURES)]
PIXEL, EPSG, WEST, NORTH = 10, 32633, 600000, 5400000
COLLECTION, DATETIME = "bench-rf", "2022-06-13T09:50:59Z"
MODEL_REFERENCE, MODEL_KEY = "bench-rf-model", "models/model.skops"
BLOCK = 512  # px: the GeoTIFFs' blocks, the baseline's windows
GDAL_CACHE_BYTES = 128 * 1024 * 1024  # the engine's (stratus_processing.io.cog / io.save)
TIME_TARGET, RSS_TARGET = 1.2, 1.0  # engine / baseline
NOISE = 0.12  # spread of a pixel around its class's centre: classes overlap, so trees grow deep


def cache_dir(size: int) -> Path:
    base = Path(os.environ.get("STRATUS_BENCH_CACHE") or Path(tempfile.gettempdir()) / "stratus-bench-cache")
    return base / f"{DATA_VERSION}-{size}px"


# --- input ----------------------------------------------------------------------------------------

def _centres() -> np.ndarray:
    return np.random.default_rng(SEED).uniform(0.05, 0.6, (CLASSES, FEATURES)).astype(np.float32)


def _class_field(size: int, top: int, rows: int) -> np.ndarray:
    """The class of each pixel of rows [top, top + rows): smooth fields, as parcels are."""
    axis = np.linspace(0, 1, size, dtype=np.float32)
    v = axis[top:top + rows, np.newaxis]
    field = np.cos(2 * np.pi * (9 * axis[np.newaxis, :] + 4 * v)) + np.sin(2 * np.pi * (5 * v))
    return np.clip(((field + 2) / 4 * CLASSES).astype(np.int64), 0, CLASSES - 1)


def ensure_data(size: int) -> Path:
    root = cache_dir(size)
    if (root / "complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "bands").mkdir(parents=True)
    for index in range(FEATURES):
        _write_band(root, size, index)
    _write_catalog(root, size)
    _train(root / "model.skops")
    (root / "complete").write_text(DATA_VERSION)
    return root


def _write_band(root: Path, size: int, index: int) -> None:
    import rasterio  # noqa: PLC0415
    from affine import Affine  # noqa: PLC0415
    from rasterio.windows import Window  # noqa: PLC0415

    centres = _centres()[:, index]
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32",
               "crs": f"EPSG:{EPSG}", "transform": Affine(PIXEL, 0, WEST, 0, -PIXEL, NORTH), "nodata": np.nan,
               "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "bigtiff": "IF_SAFER"}
    corner = max(1, size // 100)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(root / "bands" / f"{BANDS[index]}.tif", "w",
                                                                     **profile) as dst:
        for top in range(0, size, BLOCK):
            rows = min(BLOCK, size - top)
            rng = np.random.default_rng([SEED, index, top])
            values = centres[_class_field(size, top, rows)] + rng.normal(0, NOISE, (rows, size)).astype(np.float32)
            if top < corner:
                values[: corner - top, :corner] = np.nan  # no band has data here
            if index == 0:
                values[:, size // 2: size // 2 + max(1, size // 50)] = np.nan  # F00 alone lacks a strip
            dst.write(values.astype(np.float32), 1, window=Window(0, top, size, rows))


def _write_catalog(root: Path, size: int) -> None:
    bbox = wgs84_bbox(EPSG, _bounds(size))
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "bench_rf", "collection": COLLECTION, "bbox": bbox,
        "geometry": None, "properties": {"datetime": DATETIME, "proj:epsg": EPSG},
        "assets": {band: {
            "href": str(root / "bands" / f"{band}.tif"), "type": "image/tiff; application=geotiff",
            "roles": ["data"], "eo:bands": [{"name": band}], "raster:bands": [{"data_type": "float32"}],
            "proj:shape": [size, size], "proj:transform": [PIXEL, 0, WEST, 0, -PIXEL, NORTH],
        } for band in BANDS},
        "links": [],
    }
    write_catalog(root, COLLECTION, [item], bbox=bbox, interval=(DATETIME, DATETIME),
                  eo_bands=[{"name": band} for band in BANDS])


def _bounds(size: int) -> tuple[int, int, int, int]:
    return WEST, NORTH - size * PIXEL, WEST + size * PIXEL, NORTH


def _train(model_path: Path) -> None:
    """The engine's model file holding a forest of TREES trees of at most MAX_DEPTH levels."""
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415
    from stratus_processing import ml  # noqa: PLC0415

    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, CLASSES, TRAINING_SAMPLES)
    samples = _centres()[labels] + rng.normal(0, NOISE, (len(labels), FEATURES)).astype(np.float32)
    estimator = RandomForestClassifier(n_estimators=TREES, max_depth=MAX_DEPTH, max_features=FEATURES // 3,
                                       random_state=SEED, n_jobs=-1).fit(samples, labels)
    training = {"samples": TRAINING_SAMPLES, "num_trees": TREES, "max_variables": FEATURES // 3, "seed": SEED}
    model_path.write_bytes(ml.dumps(ml.RandomForestModel(estimator, ml.CLASSIFICATION, tuple(BANDS), training)))


# --- the two variants (run in subprocesses) -----------------------------------------------------

def run_baseline(root: Path, out: Path) -> Path:
    import rasterio  # noqa: PLC0415
    import skops.io as skops  # noqa: PLC0415

    data = (root / "model.skops").read_bytes()
    estimator = skops.loads(data, trusted=skops.get_untrusted_types(data=data))["estimator"]
    estimator.n_jobs = -1
    target = out / "baseline.tif"
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        sources = [rasterio.open(root / "bands" / f"{band}.tif") for band in BANDS]
        profile = {**sources[0].profile, "compress": "DEFLATE", "predictor": 3, "num_threads": "ALL_CPUS"}
        with rasterio.open(target, "w", **profile) as dst:
            for _, window in sources[0].block_windows(1):
                stack = np.stack([source.read(1, window=window) for source in sources])
                pixels = stack.reshape(FEATURES, -1).T
                valid = np.isfinite(pixels).all(axis=1)
                classes = np.full(pixels.shape[0], np.nan, dtype=np.float32)
                if valid.any():
                    classes[valid] = estimator.predict(pixels[valid])
                dst.write(classes.reshape(stack.shape[1:]), 1, window=window)
        for source in sources:
            source.close()
    return target


def engine_process(size: int) -> dict:
    west, south, east, north = _bounds(size)
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": COLLECTION, "spatial_extent": {"west": west, "south": south, "east": east, "north": north,
                                                 "crs": EPSG},
            "temporal_extent": ["2022-06-01", "2022-07-01"], "bands": BANDS}},
        "model": {"process_id": "load_ml_model", "arguments": {"id": MODEL_REFERENCE}},
        "predict": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "bands", "context": {"from_node": "model"},
            "reducer": {"process_graph": {"p": {"process_id": "predict_random_forest", "result": True, "arguments": {
                "data": {"from_parameter": "data"}, "model": {"from_parameter": "context"}}}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "predict"}, "format": "GTiff"},
                 "result": True},
    }}


def run_engine(root: Path, out: Path, size: int) -> Path:
    from stratus_processing.env import EvalEnv  # noqa: PLC0415
    from stratus_processing.io.cog import RasterReader  # noqa: PLC0415
    from stratus_processing.io.stac import DirectoryJsonStore, StacCatalog  # noqa: PLC0415
    from stratus_processing.reporting import NullReporter  # noqa: PLC0415
    from stratus_processing.results import DirectoryResultStore  # noqa: PLC0415
    from stratus_processing.runner import evaluate  # noqa: PLC0415

    store = DirectoryResultStore(out / "engine")
    store.path_of(MODEL_KEY).parent.mkdir(parents=True)
    shutil.copyfile(root / "model.skops", store.path_of(MODEL_KEY))  # a saved model of an earlier job
    reporter = _TiledCheck(NullReporter())
    env = EvalEnv(catalog=StacCatalog(DirectoryJsonStore(root)), rasters=RasterReader(), results=store,
                  reporter=reporter, ml_models={MODEL_REFERENCE: {"key": MODEL_KEY}})
    evaluate(engine_process(size), env)
    if not reporter.tiled:
        raise SystemExit("random_forest: the engine evaluated the whole cube instead of tile by tile")
    [asset] = store.assets
    return store.path_of(asset.key)


class _TiledCheck:
    """Passes the run's log through and notes whether the run went tile by tile."""

    def __init__(self, reporter: object) -> None:
        self._reporter = reporter
        self.tiled = False

    def log(self, message: str, **kwargs: object) -> None:
        self.tiled |= message.startswith("Tiled execution")
        if os.environ.get("STRATUS_BENCH_VERBOSE"):
            print(message, file=sys.stderr)

    def progress(self, fraction: float) -> None:
        pass


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024


def worker(variant: str, root: Path, out: Path, size: int) -> None:
    """One measured run: prints {"seconds", "cpu_seconds", "peak_rss_mib", "output"} as JSON."""
    if variant == "engine":
        import sklearn.ensemble  # noqa: F401, PLC0415 - imports are not part of the measurement
        import skops.io  # noqa: F401, PLC0415
        import stratus_processing.runner  # noqa: F401, PLC0415
    else:
        import rasterio  # noqa: F401, PLC0415
        import sklearn.ensemble  # noqa: F401, PLC0415
        import skops.io  # noqa: F401, PLC0415
    started, cpu_started = time.perf_counter(), time.process_time()
    output = run_engine(root, out, size) if variant == "engine" else run_baseline(root, out)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mib": peak_rss_mib(),
                      "output": str(output)}))


def _measure(variant: str, root: Path, out: Path, size: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run([sys.executable, "-m", "benchmarks.random_forest", "--worker", variant, str(root),
                                str(out), str(size)], cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def maps_equal(engine_path: str, baseline_path: str) -> tuple[bool, int]:
    """Whether the maps are equal (grid, NaN mask, classes), compared by blocks, and their valid pixels."""
    import rasterio  # noqa: PLC0415

    equal, valid = True, 0
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(engine_path) as a, rasterio.open(
            baseline_path) as b:
        if (a.crs, a.transform, a.shape) != (b.crs, b.transform, b.shape):
            return False, 0
        for _, window in b.block_windows(1):
            ours, theirs = a.read(1, window=window), b.read(1, window=window)
            equal &= bool(np.array_equal(ours, theirs, equal_nan=True))
            valid += int(np.isfinite(theirs).sum())
    return equal, valid


def model_summary(root: Path) -> str:
    from stratus_processing import ml  # noqa: PLC0415

    model = ml.loads((root / "model.skops").read_bytes())
    depths = [tree.get_depth() for tree in model.estimator.estimators_]
    nodes = sum(tree.tree_.node_count for tree in model.estimator.estimators_)
    return (f"{len(depths)} trees (max_depth {MAX_DEPTH}: depth {min(depths)}–{max(depths)}, {nodes:,} nodes), "
            f"{CLASSES} classes, {FEATURES} predictors, seed {SEED}")


def main(size: int) -> None:
    started = time.perf_counter()
    # In a subprocess: generating leaves this process's memory high, and children would inherit that.
    subprocess.run([sys.executable, "-m", "benchmarks.random_forest", "--generate", str(size)], cwd=REPO_ROOT,
                   check=True)
    root = ensure_data(size)
    generated = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="stratus-bench-rf-", dir=root.parent) as scratch:
        baseline = _measure("baseline", root, Path(scratch) / "baseline", size)
        engine = _measure("engine", root, Path(scratch) / "engine", size)
        equal, valid = maps_equal(engine["output"], baseline["output"])
    time_ratio = engine["seconds"] / baseline["seconds"]
    rss_ratio = engine["peak_rss_mib"] / baseline["peak_rss_mib"]
    print(f"random forest over {size} × {size} px × {FEATURES} predictors (float32 GeoTIFFs), {os.cpu_count()} CPUs; "
          f"input {'generated' if generated > 5 else 'cached'} in {root}")
    print(f"  model: {model_summary(root)}")
    for name, figures in (("baseline (rasterio + scikit-learn by block)", baseline),
                          ("engine (openEO graph, tiled)", engine)):
        print(f"  {name:44s} {figures['seconds']:7.2f} s ({figures['cpu_seconds']:7.2f} s CPU), "
              f"peak RSS {figures['peak_rss_mib']:6.0f} MiB")
    print(f"  engine/baseline: time {time_ratio:.2f}× (target ≤ {TIME_TARGET}×), peak RSS {rss_ratio:.2f}× "
          f"(target ≤ {RSS_TARGET}×); maps equal: {equal} ({valid:,} classified pixels)")
    if not equal:
        raise SystemExit("random_forest: the engine's map differs from the baseline's")


def _size_from(argv: list[str]) -> int:
    if "--size" in argv:
        return int(argv[argv.index("--size") + 1])
    return QUICK_SIZE if "--quick" in argv else MEDIUM_SIZE if "--medium" in argv else FULL_SIZE


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--generate":
        ensure_data(int(sys.argv[2]))
    else:
        main(_size_from(sys.argv[1:]))
