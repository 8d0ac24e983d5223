"""The processes the engine implements: one function `(args, env)` per openEO process id.

    @process("ndvi")
    def ndvi(args: ProcessArgs, env: EvalEnv) -> xr.DataArray: ...

`ProcessArgs` gives typed access to the node's (already evaluated) arguments and raises the openEO
errors for missing or invalid ones, so process bodies stay about the computation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from stratus.errors import ProcessParameterInvalidException, ProcessParameterRequiredException

from stratus_processing.deferred import xr
from stratus_processing import cube as cubes

if TYPE_CHECKING:
    from stratus_processing.env import EvalEnv

ProcessFunction = Callable[["ProcessArgs", "EvalEnv"], Any]

_MISSING = object()


class Callback(ABC):
    """A child process graph passed as an argument (e.g. a reducer), called with its parameters."""

    parameter: str  # the argument name it was passed as, for error paths

    @abstractmethod
    def __call__(self, env: EvalEnv, **parameters: Any) -> Any: ...


class ProcessRegistry:
    """A set of process implementations; the engine uses `DEFAULT_REGISTRY`, tests may build their own."""

    def __init__(self) -> None:
        self._functions: dict[str, ProcessFunction] = {}

    def add(self, process_id: str, function: ProcessFunction) -> None:
        if process_id in self._functions:
            raise ValueError(f"process '{process_id}' is already registered")
        self._functions[process_id] = function

    def get(self, process_id: str) -> ProcessFunction | None:
        return self._functions.get(process_id)

    def __contains__(self, process_id: str) -> bool:
        return process_id in self._functions

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._functions))


DEFAULT_REGISTRY = ProcessRegistry()


def process(process_id: str,
            registry: ProcessRegistry = DEFAULT_REGISTRY) -> Callable[[ProcessFunction], ProcessFunction]:
    """Register the decorated function as the implementation of openEO process `process_id`."""

    def register(function: ProcessFunction) -> ProcessFunction:
        registry.add(process_id, function)
        return function

    return register


class ProcessArgs(Mapping[str, Any]):
    """The evaluated arguments of one node, with the node it belongs to (for errors and log paths)."""

    def __init__(self, arguments: Mapping[str, Any], *, process_id: str, node_id: str | None = None) -> None:
        self._arguments = dict(arguments)
        self.process_id = process_id
        self.node_id = node_id

    def __getitem__(self, name: str) -> Any:
        return self._arguments[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arguments)

    def __len__(self) -> int:
        return len(self._arguments)

    @property
    def path(self) -> list[dict[str, Any]] | None:
        """The openEO log `path` for entries this node writes."""
        return [{"node_id": self.node_id, "process_id": self.process_id}] if self.node_id else None

    def invalid(self, name: str, reason: str) -> ProcessParameterInvalidException:
        return ProcessParameterInvalidException(parameter=name, process=self.process_id, reason=reason)

    def get_required(self, name: str, *, expected_type: type | tuple[type, ...] | None = None) -> Any:
        """The argument's value (null allowed where the spec allows it: check `expected_type`)."""
        if name not in self._arguments:
            raise ProcessParameterRequiredException(process=self.process_id, parameter=name)
        return self._checked(name, self._arguments[name], expected_type)

    def get_optional(self, name: str, default: Any = None, *,
                     expected_type: type | tuple[type, ...] | None = None) -> Any:
        """The argument's value, or `default` when it is absent or null."""
        value = self._arguments.get(name, _MISSING)
        if value is _MISSING or value is None:
            return default
        return self._checked(name, value, expected_type)

    def get_enum(self, name: str, options: Mapping[str, Any] | list[str], *, default: Any = _MISSING,
                 case_sensitive: bool = True) -> Any:
        """A string argument that must be one of `options`; returns the option (its value, for a mapping)."""
        if default is not _MISSING and self._arguments.get(name) is None:
            return default
        value = self.get_required(name)
        if not isinstance(value, str):
            raise self.invalid(name, f"expected a string, got {_type_name(value)}")
        canonical = {(o if case_sensitive else o.lower()): o for o in options}
        key = value if case_sensitive else value.lower()
        if key not in canonical:
            raise self.invalid(name, f"'{value}' is not one of: {', '.join(options)}")
        option = canonical[key]
        return options[option] if isinstance(options, Mapping) else option

    def get_cube(self, name: str = "data") -> xr.DataArray:
        """A raster data cube argument (dims include y and x)."""
        value = self.get_required(name)
        if not cubes.is_cube(value):
            raise self.invalid(name, f"expected a raster data cube, got {_type_name(value)}")
        return value

    def get_callback(self, name: str) -> Callback:
        value = self.get_required(name)
        if not isinstance(value, Callback):
            raise self.invalid(name, f"expected a child process graph, got {_type_name(value)}")
        return value

    def _checked(self, name: str, value: Any, expected_type: type | tuple[type, ...] | None) -> Any:
        if expected_type is None or isinstance(value, expected_type):
            # bool is an int in Python, never in openEO
            if isinstance(value, bool) and expected_type is not None and not _allows_bool(expected_type):
                raise self.invalid(name, "expected a number, got a boolean")
            return value
        raise self.invalid(name, f"expected {_expected_name(expected_type)}, got {_type_name(value)}")


def _allows_bool(expected_type: type | tuple[type, ...]) -> bool:
    types = expected_type if isinstance(expected_type, tuple) else (expected_type,)
    return bool in types


def _expected_name(expected_type: type | tuple[type, ...]) -> str:
    types = expected_type if isinstance(expected_type, tuple) else (expected_type,)
    return " or ".join(_JSON_NAMES.get(t, t.__name__) for t in types)


_JSON_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
               dict: "an object", type(None): "null"}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, xr.DataArray):
        return "a raster data cube" if cubes.is_cube(value) else f"an array with dimensions {list(value.dims)}"
    if isinstance(value, Callback):
        return "a child process graph"
    return _JSON_NAMES.get(type(value), type(value).__name__)
