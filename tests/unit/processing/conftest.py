"""Fixtures of the processing engine tests: the demo collection on disk, evaluation environments."""

from __future__ import annotations

import pytest
from stratus_local.demo_data import generate_demo_collection
from stratus_processing.env import EvalEnv
from stratus_processing.io.cog import RasterReader
from stratus_processing.io.stac import S3JsonStore, StacCatalog
from stratus_processing.reporting import RecordingReporter
from stratus_processing.results import DirectoryResultStore

from tests.unit.processing.processing_testkit import DirectoryS3

DEMO_BUCKET = "demo-data"


@pytest.fixture(scope="session")
def demo_s3(tmp_path_factory) -> DirectoryS3:
    """The demo collection, generated once per session into a directory posing as S3."""
    s3 = DirectoryS3(tmp_path_factory.mktemp("demo-s3"))
    generate_demo_collection(s3, DEMO_BUCKET)
    return s3


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def result_store(tmp_path) -> DirectoryResultStore:
    return DirectoryResultStore(tmp_path / "results", prefix="jobs/j-1/runs/r-1/results/")


@pytest.fixture
def demo_env(demo_s3, result_store, reporter) -> EvalEnv:
    """An environment reading the demo collection and writing results to a temporary directory."""
    return EvalEnv(catalog=StacCatalog(S3JsonStore(demo_s3, DEMO_BUCKET)),
                   rasters=RasterReader(resolve_href=demo_s3.resolve_href),
                   results=result_store, reporter=reporter)
