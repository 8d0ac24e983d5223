"""One API 'container' per thread: aws-lambda-powertools keeps the current request in class attributes
(`BaseRouter.current_event`, `lambda_context`) and per-resolver `context` dicts, which is right in Lambda
(one request per container at a time) but mixes requests up when the local HTTP front or a test calls
the handler from several threads at once. This makes that state per thread."""

from __future__ import annotations

import threading
from abc import ABCMeta
from typing import Any

_installed = False
_REQUEST_ATTRIBUTES = ("current_event", "lambda_context")


class _PerThread:
    """A class attribute whose value is per thread (read on the class or an instance)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._local = threading.local()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return getattr(self._local, "value", None)

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


class _PerThreadContext:
    """`self.context`: one dict per resolver and thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _dicts(self) -> dict[int, dict]:
        if not hasattr(self._local, "dicts"):
            self._local.dicts = {}
        return self._local.dicts

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return self._dicts().setdefault(id(obj), {})

    def __set__(self, obj: Any, value: dict) -> None:
        self._dicts()[id(obj)] = value


class _RouterMeta(ABCMeta):
    def __setattr__(cls, name: str, value: Any) -> None:
        descriptor = cls.__dict__.get(name)
        if isinstance(descriptor, _PerThread):
            descriptor.__set__(None, value)
        else:
            super().__setattr__(name, value)


def isolate_request_state() -> None:
    global _installed
    if _installed:
        return
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    for name in _REQUEST_ATTRIBUTES:
        type.__setattr__(BaseRouter, name, _PerThread(name))
    type.__setattr__(BaseRouter, "context", _PerThreadContext())
    BaseRouter.__class__ = _RouterMeta
    _installed = True
