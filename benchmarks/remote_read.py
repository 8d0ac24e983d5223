"""Reading real Sentinel-2 L2A COGs over HTTP: the engine's read path against a hand-written one.

Input: the recorded Earth Search v1 item of S2A_29RKH_20200219_0_L2A and cut-outs of its real red,
nir and SCL COGs (512 × 512 px at 100 m and 256 × 256 px at 200 m, 128 px tiles, DEFLATE; see
tests/fixtures/real/README.md), from tests/fixtures/real/data/ (or `STRATUS_REAL_DATA`); skipped
when absent. A local server (tests/support_stac_server.py) serves the item and the COGs with `LATENCY_S`
per request and `BANDWIDTH` bytes/s per connection, and counts requests and bytes per file.

For each output window (`WINDOWS`, in the 100 m pixels of red/nir; SCL's is half of it, and an output
`factor` > 1 means a grid that many times coarser), measured, each run in its own process (no GDAL
cache carried over), alternating, `RUNS` times:
- engine: the openEO graph load_stac(item URL, window extent, bands red, nir, scl), through
  `evaluate_graph`, as a job's load does (STAC item fetch, plan, window reads in threads);
  engine-tiled: the same as tiled execution reads it (`tiling.run_tiled`: the load planned once,
  then 128 px tiles read two at a time, the next tiles' blocks fetched ahead);
  engine-coarse: the load planned as above, then read onto the `factor` times coarser grid (as a
  load whose output resolution is coarser: the reader picks the overviews);
- baseline: the same by hand: fetch the item, then one windowed rasterio read per band, in threads
  (with `out_shape` for a coarser output, so GDAL picks the overview), with the GDAL settings a
  careful engineer would set for COGs over HTTP (`BASELINE_GDAL`);
- needed: the bytes of the tiles of the image (of the overview that the coarser output reads) that
  intersect the window (from the COGs' tile index), and the fewest requests that could fetch them
  (one for the header, one per run of neighbouring tiles in the file).

Prints requests and bytes read by each, the engine's bytes against the needed ones (target ≤ 1.5)
and the engine's wall time against the baseline's (target ≤ 1.2), and checks that both read the
same pixels. Run: `python -m benchmarks.remote_read` (also part of `make bench`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LATENCY_S = 0.030  # per request: a cross-region S3/CDN round trip
BANDWIDTH = 20_000_000  # bytes/s per connection
RUNS = 3  # per variant and window, alternating; the median time is reported
BYTES_TARGET, TIME_TARGET = 1.5, 1.2
MERGE_GAP = 1024  # bytes between two tiles that one request may as well span
BANDS = {"red": "B04", "nir": "B08", "scl": "SCL"}  # Earth Search asset keys -> file names
PIXEL = 100  # metres, red and nir in the cut-outs
# name: (first row, first column, height, width) in the 100 m pixels of the cut-out, output factor
WINDOWS = {
    "tile-crossing 200 × 260 px": ((50, 70, 200, 260), 1),
    "small 64 × 64 px": ((140, 140, 64, 64), 1),
    "whole cut-out 512 × 512 px": ((0, 0, 512, 512), 1),
    "whole cut-out at 400 m (128 × 128 px)": ((0, 0, 512, 512), 4),
}
# The engine also reads the whole cut-out as tiled execution does (`tiling.run_tiled`: loads planned
# once, then each output tile read, TILE_WORKERS at a time): 128 px output tiles over 128 px COG
# tiles, as its 1024 px tiles over the 1024 px tiles of full-size COGs.
TILED_WINDOW, TILE_SIZE = "whole cut-out 512 × 512 px", 128
BASELINE_GDAL: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing on open
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    # (CPL_VSIL_CURL_USE_HEAD=NO would make it worse: GDAL then learns the size from a GET of the whole
    # file that it aborts, a round trip as long as the HEAD's, plus the bytes in flight.)
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
}


def extent_of(window: tuple[int, int, int, int], origin: tuple[float, float]) -> dict[str, Any]:
    row, col, height, width = window
    x0, y0 = origin
    return {"west": x0 + col * PIXEL, "east": x0 + (col + width) * PIXEL,
            "north": y0 - row * PIXEL, "south": y0 - (row + height) * PIXEL, "crs": 32629}


# --- the two variants (run in subprocesses) ---------------------------------------------------------

def run_engine(item_url: str, extent: dict[str, Any], tile_size: int | None = None,
               factor: int = 1) -> dict[str, float]:
    import tempfile  # noqa: PLC0415
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415
    from dataclasses import replace  # noqa: PLC0415

    from stratus_processing.env import EvalEnv  # noqa: PLC0415
    from stratus_processing.graph import evaluate_graph  # noqa: PLC0415
    from affine import Affine  # noqa: PLC0415
    from stratus_processing.grid import Grid  # noqa: PLC0415
    from stratus_processing.io.cog import RasterReader  # noqa: PLC0415
    from stratus_processing.io.load import load_cube  # noqa: PLC0415
    from stratus_processing.io.stac import DirectoryJsonStore, DocumentReader, StacCatalog  # noqa: PLC0415
    from stratus_processing.tiling import TILE_WORKERS, ReadAhead, TileContext, tile_grids  # noqa: PLC0415

    graph = {"load": {"process_id": "load_stac", "result": True, "arguments": {
        "url": item_url, "spatial_extent": extent, "bands": list(BANDS)}}}
    with tempfile.TemporaryDirectory() as empty:
        env = EvalEnv(catalog=StacCatalog(DirectoryJsonStore(Path(empty)),
                                          documents=DocumentReader(allow_private_hosts=True)),
                      rasters=RasterReader())
        if factor > 1:  # plan as the load does, then read onto the coarser grid
            context = TileContext(loads={})
            evaluate_graph(graph, replace(env, tile=context))
            [plan] = context.loads.values()
            grid = plan.grid
            coarse = Grid(grid.crs, grid.transform @ Affine.scale(factor), grid.width // factor, grid.height // factor)
            cubes = [load_cube(plan, env.rasters, coarse)]
        elif tile_size is None:
            cubes = [evaluate_graph(graph, env)]
        else:  # as run_tiled: plan once, then read tile by tile, the next tiles' blocks fetched ahead
            context = TileContext(loads={})
            evaluate_graph(graph, replace(env, tile=context))
            [plan] = context.loads.values()
            tiles = tile_grids(plan.grid, tile_size)

            def evaluate(index: int) -> Any:
                read_ahead.before(index)
                return evaluate_graph(graph, replace(env, tile=replace(context, grid=tiles[index])))

            with ReadAhead([plan], env.rasters, tiles) as read_ahead, \
                    ThreadPoolExecutor(max_workers=TILE_WORKERS) as pool:
                cubes = list(pool.map(evaluate, range(len(tiles))))
    return {band: sum(float(cube.sel(bands=band).values[0].sum()) for cube in cubes) for band in ("red", "nir")}


def run_baseline(item_url: str, extent: dict[str, Any], factor: int = 1) -> dict[str, float]:
    import urllib.request  # noqa: PLC0415
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    import rasterio  # noqa: PLC0415
    from rasterio.windows import from_bounds  # noqa: PLC0415

    with urllib.request.urlopen(item_url, timeout=30) as response:
        item = json.load(response)

    def read(key: str) -> Any:
        with rasterio.Env(**BASELINE_GDAL), rasterio.open("/vsicurl/" + item["assets"][key]["href"]) as src:
            window = from_bounds(extent["west"], extent["south"], extent["east"], extent["north"], src.transform)
            window = window.round_offsets().round_lengths()
            if factor == 1:
                return src.read(1, window=window)
            # the output grid's pixels, factor × 100 m (SCL's own are 200 m)
            shape = (round((extent["north"] - extent["south"]) / (PIXEL * factor)),
                     round((extent["east"] - extent["west"]) / (PIXEL * factor)))
            return src.read(1, window=window, out_shape=shape)

    with ThreadPoolExecutor(max_workers=len(BANDS)) as pool:
        arrays = dict(zip(BANDS, pool.map(read, BANDS), strict=True))
    return {band: float(arrays[band].astype("float64").sum()) for band in ("red", "nir")}


def worker(variant: str, item_url: str, extent_json: str, factor: int) -> None:
    """One measured run: prints {"seconds", "sums"} as JSON."""
    extent = json.loads(extent_json)
    if variant.startswith("engine"):
        import stratus_processing.processes  # noqa: F401, PLC0415 - imports are not part of the measurement
        import stratus_processing.tiling  # noqa: F401, PLC0415
        import xarray  # noqa: F401, PLC0415 - the engine imports it on first use (0.4 s), once per process
    import rasterio  # noqa: F401, PLC0415
    started = time.perf_counter()
    if variant == "engine-tiled":
        sums = run_engine(item_url, extent, TILE_SIZE)
    elif variant.startswith("engine"):
        sums = run_engine(item_url, extent, factor=factor)
    else:
        sums = run_baseline(item_url, extent, factor)
    print(json.dumps({"seconds": time.perf_counter() - started, "sums": sums}))


# --- what the window needs --------------------------------------------------------------------------

def needed(path: Path, window: tuple[int, int, int, int], factor: int, output_factor: int = 1) -> dict[str, int]:
    """The tiles intersecting the window (given in 100 m pixels; the file's are `factor` times
    larger) of the level an output `output_factor` times coarser reads (the full resolution or the
    coarsest overview not coarser than the output): their bytes, the header's (the IFDs, before the
    first tile of any level), and the fewest requests that fetch both (one per run of neighbouring
    tiles in the file)."""
    import rasterio  # noqa: PLC0415

    row, col, height, width = window
    with rasterio.open(path) as src:
        levels = [f for f in src.overviews(1) if f * factor <= output_factor]
    level = len(levels) - 1 if levels else None
    factor *= levels[-1] if levels else 1

    def tile_index(src: Any) -> dict[tuple[int, int], tuple[int, int]]:
        tile_h, tile_w = src.block_shapes[0]
        return {(r, c): (int(src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1)),
                         int(src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1)))
                for r in range(-(-src.height // tile_h)) for c in range(-(-src.width // tile_w))}

    with rasterio.open(path) as src:
        header = min(offset for offset, _ in tile_index(src).values())
        for other in range(len(src.overviews(1))):
            with rasterio.open(path, overview_level=other) as overview:
                header = min(header, *(offset for offset, _ in tile_index(overview).values()))
    with rasterio.open(path, **({} if level is None else {"overview_level": level})) as src:
        tile_h, tile_w = src.block_shapes[0]
        full = tile_index(src)
    rows = range(row // factor // tile_h, ((row + height) // factor - 1) // tile_h + 1)
    cols = range(col // factor // tile_w, ((col + width) // factor - 1) // tile_w + 1)
    spans = sorted(full[(r, c)] for r in rows for c in cols)
    runs, end = 0, None
    for offset, size in spans:
        # Tiles a few bytes apart (the COG driver's 4-byte block leader and trailer) share a request.
        runs += end is None or offset - end > MERGE_GAP
        end = offset + size
    return {"tiles": len(spans), "tile_bytes": sum(size for _, size in spans), "header_bytes": header,
            "requests": 1 + runs}


# --- the measurement --------------------------------------------------------------------------------

def _measure(variant: str, server: Any, item_url: str, extent: dict[str, Any], factor: int) -> dict[str, Any]:
    server.reset_counters()
    completed = subprocess.run([sys.executable, "-m", "benchmarks.remote_read", "--worker", variant, item_url,
                                json.dumps(extent), str(factor)], cwd=REPO_ROOT, capture_output=True, text=True,
                               check=False,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{completed.stdout}\n{completed.stderr}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    by_path = server.stats_by_path()
    result["cogs"] = {name: by_path.get(f"/{_scene_path()}/{name}.tif") for name in BANDS.values()}
    result["requests"] = sum(s.requests for s in by_path.values())
    result["bytes"] = sum(s.bytes for s in by_path.values())
    result["log"] = [(r.method, r.path.rsplit("/", 1)[-1], r.range, r.status, r.bytes) for r in server.log]
    return result


def _scene_path() -> str:
    from tests.support_stac_server import S2_SCENE  # noqa: PLC0415

    return S2_SCENE


def main() -> None:
    from tests.support_stac_server import REAL_DATA, S2_SCENE, S2_SCENE_ID, earth_search_server  # noqa: PLC0415

    if not (REAL_DATA / S2_SCENE / "B04.tif").is_file():
        print(f"remote_read: skipped, {REAL_DATA} is absent (the real COGs ship in "
              "tests/fixtures/real/data/; STRATUS_REAL_DATA overrides)")
        return
    import rasterio  # noqa: PLC0415

    with rasterio.open(REAL_DATA / S2_SCENE / "B04.tif") as src:
        origin = (src.transform.c, src.transform.f)
    print(f"remote_read: S2 L2A red+nir+scl over HTTP, {LATENCY_S * 1000:.0f} ms per request, "
          f"{BANDWIDTH / 1e6:.0f} MB/s per connection, {os.cpu_count()} CPUs")
    with earth_search_server(REAL_DATA, latency_s=LATENCY_S, bandwidth_bytes_per_s=BANDWIDTH) as server:
        item_url = server.item_url("sentinel-2-l2a", S2_SCENE_ID)
        for name, (window, factor) in WINDOWS.items():
            extent = extent_of(window, origin)
            variants = ("baseline", "engine-coarse") if factor > 1 else (
                ("baseline", "engine", "engine-tiled") if name == TILED_WINDOW else ("baseline", "engine"))
            runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
            for _ in range(RUNS):
                for variant in variants:
                    runs[variant].append(_measure(variant, server, item_url, extent, factor))
            for variant in variants[1:]:
                if runs[variant][-1]["sums"] != runs["baseline"][-1]["sums"]:
                    raise SystemExit(f"remote_read: the {variant} run read other pixels than the baseline ({name})")
            need = {band: needed(REAL_DATA / S2_SCENE / f"{file}.tif", window, 2 if band == "scl" else 1, factor)
                    for band, file in BANDS.items()}
            _report(name, runs, need)


def _report(name: str, runs: dict[str, list[dict[str, Any]]], need: dict[str, dict[str, int]]) -> None:
    seconds = {variant: statistics.median(r["seconds"] for r in results) for variant, results in runs.items()}
    last = {variant: results[-1] for variant, results in runs.items()}
    print(f"  window {name}:")
    header = "    COG   needed: tiles, bytes (+ header), fewest requests" + "".join(
        f" | {variant}: requests, bytes" for variant in runs)
    print(header)
    for band, file in BANDS.items():
        n = need[band]
        line = (f"    {band:5s} {n['tiles']:3d} tiles {n['tile_bytes']:7d} B (+ {n['header_bytes']:5d} B), "
                f"{n['requests']:2d} requests")
        for variant in runs:
            stats = last[variant]["cogs"][file]
            line += f" | {' ' * (len(variant) - 7)}{stats.requests:3d} req {stats.bytes:7d} B ({stats.bytes / n['tile_bytes']:4.2f}×)"
        print(line)
    needed_bytes = sum(n["tile_bytes"] for n in need.values())
    with_headers = needed_bytes + sum(n["header_bytes"] for n in need.values())
    fewest = sum(n["requests"] for n in need.values())
    print(f"    all COGs: needed {needed_bytes} B in ≥ {fewest} requests (+ {sum(n['header_bytes'] for n in need.values())} "
          f"B of headers)")
    for variant in runs:
        cogs = last[variant]["cogs"].values()
        requests, sent = sum(s.requests for s in cogs), sum(s.bytes for s in cogs)
        target = f" (target ≤ {BYTES_TARGET})" if variant.startswith("engine") else ""
        ratio = seconds[variant] / seconds["baseline"]
        time_target = f" (target ≤ {TIME_TARGET})" if variant.startswith("engine") else ""
        print(f"    {variant:13s} {requests:3d} COG requests, {sent:7d} B = {sent / needed_bytes:4.2f}× needed{target} "
              f"({sent / with_headers:4.2f}× with headers); "
              f"{last[variant]['requests'] - requests} STAC request(s); wall {seconds[variant] * 1000:5.0f} ms "
              f"(median of {RUNS}) = {ratio:4.2f}× baseline{time_target}")
    if os.environ.get("REMOTE_READ_LOG"):
        for variant, result in last.items():
            print(f"    {variant} requests:")
            for entry in result["log"]:
                print("      ", *entry)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
