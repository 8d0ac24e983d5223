"""A moto server with the local runtime's seams (Step Functions execution, Lambda tasks in-process, Batch
jobs as local processes), for integration tests that run ASL the way `make run` does."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any
from contextlib import contextmanager

import boto3
import pytest
from stratus_local import moto_seams as ms


class LocalBatch:
    """Runs Batch jobs as local processes (`python` is this interpreter) and remembers them by job id."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}
        self.specs: dict[str, ms.BatchJobSpec] = {}

    def __call__(self, spec: ms.BatchJobSpec) -> subprocess.Popen:
        command = list(spec.command)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        proc = subprocess.Popen(command, env={**os.environ, **spec.environment}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[spec.job_id] = proc
        self.specs[spec.job_id] = spec
        return proc

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()


@contextmanager
def seamed_moto_server(resolve: Callable[[ms.LambdaFunctionInfo], Callable], batch: LocalBatch, *,
                       region: str, kill_grace_s: float) -> Iterator[str]:
    """Yields the server's URL (also in AWS_ENDPOINT_URL meanwhile); undoes every seam and setting after."""
    from moto.core.config import default_user_config

    saved_config = copy.deepcopy(default_user_config)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": region,
                            "MOTO_PORT": "0"}.items():  # recorded, so the context restores it
            mp.setenv(name, value)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        ms.enable_stepfunctions_execution(sync_poll_interval_s=0.1)
        ms.install_lambda_seam(resolve)
        ms.install_batch_seam(batch, kill_grace_s=kill_grace_s)
        server, url = ms.start_moto_server()
        mp.setenv("AWS_ENDPOINT_URL", url)
        try:
            yield url
        finally:
            batch.kill_all()
            server.stop()
            ms.uninstall_seams()
            default_user_config.clear()
            default_user_config.update(saved_config)


def clients_of(url: str, monkeypatch: pytest.MonkeyPatch, *, region: str,
               config: Any) -> Callable[..., Any]:
    """`client(service, **kw)` for the server at `url`; tests/conftest.py sets fake credentials per test, so the
    endpoint is set per test too."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    session = boto3.session.Session(region_name=region)
    return lambda service, **kw: session.client(service, config=kw.pop("config", config), **kw)
