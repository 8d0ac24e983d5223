"""The shared logger and tracer, kept out of any handler package so domain and store code can log too.

The tracer is Powertools' X-Ray `Tracer` only when tracing is on: building it imports the X-Ray SDK (about
0.12 s of every cold start), so with tracing off (`POWERTOOLS_TRACE_DISABLED`, set by the stack when
`stratus:tracing` is false, and by the local runtime and the tests) a pass-through stand-in takes its place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="stratus")

_TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
_TRUE = {"1", "true", "yes", "on"}


class PassThroughTracer:
    """The part of Powertools' `Tracer` Stratus uses, doing nothing: decorators return the function unchanged."""

    def capture_lambda_handler(self, lambda_handler: Callable | None = None, **_options: Any) -> Callable:
        return lambda_handler if lambda_handler is not None else (lambda handler: handler)

    def capture_method(self, method: Callable | None = None, **_options: Any) -> Callable:
        return method if method is not None else (lambda function: function)

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def tracing_enabled(environ: os._Environ | dict[str, str] = os.environ) -> bool:
    """Whether traces are sent: not switched off by `POWERTOOLS_TRACE_DISABLED` and running in Lambda."""
    disabled = environ.get(_TRACE_DISABLED_ENV, "").strip().lower() in _TRUE
    return not disabled and "AWS_LAMBDA_FUNCTION_NAME" in environ


def _tracer() -> Any:
    if not tracing_enabled():
        return PassThroughTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service="stratus")


tracer = _tracer()
