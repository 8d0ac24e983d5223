"""Operational metrics, written as CloudWatch embedded metric format (EMF) log lines by Powertools `Metrics`:
no API call, CloudWatch extracts them from the function's log. The stack's alarms and dashboard name the same
metrics (`infra/stratus_infra/monitoring.py`), so the names live here once.

The namespace is `POWERTOOLS_METRICS_NAMESPACE` (the stack sets `Stratus/<stage>`, so stages sharing an account
stay apart); Powertools adds a `service` dimension (the emitting function's key).
"""

from __future__ import annotations

import os
from typing import Any

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "Stratus"

LOST_RUNS_ENDED = "LostRunsEnded"  # runs the reaper found stuck (queued/running but lost) and ended
JOBS_ENDED = {"finished": "JobsFinished", "error": "JobsFailed", "canceled": "JobsCanceled"}  # by end status
JOB_DURATION = "JobDurationSeconds"  # a run's duration (its openEO `usage.duration`), when it ends

REAPER_SERVICE = "reaper"
STATUS_SERVICE = "status"


def namespace(stage: str | None = None) -> str:
    """The namespace of a stage (infra), or of this process (`NAMESPACE_ENV`, else the default)."""
    if stage is not None:
        return f"{DEFAULT_NAMESPACE}/{stage}"
    return os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


def emitter(service: str) -> Any:
    """Powertools `Metrics` of `service` (imported here: only the functions that emit pay for it)."""
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=namespace(), service=service)
