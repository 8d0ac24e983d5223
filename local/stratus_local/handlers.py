"""Loads the Lambda handlers from `functions/` the way the Lambda runtime does: by file, per function
(and, for functions packaged as the processing image, by their dotted path).

Every function has an `app.py`, so each is imported under its own module name; the function's
directory goes on `sys.path` for its sibling packages (the API's `routers`), as in the Lambda task root.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from stratus.resources import FUNCTIONS, FunctionSpec
from stratus_local.powertools_threads import isolate_request_state

REPO_ROOT = Path(__file__).resolve().parents[2]

_lock = threading.Lock()
_loaded: dict[str, Callable[[dict, Any], Any]] = {}


def load_handler(spec: FunctionSpec) -> Callable[[dict, Any], Any]:
    """Parallel invocations run in parallel threads, each like its own Lambda container as far as the
    request state of aws-lambda-powertools goes (`isolate_request_state`)."""
    isolate_request_state()
    with _lock:
        if spec.logical_name not in _loaded and spec.packaging == "image":
            # inside the container image the handler is an installed package, as it is in this venv
            module_name, function_name = spec.handler.rsplit(".", 1)
            _loaded[spec.logical_name] = getattr(importlib.import_module(module_name), function_name)
        if spec.logical_name not in _loaded:
            code_dir = REPO_ROOT / spec.code_dir
            module_name, function_name = spec.handler.rsplit(".", 1)
            if str(code_dir) not in sys.path:
                sys.path.insert(0, str(code_dir))
            unique_name = f"stratus_fn_{spec.logical_name}"
            module_spec = importlib.util.spec_from_file_location(unique_name, code_dir / f"{module_name}.py")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique_name] = module
            module_spec.loader.exec_module(module)
            _loaded[spec.logical_name] = getattr(module, function_name)
        return _loaded[spec.logical_name]


def handler_for_function_name(function_name: str) -> Callable[[dict, Any], Any]:
    """Maps a deployed function name (`stratus-<key>`) back to its spec."""
    for key, spec in FUNCTIONS.items():
        if function_name in (local_function_name(key), spec.logical_name):
            return load_handler(spec)
    raise KeyError(f"no Stratus function named {function_name}")


def local_function_name(key: str) -> str:
    return f"stratus-{key.replace('_', '-')}"
