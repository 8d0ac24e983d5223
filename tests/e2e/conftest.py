"""Starts the whole local system (`python -m stratus_local`) once for the e2e tests, on free ports."""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import sys
import threading
import time

import boto3
import openeo
import pytest
from botocore.config import Config

from tests.support import REPO_ROOT

STARTUP_TIMEOUT_S = 90


class RunningSystem:
    def __init__(self, process: subprocess.Popen, api_url: str, password: str, output: list[str]) -> None:
        self.process = process
        self.api_url = api_url
        self.user = "demo"
        self.password = password
        self.output = output

    def printed(self, label: str) -> str:
        """A value from the start banner, e.g. `printed("embedded AWS")`."""
        line = next(line for line in self.output if line.strip().startswith(f"{label}:"))
        return line.split(f"{label}:", 1)[1].strip()

    @property
    def endpoint_url(self) -> str:
        return self.printed("embedded AWS")

    @property
    def oidc_client(self) -> tuple[str, str]:
        """The machine client (client-credentials grant) of the local Cognito pool."""
        return self.printed("oidc client id"), self.printed("oidc client secret")


@pytest.fixture(scope="session")
def local_system():
    password = secrets.token_urlsafe(12)
    env = {**os.environ, "STRATUS_DEMO_PASSWORD": password, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "stratus_local", "--port", "0"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump():
        for line in process.stdout:
            output.append(line.rstrip())
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    api_url = None
    while api_url is None:
        remaining = STARTUP_TIMEOUT_S - (time.monotonic() - started)
        try:
            line = lines.get(timeout=max(0.1, remaining))
        except queue.Empty:
            line = ""
        if line.startswith("READY "):
            api_url = line.split()[1]
        elif process.poll() is not None or remaining <= 0:
            process.kill()
            pytest.fail("local system did not start:\n" + "\n".join(output[-60:]))
    print(f"\nlocal system ready in {time.monotonic() - started:.1f} s at {api_url}")
    system = RunningSystem(process, api_url, password, output)
    yield system
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def connection(local_system):
    """The real openEO client, logged in as the demo user."""
    return openeo.connect(local_system.api_url).authenticate_basic(local_system.user, local_system.password)


@pytest.fixture(scope="session")
def s3(local_system):
    """Direct access to the embedded S3, for computing references from the source data."""
    return boto3.client("s3", endpoint_url=local_system.endpoint_url, region_name="eu-central-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(signature_version="s3v4"))
