"""The combine step of a fanned-out run (docs/fanout.md): from the run's `plan.json` and the record
of every tile (this run's, or for a tile this run did not redo, the previous run's) it writes the
run's results.

- Every tile finished: the `ResultsManifest` holds one asset per tile file (named
  `{file}_{tile_id}.tif`, with its own bbox and footprint: the results API gives one STAC Item per
  tile) and, per GTiff output, a mosaic `{file}.vrt` over them that opens as one file. The VRT is
  written here as XML (what `gdalbuildvrt` writes for aligned tiles without overlap: one
  SimpleSource per tile) rather than by GDAL: rasterio has no VRT builder and GDAL's Python
  bindings are not in the image; the grid is the plan's and every tile is a window of it, so there
  is nothing to compute. The VRT names the tiles by their asset names relative to itself, so the
  downloaded results (a folder of files named by asset) open as one raster. `aggregate_spatial`
  outputs are written by the graph's own `save_result`, evaluated here on the vector cube combined
  from the tiles' parts (`partials`); usage is summed over the tiles.
- Some tile missing or failed: `partial.json` (the finished tiles' assets plus `missing`), the
  `error` status naming the failed tiles, exit code 1.
"""

from __future__ import annotations

import html
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rasterio.crs import CRS
from stratus import catalog_layout
from stratus.adapters.s3_json import read_json, write_json
from stratus.domain.fanout_plan import TileManifest
from stratus.events import EventPublisher, JobStatus, LogLevel
from stratus.file_formats import GTIFF, MEDIA_TYPES
from stratus.run_contract import ResultsManifest, RunConfig, RunContractError, TileRecord
from stratus.settings import Settings
from stratus.tiling_rules import SAVE_PROCESS

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.fanout import FanoutStep, read_plan
from stratus_processing.graph import ProcessGraph, evaluate_process
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.save import save_json
from stratus_processing.manifest import build_manifest
from stratus_processing.partials import Parts
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessRegistry
from stratus_processing.results import ResultStore, S3ResultStore
from stratus_processing.run_credentials import ResultsAccess, SharedResults

logger = logging.getLogger("stratus_processing")

EXIT_OK = 0
EXIT_FAILED = 1

# GDAL VRT has no registered media type; it is XML, and GDAL, QGIS and rasterio open it by content.
VRT_MEDIA_TYPE = "application/xml"
GTIFF_MEDIA_TYPE = MEDIA_TYPES[GTIFF]
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32", "float64": "Float64"}
# How many failed tiles the job's error reason names (the partial results list all of them).
NAMED_FAILURES = 5


@dataclass(frozen=True)
class MissingTile:
    tile_id: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"tile_id": self.tile_id, "reason": self.reason}


@dataclass(frozen=True)
class TileOutcomes:
    finished: list[TileRecord]
    missing: list[MissingTile]
    reused: list[str]  # tiles whose record is the previous run's
    spent: list[Mapping[str, Any]]  # the usage of this run's tile tasks, finished or failed


def read_records(s3: Any, bucket: str, manifest: TileManifest, results_prefix: str,
                 previous_prefix: str | None = None) -> TileOutcomes:
    """Every tile's record: this run's, else (a restarted run) the previous run's finished one."""
    finished, missing, reused, spent = [], [], [], []
    for tile in manifest.tiles:
        record = _record(s3, bucket, results_prefix, tile.tile_id)
        if record is not None:
            spent.append(record.usage)
        if (record is None or not record.finished) and previous_prefix:
            earlier = _record(s3, bucket, previous_prefix, tile.tile_id)
            if earlier is not None and earlier.finished:
                record = earlier
                reused.append(tile.tile_id)
        if record is None:
            missing.append(MissingTile(tile.tile_id, "the tile's task did not finish"))
        elif not record.finished:
            missing.append(MissingTile(tile.tile_id, str((record.error or {}).get("message") or "failed")))
        else:
            finished.append(record)
    return TileOutcomes(finished, missing, reused, spent)


def _record(s3: Any, bucket: str, prefix: str, tile_id: str) -> TileRecord | None:
    document = read_json(s3, bucket, catalog_layout.tile_record_key(prefix, tile_id))
    if document is None:
        return None
    try:
        return TileRecord.from_json(document)
    except RunContractError as exc:
        return TileRecord(tile_id, "error", error={"code": "Internal", "message": f"unreadable record: {exc}"})


# --- assets ---------------------------------------------------------------------------------------

def tile_asset_name(name: str, tile_id: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}_{tile_id}.{suffix}" if dot else f"{name}_{tile_id}"


def tile_assets(records: Sequence[TileRecord]) -> dict[str, dict[str, Any]]:
    """One asset per tile file, named after the file and its tile."""
    return {tile_asset_name(name, record.tile_id): {**asset, "title": f"{asset.get('title', name)}, tile "
                                                                      f"{record.tile_id}"}
            for record in records for name, asset in record.assets.items()}


def mosaic_vrt(manifest: TileManifest, records: Sequence[TileRecord], name: str) -> tuple[str, dict[str, Any]]:
    """The VRT over the tiles' `name` GTiffs (every tile has one) and its asset (without key and size)."""
    windows = {tile.tile_id: tile.window for tile in manifest.tiles}
    sources = [(record.tile_id, record.assets[name]) for record in records]
    first_id, first = sources[0]
    a, b, c, d, e, f = first["proj:transform"][:6]
    window = windows[first_id]
    # the grid's north-west corner, from any tile's transform and its window in the grid
    c, f = c - window.col_off * a - window.row_off * b, f - window.col_off * d - window.row_off * e
    crs = CRS.from_epsg(first["proj:epsg"]) if first.get("proj:epsg") else CRS.from_wkt(first["proj:wkt2"])
    bands = first.get("raster:bands") or []
    descriptions = [band.get("name", "") for band in first.get("eo:bands") or []]
    lines = [f'<VRTDataset rasterXSize="{manifest.grid_width}" rasterYSize="{manifest.grid_height}">',
             f'  <SRS dataAxisToSRSAxisMapping="1,2">{html.escape(crs.to_wkt())}</SRS>',
             f"  <GeoTransform>{c!r}, {a!r}, {b!r}, {f!r}, {d!r}, {e!r}</GeoTransform>"]
    for index, band in enumerate(bands, start=1):
        data_type = _GDAL_TYPES[band["data_type"]]
        lines.append(f'  <VRTRasterBand dataType="{data_type}" band="{index}">')
        lines.append(f"    <NoDataValue>{band['nodata']}</NoDataValue>")
        if index <= len(descriptions) and descriptions[index - 1]:
            lines.append(f"    <Description>{html.escape(descriptions[index - 1])}</Description>")
        for tile_id, asset in sources:
            w = windows[tile_id]
            lines += ["    <SimpleSource>",
                      f'      <SourceFilename relativeToVRT="1">{html.escape(tile_asset_name(name, tile_id))}'
                      f"</SourceFilename>",
                      f"      <SourceBand>{index}</SourceBand>",
                      f'      <SourceProperties RasterXSize="{w.width}" RasterYSize="{w.height}" '
                      f'DataType="{data_type}"/>',
                      f'      <SrcRect xOff="0" yOff="0" xSize="{w.width}" ySize="{w.height}"/>',
                      f'      <DstRect xOff="{w.col_off}" yOff="{w.row_off}" xSize="{w.width}" ySize="{w.height}"/>',
                      "    </SimpleSource>"]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    asset = {key: value for key, value in first.items()
             if key not in ("key", "file:size", "file:checksum", "bbox", "geometry", "proj:shape",
                            "proj:transform", "proj:bbox", "raster:bands")}
    asset.update({"type": VRT_MEDIA_TYPE, "roles": ["data"], "title": f"{first.get('title', name)} (mosaic of "
                  f"{len(sources)} tiles, GDAL VRT)", "proj:shape": [manifest.grid_height, manifest.grid_width],
                  "proj:transform": [a, b, c, d, e, f],
                  "bbox": _union([asset["bbox"] for _, asset in sources if asset.get("bbox")]),
                  "raster:bands": _merged_bands([asset.get("raster:bands") or [] for _, asset in sources],
                                                [math.prod(asset.get("proj:shape") or [0]) for _, asset in sources])})
    west, south, east, north = asset["bbox"]
    asset["geometry"] = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                             [west, north], [west, south]]]}
    width, height = manifest.grid_width, manifest.grid_height
    x0, y1 = c, f
    x1, y0 = c + a * width + b * height, f + d * width + e * height
    asset["proj:bbox"] = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
    return "\n".join(lines) + "\n", asset


def _union(boxes: list[list[float]]) -> list[float]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _merged_bands(per_tile: list[list[dict[str, Any]]], pixels: list[int]) -> list[dict[str, Any]]:
    """The bands' STAC statistics over all tiles (count from `valid_percent`, rounded to 0.01 %: the
    mosaic's statistics are as precise as a rounded percentage allows)."""
    merged = []
    for index, band in enumerate(per_tile[0]):
        total = count = 0
        mean = m2 = 0.0
        low, high = math.inf, -math.inf
        for bands, size in zip(per_tile, pixels, strict=True):
            statistics = bands[index].get("statistics") or {}
            n = round(size * statistics.get("valid_percent", 0) / 100)
            total += size
            if n and "mean" in statistics:
                delta = statistics["mean"] - mean
                new_count = count + n
                mean += delta * n / new_count
                m2 += statistics.get("stddev", 0.0) ** 2 * n + delta * delta * count * n / new_count
                count = new_count
                low, high = min(low, statistics["minimum"]), max(high, statistics["maximum"])
        statistics = {"valid_percent": round(100.0 * count / total, 2) if total else 0}
        if count:
            statistics.update(minimum=low, maximum=high, mean=mean, stddev=math.sqrt(max(m2, 0.0) / count))
        merged.append({**band, "statistics": statistics})
    return merged


# --- aggregate_spatial ----------------------------------------------------------------------------

def combine_graph(process: Mapping[str, Any]) -> dict[str, Any] | None:
    """The part of the graph the combine step evaluates: the aggregate_spatial nodes (without their
    raster `data`, which the tiles had) and what follows them; None when the graph has none."""
    graph = ProcessGraph(process["process_graph"])
    aggregates = {n for n, node in graph.nodes.items() if node.process_id == "aggregate_spatial"}
    if not aggregates:
        return None
    flat = {node_id: dict(spec) for node_id, spec in process["process_graph"].items()}
    for node_id in aggregates:
        flat[node_id]["arguments"] = {**flat[node_id]["arguments"], "data": None}
    downstream = set(aggregates)
    changed = True
    while changed:
        changed = False
        for node_id, spec in flat.items():
            if node_id not in downstream and _references(spec.get("arguments"), downstream):
                downstream.add(node_id)
                changed = True
    ends = [n for n in graph.end_node_ids if n in downstream]
    needed: set[str] = set()
    pending = list(ends)
    while pending:
        node_id = pending.pop()
        if node_id not in needed:
            needed.add(node_id)
            pending.extend(_referenced(flat[node_id].get("arguments")))
    result_id = graph.result_node_id if graph.result_node_id in needed else ends[-1]
    pruned = {n: {**spec, "result": n == result_id} for n, spec in flat.items() if n in needed}
    return {**process, "process_graph": pruned}


def _referenced(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        if isinstance(value.get("from_node"), str):
            return {value["from_node"]}
        if "process_graph" in value:
            return set()
        return {ref for item in value.values() for ref in _referenced(item)}
    if isinstance(value, list):
        return {ref for item in value for ref in _referenced(item)}
    return set()


def _references(value: Any, nodes: set[str]) -> bool:
    return bool(_referenced(value) & nodes)


def merged_partials(records: Sequence[TileRecord]) -> dict[str, Any]:
    """Per aggregate_spatial node the tiles' parts merged (`partials.Parts` under "parts")."""
    by_node: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        for node_id, document in record.partials.items():
            by_node[node_id].append(document)
    merged = {}
    for node_id, documents in by_node.items():
        merged[node_id] = {**documents[0], "parts": Parts.merged([Parts.from_json(d) for d in documents])}
    return merged


def evaluate_combined(process: Mapping[str, Any], env: EvalEnv, records: Sequence[TileRecord], *,
                      registry: ProcessRegistry = DEFAULT_REGISTRY) -> None:
    """Write the graph's vector outputs from the tiles' aggregate_spatial parts into `env.results`."""
    pruned = combine_graph(process)
    if pruned is None:
        return
    # the job's progress is the map run's; the combine step reports only its end (100)
    env = replace(env, fanout=FanoutStep(combining=True, partials=merged_partials(records)),
                  reporter=_WithoutProgress(env.reporter))
    store = env.require_results()
    before = len(store.assets)
    result = evaluate_process(pruned, env, registry=registry)
    has_save = any(spec.get("process_id") == SAVE_PROCESS for spec in process["process_graph"].values())
    if not has_save and len(store.assets) == before and not cubes.is_cube(result):
        env.reporter.log("The process graph has no save_result: saving the result as JSON")
        save_json(result, store)


class _WithoutProgress:
    def __init__(self, reporter: Any) -> None:
        self._reporter = reporter

    def log(self, message: str, **kwargs: Any) -> None:
        self._reporter.log(message, **kwargs)

    def progress(self, fraction: float) -> None:
        pass


# --- the step -------------------------------------------------------------------------------------

def summed_usage(usages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """openEO usage summed over tasks (peak memory: the largest task's)."""
    total: dict[str, Any] = {}
    for usage in usages:
        for name, entry in usage.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("value"), (int, float)):
                continue
            if name not in total:
                total[name] = dict(entry)
            elif name == "max_memory":
                total[name]["value"] = max(total[name]["value"], entry["value"])
            else:
                total[name]["value"] = round(total[name]["value"] + entry["value"], 3)
    return total


def failure_reason(missing: Sequence[MissingTile], tiles: int) -> str:
    named = ", ".join(f"{m.tile_id} ({m.reason})" for m in missing[:NAMED_FAILURES])
    more = f" and {len(missing) - NAMED_FAILURES} more" if len(missing) > NAMED_FAILURES else ""
    return f"{len(missing)} of {tiles} tiles failed: {named}{more}"


def combine_results(manifest: TileManifest, outcomes: TileOutcomes, process: Mapping[str, Any], env: EvalEnv,
                    store: ResultStore, *, registry: ProcessRegistry = DEFAULT_REGISTRY) -> ResultsManifest:
    """The run's ResultsManifest (written by the caller) from the tiles; with tiles missing, only the
    finished tiles' files (no mosaic, no aggregate: they would be incomplete)."""
    assets = tile_assets(outcomes.finished)
    if not outcomes.missing:
        evaluate_combined(process, env, outcomes.finished, registry=registry)
        names = sorted({name for record in outcomes.finished for name, asset in record.assets.items()
                        if asset.get("type") == GTIFF_MEDIA_TYPE})
        for name in names:
            with_file = [record for record in outcomes.finished if name in record.assets]
            if len(with_file) != len(outcomes.finished):
                env.reporter.log(f"No mosaic of {name}: {len(outcomes.finished) - len(with_file)} tile(s) have no "
                                 f"such file", level=LogLevel.WARNING)
                continue
            document, vrt = mosaic_vrt(manifest, with_file, name)
            vrt_name = f"{name.rpartition('.')[0] or name}.vrt"
            published = store.publish(vrt_name, VRT_MEDIA_TYPE, lambda path, text=document: path.write_text(text))
            assets[vrt_name] = {"key": published.key, **vrt, "file:size": published.size,
                                "file:checksum": published.checksum}
    combined = build_manifest(store.assets)
    assets.update(combined.assets)
    boxes = [a["bbox"] for a in assets.values() if a.get("bbox")]
    bbox = _union(boxes) if boxes else None
    starts = [a.get("start_datetime") or a.get("datetime") for a in assets.values()]
    ends = [a.get("end_datetime") or a.get("datetime") for a in assets.values()]
    properties: dict[str, Any] = {"datetime": None, "start_datetime": min(filter(None, starts), default=None),
                                  "end_datetime": max(filter(None, ends), default=None)}
    epsgs = {a.get("proj:epsg") for a in assets.values() if a.get("proj:shape")}
    if len(epsgs) == 1 and None not in epsgs:
        properties["proj:epsg"] = epsgs.pop()
    geometry = None
    if bbox:
        west, south, east, north = bbox
        geometry = {"type": "Polygon",
                    "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}
    return ResultsManifest(assets=assets, bbox=bbox, geometry=geometry, properties=properties)


def run_combine(config: RunConfig, settings: Settings, *, s3: Any, publisher: EventPublisher,
                rasters: RasterReader | None = None, previous_results_prefix: str | None = None,
                registry: ProcessRegistry = DEFAULT_REGISTRY, results: ResultsAccess | None = None) -> int:
    """The combine step; returns the process exit code. Never raises for a failing run. `s3` reads the input
    data; `results` gives the run's results-bucket client (default: `s3` too), which may also read the previous
    run's results (its reused tiles' records)."""
    from stratus_processing.runner import (EventReporter, UsageMeter, engine_catalog, load_snapshot,
                                          report_failure)

    with UsageMeter() as meter:
        reporter = EventReporter(publisher, config.job_id, config.run_id)
        try:
            data_s3 = s3
            s3 = (results or SharedResults(data_s3)).client(
                config, read_prefixes=[previous_results_prefix] if previous_results_prefix else [])
            manifest = read_plan(s3, settings.results_bucket, config.results_prefix)
            outcomes = read_records(s3, settings.results_bucket, manifest, config.results_prefix,
                                    previous_results_prefix)
            reporter.log(f"Combining {len(outcomes.finished)} of {len(manifest.tiles)} tiles"
                         + (f" ({len(outcomes.reused)} from the previous run)" if outcomes.reused else ""))
            snapshot = load_snapshot(s3, settings.results_bucket, config.graph_key)
            store = S3ResultStore(s3, settings.results_bucket, config.results_prefix)
            env = EvalEnv(catalog=engine_catalog(settings, data_s3), rasters=rasters, results=store,
                          reporter=reporter, user_processes=snapshot.user_processes)
            combined = combine_results(manifest, outcomes, snapshot.process, env, store, registry=registry)
            # this run's tasks only: a restarted run's reused tiles were the previous run's usage
            usage = summed_usage([*outcomes.spent, meter.usage()])
            if outcomes.missing:
                key = catalog_layout.partial_manifest_key(config.results_prefix)
                write_json(s3, settings.results_bucket, key,
                           {**combined.to_json(), "missing": [m.to_json() for m in outcomes.missing]})
                reason = failure_reason(outcomes.missing, len(manifest.tiles))
                reporter.log(reason, level=LogLevel.ERROR)
                reporter.status(JobStatus.ERROR, reason=reason, usage=usage)
                return EXIT_FAILED
            manifest_key = store.write_manifest(combined)
            reporter.log(f"Results complete: {len(combined.assets)} file(s) from {len(manifest.tiles)} tiles, "
                         f"manifest at {manifest_key}")
            reporter.status(JobStatus.RUNNING, progress=100, usage=usage)
            return EXIT_OK
        except Exception as exc:  # noqa: BLE001 - every failure must reach the job log and status
            report_failure(reporter, exc, usage=meter.usage())
            return EXIT_FAILED

