"""The access declarations of `stratus.resources`: they name only what exists, and object grants follow the
S3 layout (`stratus.catalog_layout`). The synthesized policies are checked in `tests/infra/test_access.py`."""

from __future__ import annotations

import pytest

from stratus import catalog_layout, resources
from stratus.resources import (
    BUCKETS,
    DELETE,
    FUNCTIONS,
    PROCESSING_ACCESS,
    QUEUES,
    READ,
    SECRETS,
    STATE_MACHINE_ACCESS,
    WRITE,
    layout_root,
)
from stratus.store.models import TABLES

ACCESSES = {**{f"function {key}": spec.access for key, spec in FUNCTIONS.items()},
            "processing job": PROCESSING_ACCESS, "state machine": STATE_MACHINE_ACCESS}
ROOTS = {resources.JOBS_ROOT, resources.SYNC_ROOT, resources.USERS_ROOT, resources.CONFIG_ROOT,
         resources.COLLECTIONS_CACHE_ROOT, resources.CATALOG_ROOT, resources.INDEX_ROOT, resources.INGEST_ROOT}


@pytest.mark.parametrize("user_id", ["alice", "a/b", "../x", "ü ber", ""])
def test_layout_roots_prefix_every_key_of_their_layout(user_id: str) -> None:
    # Given ids of any shape / When building keys with the layout / Then they start with the granted roots
    assert catalog_layout.run_prefix(user_id or "j", "r").startswith(resources.JOBS_ROOT)
    assert catalog_layout.graph_key("j", user_id or "r").startswith(resources.JOBS_ROOT)
    assert catalog_layout.sync_prefix(user_id, "r-1").startswith(resources.SYNC_ROOT)
    assert catalog_layout.user_file_key(user_id, "x.tif").startswith(resources.USERS_ROOT)
    assert catalog_layout.index_partition_prefix(user_id or "c").startswith(resources.INDEX_ROOT)
    assert catalog_layout.collection_key(user_id or "c").startswith(resources.CATALOG_ROOT)
    assert (resources.JOBS_ROOT, resources.SYNC_ROOT, resources.USERS_ROOT) == ("jobs/", "sync/", "users/")


def test_layout_root_refuses_a_layout_without_a_constant_folder() -> None:
    with pytest.raises(ValueError):
        layout_root(lambda job_id: f"{job_id}/results/")


@pytest.mark.parametrize("name", sorted(ACCESSES))
def test_access_names_only_what_exists(name: str) -> None:
    access = ACCESSES[name]
    for entry in access.tables:
        assert entry.table in TABLES and entry.modes and entry.modes <= {READ, WRITE}, entry
    for entry in access.objects:
        assert entry.bucket in BUCKETS and entry.modes and entry.modes <= {READ, WRITE, DELETE}, entry
        assert entry.prefix in ROOTS | {resources.WHOLE_BUCKET}, entry
    assert set(access.secrets) <= set(SECRETS)
    assert set(access.sends_to) <= set(QUEUES)
    assert set(access.invokes) <= set(FUNCTIONS)
    assert all(action.startswith("states:") for action in access.state_machine)
    assert all(action.startswith("batch:") for action in access.batch)


@pytest.mark.parametrize("name", sorted(ACCESSES))
def test_nothing_writes_the_data_bucket_or_a_whole_bucket(name: str) -> None:
    """Except the collections refresh, which writes the remote collections' metadata cache and nothing else, and
    the indexer, which writes (and compacts) the catalogue index and nothing else."""
    for entry in ACCESSES[name].objects:
        if entry.modes & {WRITE, DELETE}:
            assert entry.prefix != resources.WHOLE_BUCKET, entry
            if entry.bucket == "data":
                assert (name, entry.prefix, entry.modes) in (
                    ("function collections_refresh", resources.COLLECTIONS_CACHE_ROOT, {WRITE}),
                    ("function indexer", resources.INDEX_ROOT, {READ, WRITE, DELETE})), entry
