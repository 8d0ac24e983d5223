"""Where the static STAC catalog and job artefacts live in S3; shared by the API, the processing
container and the demo-data generator so the three never disagree about a key."""

from __future__ import annotations

from urllib.parse import quote

STAC_ROOT = "stac"


def collections_config_key() -> str:
    """The deployment's collections configuration (`stratus.collections_config`), in the data bucket."""
    return "config/collections.json"


def collections_cache_prefix() -> str:
    """The cached source documents of configured remote collections, in the data bucket (refresh-written)."""
    return "cache/collections/"


def collection_cache_key(collection_id: str) -> str:
    return f"{collections_cache_prefix()}{quote(collection_id, safe='')}.json"


def catalog_key() -> str:
    return f"{STAC_ROOT}/catalog.json"


def collection_key(collection_id: str) -> str:
    return f"{STAC_ROOT}/collections/{collection_id}/collection.json"


def items_prefix(collection_id: str) -> str:
    return f"{STAC_ROOT}/collections/{collection_id}/items/"


def item_key(collection_id: str, item_id: str) -> str:
    return f"{items_prefix(collection_id)}{item_id}.json"


def asset_key(collection_id: str, item_id: str, asset: str) -> str:
    return f"data/{collection_id}/{item_id}/{asset}.tif"


def job_prefix(job_id: str) -> str:
    """Everything all runs of a job wrote, in the results bucket (deleted with the job)."""
    return f"jobs/{job_id}/"


def runs_prefix(job_id: str) -> str:
    """The runs of a job, one folder each (`run_prefix`)."""
    return f"{job_prefix(job_id)}runs/"


def run_prefix(job_id: str, run_id: str) -> str:
    """Everything one run of a job writes, in the results bucket."""
    return f"{runs_prefix(job_id)}{run_id}/"


def graph_key(job_id: str, run_id: str) -> str:
    """The run snapshot (`stratus.run_contract.RunSnapshot`)."""
    return _graph_key(run_prefix(job_id, run_id))


def results_prefix(job_id: str, run_id: str) -> str:
    return _results_prefix(run_prefix(job_id, run_id))


def manifest_key(results_prefix_: str) -> str:
    """The processing writes this last: its presence means the run's outputs are complete."""
    return f"{results_prefix_}manifest.json"


def plan_key(results_prefix_: str) -> str:
    """A fanned-out run's tile manifest (`stratus.domain.fanout_plan.TileManifest`)."""
    return f"{results_prefix_}plan.json"


def load_plans_key(results_prefix_: str) -> str:
    """A fanned-out run's load plans, frozen by PlanRun for its tile steps (`stratus_processing.frozen_loads`)."""
    return f"{results_prefix_}loads.json"


def tile_items_key(results_prefix_: str) -> str:
    """The Distributed Map's items: the tiles to run, a bare JSON array."""
    return f"{results_prefix_}tiles.json"


def tile_prefix(results_prefix_: str, tile_id: str) -> str:
    """A tile task's outputs."""
    return f"{results_prefix_}tiles/{tile_id}/"


def tile_record_key(results_prefix_: str, tile_id: str) -> str:
    """The tile task writes this last (`stratus.run_contract.TileRecord`)."""
    return f"{tile_prefix(results_prefix_, tile_id)}record.json"


def partial_manifest_key(results_prefix_: str) -> str:
    """A fanned-out run with missing tiles: the results of its finished tiles and the missing ones."""
    return f"{results_prefix_}partial.json"


def sync_prefix(user_id: str, request_id: str) -> str:
    """What one synchronous request (`POST /result`) writes, in the results bucket."""
    return f"sync/{user_id}/{request_id}/"


def sync_graph_key(user_id: str, request_id: str) -> str:
    return _graph_key(sync_prefix(user_id, request_id))


def sync_results_prefix(user_id: str, request_id: str) -> str:
    return _results_prefix(sync_prefix(user_id, request_id))


def _graph_key(prefix: str) -> str:
    return f"{prefix}process_graph.json"


def _results_prefix(prefix: str) -> str:
    return f"{prefix}results/"


def user_files_prefix(user_id: str) -> str:
    """A user's workspace (`/files`), in the files bucket. The id is percent-encoded so that no user id
    (e.g. one containing `/`) can ever name a prefix inside another user's workspace."""
    return f"users/{quote(user_id, safe='')}/"


def user_file_key(user_id: str, path: str) -> str:
    """`path` must be validated first (`stratus.domain.files.validate_path`)."""
    return f"{user_files_prefix(user_id)}{path}"


def index_prefix() -> str:
    """The catalogue index (`stratus.adapters.parquet_index`): Parquet files per collection, in the data bucket."""
    return "index/items/"


def index_partition_prefix(collection_id: str) -> str:
    return f"{index_prefix()}{quote(collection_id, safe='')}/"


def ingest_prefix() -> str:
    """Item JSON put under `ingest/<collection id>/` in the data bucket is indexed (S3 event -> ingest queue)."""
    return "ingest/"
