"""Preparing a run of a job (the state machine's PrepareJob task): the run snapshot frozen in S3 and
the pointers the Batch job gets, so the container reads only S3 and needs no table access."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from stratus.domain.jobs import Job
from stratus.domain.ml_models import ModelReferences
from stratus.domain.user_processes import UserProcesses, freeze_user_processes
from stratus.run_contract import RunConfig, RunSnapshot


class StaleRunError(Exception):
    """The job was restarted, canceled or deleted after this run began: the run must not process anything.
    The state machine's Catch turns it into an error event of this (no longer current) run, which the
    status consumer ignores. Lambda reports it by its class name: keep the name."""


class JobReader(Protocol):
    def get(self, job_id: str) -> Job | None: ...


class SnapshotWriter(Protocol):
    def write_snapshot(self, key: str, snapshot: RunSnapshot) -> None: ...


class RunPreparation:
    def __init__(self, jobs: JobReader, user_processes: UserProcesses, snapshots: SnapshotWriter,
                 models: ModelReferences | None = None) -> None:
        self._jobs = jobs
        self._user_processes = user_processes
        self._snapshots = snapshots
        self._models = models

    def prepare(self, job_id: str, run_id: str) -> RunConfig:
        """Freeze the job's process, with the user-defined processes it calls from its owner's store, for
        this run. Raises `StaleRunError` unless `run_id` is the job's current run."""
        job = self._jobs.get(job_id)
        if job is None or job.run_id != run_id:
            raise StaleRunError(f"job {job_id} has no current run {run_id}")
        run = RunConfig.for_run(job_id, run_id)
        snapshot = freeze_user_processes(job.process, self._user_processes.lookup_for(job.user_id))
        if self._models is not None:
            snapshot = replace(snapshot, ml_models=self._models.resolve(snapshot.graphs(), job.user_id))
        self._snapshots.write_snapshot(run.graph_key, snapshot)
        return run
