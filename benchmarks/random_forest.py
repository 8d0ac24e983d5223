"""Random-forest prediction over a Sentinel-2 tile with 40 predictors: the engine against plain scikit-learn.

Model: a 100-tree classification forest (8 classes, seed 42) trained once on 4 000 synthetic samples and
saved as the engine's model file (`stratus_processing.ml`, skops); both variants load that file.

Input: the same (40, size, size) array in both variants, float64 as the engine's cubes are (`cube.CUBE_DTYPE`),
generated deterministically inside each worker (smooth class fields plus noise; a corner of no-data), not
counted in the time.

Measured, each variant in its own subprocess (peak RSS is the kernel's high-water mark `VmHWM`; time is
the wall time of the prediction only):
- baseline: plain scikit-learn as one would write it: `model.predict(array.reshape(40, -1).T)` on the
  valid pixels, the classes reshaped to the tile (no-data pixels NaN);
- engine: the openEO graph reduce_dimension(bands, predict_random_forest(data, model)) on the cube,
  through the evaluator, as a batch job runs it.

Prints both, the ratios engine/baseline against the targets (time ≤ 1.2×, peak RSS ≤ 1.0×), and checks
the two maps are equal. Run: `python -m benchmarks.random_forest` (full tile: 10 980 px, needs about
72 GiB of memory: 39 GiB input plus the baseline's copies) or `--quick` (1 024 px).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_SIZE, QUICK_SIZE = 10980, 1024  # px: a Sentinel-2 tile at 10 m; the quick check
FEATURES, CLASSES, TREES, SEED = 40, 8, 100, 42
TIME_TARGET, RSS_TARGET = 1.2, 1.0  # engine / baseline
ROWS_PER_BLOCK = 256  # generation works through the tile in blocks of rows, so it needs no copies


def _centres() -> np.ndarray:
    return np.random.default_rng(SEED).uniform(0.05, 0.6, (CLASSES, FEATURES)).astype(np.float32)


def features(size: int) -> np.ndarray:
    """(FEATURES, size, size) float64: each pixel near the centre of its class (smooth class fields)."""
    centres = _centres()
    out = np.empty((FEATURES, size, size), dtype=np.float64)
    axis = np.linspace(0, 1, size, dtype=np.float32)
    for top in range(0, size, ROWS_PER_BLOCK):
        rows = axis[top:top + ROWS_PER_BLOCK, np.newaxis]
        field = np.cos(2 * np.pi * (9 * axis[np.newaxis, :] + 4 * rows)) + np.sin(2 * np.pi * (5 * rows))
        classes = np.clip(((field + 2) / 4 * CLASSES).astype(np.int64), 0, CLASSES - 1)
        rng = np.random.default_rng(top)
        block = centres[classes].transpose(2, 0, 1)
        out[:, top:top + ROWS_PER_BLOCK] = block + rng.normal(0, 0.05, block.shape).astype(np.float32)
    out[:, : max(1, size // 100), : max(1, size // 100)] = np.nan  # a corner without data
    return out


def train(model_path: Path) -> None:
    from stratus_processing import ml

    rng = np.random.default_rng(SEED)
    labels = rng.integers(0, CLASSES, 4000)
    samples = _centres()[labels] + rng.normal(0, 0.08, (len(labels), FEATURES)).astype(np.float32)
    model = ml.fit(ml.CLASSIFICATION, samples, labels, [f"F{i:02d}" for i in range(FEATURES)], max_variables=None,
                   num_trees=TREES, seed=SEED)
    model_path.write_bytes(ml.dumps(model))


# --- the two variants (run in subprocesses) -----------------------------------------------------

def run_baseline(model_path: Path, size: int) -> tuple[np.ndarray, float]:
    import skops.io as skops

    data = model_path.read_bytes()
    estimator = skops.loads(data, trusted=skops.get_untrusted_types(data=data))["estimator"]
    array = features(size)
    started = time.perf_counter()
    pixels = array.reshape(FEATURES, -1).T
    valid = np.isfinite(pixels).all(axis=1)
    classes = np.full(pixels.shape[0], np.nan)
    classes[valid] = estimator.predict(pixels[valid])
    return classes.reshape(size, size), time.perf_counter() - started


def run_engine(model_path: Path, size: int) -> tuple[np.ndarray, float]:
    import stratus_processing.processes  # noqa: F401
    from affine import Affine
    from rasterio.crs import CRS
    from stratus_processing import cube as cubes
    from stratus_processing import ml
    from stratus_processing.env import EvalEnv
    from stratus_processing.graph import evaluate_graph
    from stratus_processing.grid import Grid

    model = ml.loads(model_path.read_bytes())
    grid = Grid(CRS.from_epsg(32633), Affine(10, 0, 600000, 0, -10, 5400000), size, size)
    cube = cubes.make_cube(features(size), grid=grid, bands=list(model.predictors))
    graph = {"predict": {"process_id": "reduce_dimension", "result": True, "arguments": {
        "data": {"from_parameter": "cube"}, "dimension": "bands", "context": {"from_parameter": "model"},
        "reducer": {"process_graph": {"p": {"process_id": "predict_random_forest", "result": True, "arguments": {
            "data": {"from_parameter": "data"}, "model": {"from_parameter": "context"}}}}}}}}
    started = time.perf_counter()
    result = evaluate_graph(graph, EvalEnv(), arguments={"cube": cube, "model": model})
    return result.values, time.perf_counter() - started


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024


def worker(variant: str, model_path: Path, size: int, out: Path) -> None:
    classes, seconds = (run_engine if variant == "engine" else run_baseline)(model_path, size)
    np.save(out, classes)
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib()}))


def _measure(variant: str, model_path: Path, size: int, out: Path) -> dict:
    completed = subprocess.run([sys.executable, "-m", "benchmarks.random_forest", "--worker", variant,
                                str(model_path), str(size), str(out)], cwd=REPO_ROOT, check=True,
                               capture_output=True, text=True, env=os.environ.copy())
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(size: int | None = None) -> None:
    size = size or (QUICK_SIZE if "--quick" in sys.argv else FULL_SIZE)
    with tempfile.TemporaryDirectory(prefix="stratus-bench-rf-") as folder:
        root = Path(folder)
        model_path = root / "model.skops"
        train(model_path)
        baseline = _measure("baseline", model_path, size, root / "baseline.npy")
        engine = _measure("engine", model_path, size, root / "engine.npy")
        equal = np.array_equal(np.load(root / "baseline.npy"), np.load(root / "engine.npy"), equal_nan=True)
    time_ratio = engine["seconds"] / baseline["seconds"]
    rss_ratio = engine["peak_rss_mib"] / baseline["peak_rss_mib"]
    print(f"random forest ({TREES} trees, {CLASSES} classes) over {size} × {size} px × {FEATURES} predictors")
    print(f"  baseline (scikit-learn): {baseline['seconds']:.2f} s, peak RSS {baseline['peak_rss_mib']:.0f} MiB")
    print(f"  engine (openEO graph):   {engine['seconds']:.2f} s, peak RSS {engine['peak_rss_mib']:.0f} MiB")
    print(f"  engine/baseline: time {time_ratio:.2f}× (target ≤ {TIME_TARGET}×), peak RSS {rss_ratio:.2f}× "
          f"(target ≤ {RSS_TARGET}×); maps equal: {equal}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
