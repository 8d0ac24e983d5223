"""The engine against the physical floor, a fair streaming baseline, the naive baseline and a peer.

Workload: mean NDVI over time of `--dates` dates × B04+B08 of `--size`² px (generated COGs: uint16,
scale 0.0001, no-data 0, 512 px blocks, DEFLATE; no-data swaths on some dates, a corner without data
on any; the input of `benchmarks.ndvi_time_mean` at any size), result written as a float32 COG with
overviews. Variants, each run in its own subprocess (time: wall time after imports; memory: the
process's peak RSS, `VmHWM`):

- floor: decode every input band (1,024 px windows, one thread per core) and write the output COG
  (the reference result, loaded before the clock starts): no arithmetic at all;
- streaming: what one writes by hand with rasterio + numpy, done well: 1,024 px windows, one thread
  per core, float32 arithmetic, the result in memory, one COG write;
- naive: the baseline `benchmarks.ndvi_time_mean` has always measured (each band read whole, float64,
  `nanmean`), kept for continuity, labelled as such;
- engine: the openEO graph load_collection → ndvi → reduce_dimension(t, mean) → save_result(GTiff)
  through `runner.evaluate` (tiled execution, local result store);
- peer: openeo-processes-dask's implementations of the same processes on an odc-stac load, written
  with rioxarray, when an interpreter that has it is given (`--peer-python` or STRATUS_PEER_PYTHON).
  Its `[implementations]` extra does not install beside the project (the GDAL bindings need
  gdal-config) and it is not one of the project's dependencies: give it a virtualenv of its own that
  sees the project's packages (rasterio, xarray, rioxarray, pystac, pandas, geopandas), e.g.
      python -m venv /tmp/peer
      .venv/bin/python -c "import site; print(site.getsitepackages()[0])" \
          > /tmp/peer/lib/python3.11/site-packages/project.pth
      /tmp/peer/bin/pip install --no-deps openeo-processes-dask==2026.9.1
      /tmp/peer/bin/pip install 'dask[array]' odc-stac openeo-pg-parser-networkx dask-geopandas xvec \
          planetary-computer
  (its package imports the last four at import time).

Every output is compared with the naive (float64) one on every run: same grid, same NaN mask, max
|diff| < 1e-6; where the naive variant does not fit in memory (a full 10,980² tile of 12 dates), it is
not run and the streaming one is the reference. Also printed: the engine's import time (`import stratus_processing.runner`, fresh
interpreter, median of 3) beside rasterio's alone.

Run: `python -m benchmarks.engine_floor` (the issue's size: 4 × 5,490²), `--quick` (4 × 1,024², for
a busy machine: ratios indicative only), `--size N --dates D --runs R` (the full tile: `--size 10980
--dates 12 --runs 1`; its input takes ~3 GB of disk).
"""

from __future__ import annotations

import argparse
import json
import os
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
DATA_VERSION = "engine-floor-v1"  # change when the generated input changes
PIXEL = 20  # metres
EPSG = 32633
WEST, NORTH = 600000, 5400000
COLLECTION = "bench-s2"
SCALE = 0.0001
WINDOW = 1024  # px, the hand-written variants' window edge
VARIANTS = ("floor", "streaming", "naive", "engine", "peer")
# The output every other is compared with: the naive float64 one where it fits in memory, else the
# streaming one (float32: agreement within TOLERANCE, not to the bit).
REFERENCES = ("naive", "streaming")
# Share of the machine's memory the naive variant may need (it holds every date's bands whole in
# float64, and their NDVIs stacked): beyond it, it is not run (4 dates × 5,490² px need ~4 GiB,
# 12 × 10,980² ~35 GiB).
NAIVE_MEMORY_SHARE = 0.6
TOLERANCE = 1e-6
# Targets of issue 14 (engine / variant): time and peak RSS.
TARGETS = {"streaming": (1.0, 1.0), "floor": (1.3, None)}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def dates(count: int) -> list[str]:
    """Every 10 days from 2022-06-01 (months of 30 days: the first 21 dates are those of the data
    generated before this went past December)."""
    moments = []
    for day in range(0, 10 * count, 10):
        months = 5 + day // 30  # since January 2022
        moments.append(f"{2022 + months // 12}-{1 + months % 12:02d}-{1 + day % 30:02d}T09:50:59Z")
    return moments


def data_dir(size: int, date_count: int) -> Path:
    return Path(tempfile.gettempdir()) / f"stratus-bench-{DATA_VERSION}-{size}px-{date_count}d"


# --- input ----------------------------------------------------------------------------------------

def ensure_data(size: int, date_count: int) -> Path:
    root = data_dir(size, date_count)
    if (root / "complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "cogs").mkdir(parents=True)
    tasks = [(index, band) for index in range(date_count) for band in ("B04", "B08")]
    with ThreadPoolExecutor(max_workers=cores()) as pool:
        list(pool.map(lambda task: _write_band(root, size, *task), tasks))
    _write_catalog(root, size, date_count)
    (root / "complete").write_text(DATA_VERSION)
    return root


def band_path(root: Path, index: int, band: str) -> Path:
    return root / "cogs" / f"{index}_{band}.tif"


def _band_values(size: int, index: int, band: str) -> np.ndarray:
    """Smooth fields (parcels of vegetation greening over the dates) plus noise, uint16 DN."""
    rng = np.random.default_rng(1000 * index + (4 if band == "B04" else 8))
    axis = np.linspace(0, 1, size, dtype=np.float32)
    u, v = axis[np.newaxis, :], axis[:, np.newaxis]
    field = np.cos(2 * np.pi * (7 * u + 3 * v)) * np.sin(2 * np.pi * (5 * v - 2 * u))
    green = 0.3 + 0.15 * (index % 4) + 0.25 * field
    dn = (2600 - 1800 * green) if band == "B04" else (1800 + 2600 * green)
    dn = dn + rng.normal(0, 60, size=(size, size)).astype(np.float32)
    values = np.clip(dn, 1, 10000).astype(np.uint16)
    if index % 4 == 1:
        values[:, : size // 5] = 0  # a swath edge: no data in the western fifth
    if index % 4 == 2:
        values[size // 2:, size // 2:] = 0  # no data in the south-east quarter
    corner = max(size // 27, 8)
    values[:corner, :corner] = 0  # no date has data here: NaN in the mean
    return values


def _write_band(root: Path, size: int, index: int, band: str) -> None:
    import rasterio  # noqa: PLC0415
    from affine import Affine  # noqa: PLC0415
    from rasterio.crs import CRS  # noqa: PLC0415

    profile = {"driver": "COG", "width": size, "height": size, "count": 1, "dtype": "uint16",
               "crs": CRS.from_epsg(EPSG), "transform": Affine(PIXEL, 0, WEST, 0, -PIXEL, NORTH), "nodata": 0,
               "compress": "DEFLATE", "predictor": 2, "blocksize": 512, "overviews": "NONE"}
    with rasterio.Env(), rasterio.open(band_path(root, index, band), "w", **profile) as dst:
        dst.write(_band_values(size, index, band), 1)


def _write_catalog(root: Path, size: int, date_count: int) -> None:
    bbox = wgs84_bbox(EPSG, (WEST, NORTH - size * PIXEL, WEST + size * PIXEL, NORTH))
    bands = {"B04": "red", "B08": "nir"}
    moments = dates(date_count)
    items = [{
        "type": "Feature", "stac_version": "1.0.0", "id": f"bench_{index}", "collection": COLLECTION,
        "bbox": bbox, "geometry": _polygon(bbox),
        "properties": {"datetime": moment, "proj:epsg": EPSG},
        "assets": {band: {
            "href": str(band_path(root, index, band)),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"],
            "eo:bands": [{"name": band, "common_name": common}],
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": SCALE, "offset": 0}],
            "proj:shape": [size, size], "proj:transform": [PIXEL, 0, WEST, 0, -PIXEL, NORTH],
        } for band, common in bands.items()},
        "links": [],
    } for index, moment in enumerate(moments)]
    write_catalog(root, COLLECTION, items, bbox=bbox, interval=(moments[0], moments[-1]),
                  eo_bands=[{"name": b, "common_name": c} for b, c in bands.items()])


def _polygon(bbox: list[float]) -> dict:
    west, south, east, north = bbox
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


# --- variants (each in its own subprocess) ---------------------------------------------------------

# The engine's creation options (`stratus_processing.io.save`): every variant writes the same kind of file.
COG_PROFILE = {"driver": "COG", "dtype": "float32", "nodata": np.nan, "compress": "DEFLATE", "predictor": "YES",
               "level": 1, "blocksize": 512, "overviews": "AUTO", "overview_resampling": "AVERAGE",
               "bigtiff": "IF_SAFER", "num_threads": "ALL_CPUS"}


def _grid_profile(root: Path) -> dict:
    import rasterio  # noqa: PLC0415

    with rasterio.open(band_path(root, 0, "B04")) as src:
        return {"width": src.width, "height": src.height, "count": 1, "crs": src.crs, "transform": src.transform}


def _write_result(target: Path, values: np.ndarray, grid: dict) -> Path:
    import rasterio  # noqa: PLC0415

    with rasterio.open(target, "w", **{**COG_PROFILE, **grid}) as dst:
        dst.write(values, 1)
    return target


def _windows(width: int, height: int) -> list:
    from rasterio.windows import Window  # noqa: PLC0415

    return [Window(col, row, min(WINDOW, width - col), min(WINDOW, height - row))
            for row in range(0, height, WINDOW) for col in range(0, width, WINDOW)]


def _per_thread_datasets(paths: list[Path]):  # noqa: ANN202
    """Each thread opens every input once and keeps it (rasterio datasets serve one thread at a time)."""
    import threading  # noqa: PLC0415

    import rasterio  # noqa: PLC0415

    local = threading.local()

    def datasets() -> list:
        if not hasattr(local, "datasets"):
            local.datasets = [rasterio.open(path) for path in paths]
        return local.datasets
    return datasets


def run_floor(root: Path, out: Path, date_count: int, reference: np.ndarray) -> Path:
    grid = _grid_profile(root)
    paths = [band_path(root, index, band) for index in range(date_count) for band in ("B04", "B08")]
    datasets = _per_thread_datasets(paths)

    def decode(window) -> None:  # noqa: ANN001
        for src in datasets():
            src.read(1, window=window)
    with ThreadPoolExecutor(max_workers=cores()) as pool:
        list(pool.map(decode, _windows(grid["width"], grid["height"])))
    return _write_result(out / "floor.tif", reference, grid)


def run_streaming(root: Path, out: Path, date_count: int) -> Path:
    grid = _grid_profile(root)
    paths = [band_path(root, index, band) for index in range(date_count) for band in ("B04", "B08")]
    datasets = _per_thread_datasets(paths)
    result = np.empty((grid["height"], grid["width"]), dtype=np.float32)
    scale = np.float32(SCALE)

    def compute(window) -> None:  # noqa: ANN001
        sources = datasets()
        total = np.zeros((window.height, window.width), dtype=np.float32)
        count = np.zeros((window.height, window.width), dtype=np.float32)
        for index in range(date_count):
            red, nir = (sources[2 * index + b].read(1, window=window) for b in (0, 1))
            valid = (red != 0) & (nir != 0)
            red_r, nir_r = red.astype(np.float32) * scale, nir.astype(np.float32) * scale
            with np.errstate(divide="ignore", invalid="ignore"):
                ndvi = (nir_r - red_r) / (nir_r + red_r)
            total += np.where(valid, ndvi, 0)
            count += valid
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / count  # 0 / 0: NaN where no date has data
        result[window.row_off:window.row_off + window.height, window.col_off:window.col_off + window.width] = mean
    with ThreadPoolExecutor(max_workers=cores()) as pool:
        list(pool.map(compute, _windows(grid["width"], grid["height"])))
    return _write_result(out / "streaming.tif", result, grid)


def run_naive(root: Path, out: Path, date_count: int) -> Path:
    import warnings  # noqa: PLC0415

    import rasterio  # noqa: PLC0415

    ndvis = []
    for index in range(date_count):
        bands = {}
        for band in ("B04", "B08"):
            with rasterio.open(band_path(root, index, band)) as src:
                dn = src.read(1)
            values = dn.astype(np.float64) * SCALE
            values[dn == 0] = np.nan
            bands[band] = values
        with np.errstate(divide="ignore", invalid="ignore"):
            ndvis.append((bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        mean = np.nanmean(np.stack(ndvis), axis=0)
    return _write_result(out / "naive.tif", mean.astype(np.float32), _grid_profile(root))


def engine_process(size: int) -> dict:
    bounds = {"west": WEST, "south": NORTH - size * PIXEL, "east": WEST + size * PIXEL, "north": NORTH,
              "crs": EPSG}
    return {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": COLLECTION, "spatial_extent": bounds, "temporal_extent": ["2022-06-01", "2023-12-31"],
            "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "mean": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "mean"}, "format": "GTiff"},
                 "result": True},
    }}


def run_engine(root: Path, out: Path, size: int) -> Path:
    from stratus_processing.env import EvalEnv  # noqa: PLC0415
    from stratus_processing.io.cog import RasterReader  # noqa: PLC0415
    from stratus_processing.io.stac import DirectoryJsonStore, StacCatalog  # noqa: PLC0415
    from stratus_processing.results import DirectoryResultStore  # noqa: PLC0415
    from stratus_processing.runner import evaluate  # noqa: PLC0415

    store = DirectoryResultStore(out / "engine")
    with RasterReader() as reader:
        env = EvalEnv(catalog=StacCatalog(DirectoryJsonStore(root)), rasters=reader, results=store)
        evaluate(engine_process(size), env)
    [asset] = store.assets
    return store.path_of(asset.key)


def run_peer(root: Path, out: Path, date_count: int) -> Path:
    """openeo-processes-dask on an odc-stac load (dask's threaded scheduler, one thread per core)."""
    import dask  # noqa: PLC0415
    import odc.stac  # noqa: PLC0415
    import pystac  # noqa: PLC0415
    import rioxarray  # noqa: F401, PLC0415 - the .rio accessor
    from affine import Affine  # noqa: PLC0415
    from odc.geo.geobox import GeoBox  # noqa: PLC0415
    from openeo_processes_dask.process_implementations.cubes.reduce import reduce_dimension  # noqa: PLC0415
    from openeo_processes_dask.process_implementations.math import mean  # noqa: PLC0415
    from openeo_processes_dask.process_implementations.cubes.indices import ndvi  # noqa: PLC0415

    from stratus import catalog_layout  # noqa: PLC0415

    items = [pystac.Item.from_file(str(root / catalog_layout.item_key(COLLECTION, f"bench_{index}")))
             for index in range(date_count)]
    with dask.config.set(scheduler="threads", num_workers=cores()):
        size = items[0].assets["B04"].extra_fields["proj:shape"][0]
        geobox = GeoBox((size, size), Affine(PIXEL, 0, WEST, 0, -PIXEL, NORTH), f"EPSG:{EPSG}")
        data = odc.stac.load(items, bands=["B04", "B08"], geobox=geobox, chunks={"x": WINDOW, "y": WINDOW},
                             groupby="solar_day", dtype="float32", nodata=0)
        cube = data.to_array(dim="bands")
        cube = cube.where(cube != 0) * np.float32(SCALE)
        cube = cube.rename({"time": "t"}).transpose("t", "bands", "y", "x")
        cube.attrs = {}
        index = ndvi(cube, nir="B08", red="B04")
        # (as its graph executor calls a reducer: xarray passes the axis, the executor its own parameters)
        result = reduce_dimension(index, reducer=lambda data, axis, **_: mean(data, ignore_nodata=True, axis=axis),
                                  dimension="t")
        values = result.astype(np.float32).compute()
    target = out / "peer.tif"
    values.rio.write_crs(f"EPSG:{EPSG}", inplace=True)
    values.rio.write_nodata(np.nan, encoded=False, inplace=True)
    values.rio.to_raster(target, **{k: v for k, v in COG_PROFILE.items() if k not in ("dtype", "nodata")})
    return target


def naive_bytes(size: int, date_count: int) -> int:
    """Peak bytes of the naive variant: per date two float64 bands plus their NDVI, all NDVIs stacked."""
    return (2 * date_count + 3) * size * size * 8


def memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def peak_rss_mib() -> float:
    """The high-water mark of this process's resident memory (all threads), in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def worker(variant: str, root: Path, out: Path, size: int, date_count: int, reference: str | None) -> None:
    """One measured run: prints {"seconds", "cpu_seconds", "max_rss_mib", "output"} as JSON (CPU time
    of all threads: on a busy machine a steadier figure than wall time)."""
    import rasterio  # noqa: F401, PLC0415 - imports are not part of the measurement

    if variant == "engine":
        import stratus_processing.runner  # noqa: F401, PLC0415
        import xarray  # noqa: F401, PLC0415 - deferred in the engine (`stratus_processing.deferred`): a cube loads it
    reference_values = None
    if variant == "floor":
        with rasterio.open(reference) as src:
            reference_values = src.read(1)
    started, cpu_started = time.perf_counter(), time.process_time()
    with rasterio.Env(GDAL_CACHEMAX=128 * 1024 * 1024):
        if variant == "floor":
            output = run_floor(root, out, date_count, reference_values)
        elif variant == "streaming":
            output = run_streaming(root, out, date_count)
        elif variant == "naive":
            output = run_naive(root, out, date_count)
        elif variant == "engine":
            output = run_engine(root, out, size)
        else:
            output = run_peer(root, out, date_count)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "max_rss_mib": peak_rss_mib(),
                      "output": str(output)}))


# --- the driver -----------------------------------------------------------------------------------

def _python_for(variant: str, peer_python: str | None) -> str:
    return peer_python if variant == "peer" and peer_python else sys.executable


def _environment() -> dict[str, str]:
    paths = [REPO_ROOT / "layers" / "runtime", REPO_ROOT / "containers" / "processing", REPO_ROOT]
    existing = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join([*map(str, paths), *([existing] if existing else [])])}


def measure(variant: str, python: str, root: Path, out: Path, size: int, date_count: int,
            reference: Path | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "benchmarks.engine_floor", "--worker", variant, str(root), str(out), str(size),
               str(date_count), str(reference or "")]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False,
                               env=_environment())
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def compare(path: str, reference: str) -> tuple[float, bool]:
    import rasterio  # noqa: PLC0415

    with rasterio.open(path) as a, rasterio.open(reference) as b:
        if (a.crs, a.transform, a.shape) != (b.crs, b.transform, b.shape):
            raise AssertionError(f"{path} is on another grid than {reference}")
        values, expected = a.read(1), b.read(1)
    same_mask = bool(np.array_equal(np.isnan(values), np.isnan(expected)))
    valid = ~np.isnan(expected) & ~np.isnan(values)
    max_diff = float(np.max(np.abs(values[valid] - expected[valid]))) if valid.any() else 0.0
    return max_diff, same_mask


def import_seconds(module: str, runs: int = 3) -> float:
    code = f"import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"
    times = [float(subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                                  check=True, env=_environment()).stdout) for _ in range(runs)]
    return statistics.median(times)


def import_breakdown(module: str, top: int = 6) -> list[tuple[str, float]]:
    """Where the import of `module` goes: the share of each top-level package in the self times of
    `python -X importtime` (shares, not seconds: they hold on a busy machine too)."""
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True, env=_environment())
    totals: dict[str, int] = {}
    for line in completed.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[0].strip().isdigit():
            package = fields[2].strip().split(".")[0]
            totals[package] = totals.get(package, 0) + int(fields[0])
    whole = sum(totals.values()) or 1
    return [(package, micros / whole) for package, micros in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]


def peer_available(python: str | None) -> str | None:
    """Why the peer can't run with `python` (None: it can)."""
    if not python:
        return "no interpreter with openeo-processes-dask given (--peer-python / STRATUS_PEER_PYTHON)"
    probe = subprocess.run([python, "-c", "import openeo_processes_dask, odc.stac, rioxarray, dask"],
                           capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"it doesn't import: {probe.stderr.strip().splitlines()[-1]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 dates × 1,024² px, one run per variant")
    parser.add_argument("--size", type=int, default=5490)
    parser.add_argument("--dates", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="runs per variant (median time, largest peak RSS)")
    parser.add_argument("--peer-python", default=os.environ.get("STRATUS_PEER_PYTHON"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.runs = 1024, 1
    variants = [v for v in args.variants.split(",") if v in VARIANTS]
    skipped = {}
    if "naive" in variants and (need := naive_bytes(args.size, args.dates)) > NAIVE_MEMORY_SHARE * memory_bytes():
        variants.remove("naive")
        skipped["naive"] = (f"it would hold ~{need / 2**30:.0f} GiB (the machine has "
                            f"{memory_bytes() / 2**30:.0f} GiB); outputs compared with the streaming variant's")
    reference_variant = next((v for v in REFERENCES if v in variants), None)
    if reference_variant is None:
        raise SystemExit("engine_floor: run the naive or the streaming variant too: the others are compared with it")
    if "peer" in variants and (why := peer_available(args.peer_python)):
        variants.remove("peer")
        skipped["peer"] = why
    # In a subprocess: generating leaves this process's memory high, and children would inherit that.
    subprocess.run([sys.executable, "-m", "benchmarks.engine_floor", "--generate", str(args.size), str(args.dates)],
                   cwd=REPO_ROOT, check=True, env=_environment())
    root = data_dir(args.size, args.dates)
    order = [reference_variant] + [v for v in variants if v != reference_variant]
    runs: dict[str, list[dict]] = {variant: [] for variant in order}
    agreement: dict[str, tuple[float, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="stratus-bench-out-") as scratch:
        for attempt in range(args.runs):
            reference = None
            for variant in order:
                result = measure(variant, _python_for(variant, args.peer_python), root,
                                 Path(scratch) / f"{variant}-{attempt}", args.size, args.dates, reference)
                result["output_mib"] = Path(result["output"]).stat().st_size / 2**20
                runs[variant].append(result)
                if variant == reference_variant:
                    reference = Path(result["output"])
                elif variant != "floor":
                    max_diff, same_mask = compare(result["output"], str(reference))
                    worst = agreement.get(variant, (0.0, True))
                    agreement[variant] = (max(worst[0], max_diff), worst[1] and same_mask)
    summary = {variant: {"seconds": statistics.median(r["seconds"] for r in runs[variant]),
                         "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs[variant]),
                         "max_rss_mib": max(r["max_rss_mib"] for r in runs[variant]),
                         "output_mib": runs[variant][-1]["output_mib"]}
               for variant in VARIANTS if variant in variants}
    print(f"engine_floor: NDVI mean over t, {args.dates} dates × B04+B08 of {args.size}² px, {cores()} cores, "
          f"{args.runs} run(s) per variant{' (--quick: indicative only)' if args.quick else ''}")
    engine = summary.get("engine")
    labels = {"floor": "floor (decode + write COG)", "streaming": "streaming rasterio+numpy",
              "naive": "naive baseline (whole, f64)", "engine": "engine (openEO graph)",
              "peer": "openeo-processes-dask"}
    for variant, figures in summary.items():
        line = (f"  {labels[variant]:30s} {figures['seconds']:7.2f} s (CPU {figures['cpu_seconds']:6.2f} s)  "
                f"peak RSS {figures['max_rss_mib']:7.0f} MiB  "
                f"file {figures['output_mib']:6.1f} MiB")
        if engine and variant != "engine":
            line += (f"  engine/this: time {engine['seconds'] / figures['seconds']:.2f}, "
                     f"RSS {engine['max_rss_mib'] / figures['max_rss_mib']:.2f}")
            time_target, rss_target = TARGETS.get(variant, (None, None))
            if time_target:
                line += f" (targets ≤ {time_target}" + (f", ≤ {rss_target})" if rss_target else ")")
        if variant in agreement:
            max_diff, same_mask = agreement[variant]
            line += f"  vs {reference_variant}: max |diff| {max_diff:.1e}, same NaN mask {same_mask}"
        print(line)
    for variant, why in skipped.items():
        print(f"  {labels[variant]:30s} not run: {why}")
    engine_import, rasterio_import = import_seconds("stratus_processing.runner"), import_seconds("rasterio")
    print(f"  import stratus_processing.runner {engine_import:.2f} s (target ≤ 0.5 s; import rasterio alone "
          f"{rasterio_import:.2f} s); by package: "
          + ", ".join(f"{package} {share:.0%}" for package, share in import_breakdown("stratus_processing.runner")))
    failed = [v for v, (diff, mask) in agreement.items() if not (diff < TOLERANCE and mask)]
    if failed:
        raise SystemExit(f"engine_floor: outputs differ from the {reference_variant} variant's: {', '.join(failed)}")


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--worker":
        worker(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]),
               sys.argv[7] or None)
    elif len(sys.argv) == 4 and sys.argv[1] == "--generate":
        ensure_data(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
