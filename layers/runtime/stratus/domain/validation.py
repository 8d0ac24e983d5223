"""openEO `POST /validation`: check a process against the process specs and report every error found.

Pure Python (no numpy): it runs in the API function. What is checked, per node and in callbacks:
the process exists (predefined, or one of the user's own), required parameters are given, no
unknown parameters are passed, `from_node` points at a node of the same graph, `from_parameter`
names a parameter in scope (the process' own, a callback's, or an enclosing one), each graph has
exactly one result node, literal scalar values match the types of the parameter's schema, and
`load_collection` names a collection this back-end offers (when the caller passes `collection_exists`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stratus.domain.processes import has_process_graph, predefined_processes
from stratus.domain.user_processes import USER_NAMESPACES, Lookup, node_cycle, user_process_cycle
from stratus.errors import (
    CollectionNotFoundException,
    OpenEOApiException,
    ProcessGraphInvalidException,
    ProcessGraphMissingException,
    ProcessParameterInvalidException,
    ProcessParameterRequiredException,
    ProcessParameterUnsupportedException,
    ProcessUnsupportedException,
)

_BACKEND_NAMESPACES = (None, "backend")
# Parameters the spec requires but the engine defaults, because the openeo client leaves them out by default
# (`max_variables=None`: a third of the predictors, as the client documents it).
ENGINE_DEFAULTS: dict[str, tuple[str, ...]] = {
    "fit_class_random_forest": ("max_variables",),
    "fit_regr_random_forest": ("max_variables",),
}
# JSON schema type -> test of a literal (bool is no number in JSON)
_TYPE_CHECKS = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _predefined_specs() -> dict[str, Mapping[str, Any]]:
    return {spec["id"]: spec for spec in predefined_processes()}


def validate_process(process: Any, lookup: Lookup,
                     collection_exists: Callable[[str], bool] | None = None) -> list[OpenEOApiException]:
    """All errors of a process (`{"process_graph", "parameters"?...}`); an empty list if it is valid.
    `collection_exists` (by id or alias) checks the literal collection ids of `load_collection`."""
    if not has_process_graph(process):
        return [ProcessGraphMissingException()]
    declared = {p["name"] for p in process.get("parameters") or [] if isinstance(p, Mapping) and "name" in p}
    validator = _Validator(_predefined_specs(), lookup, collection_exists)
    validator.graph(process["process_graph"], frozenset(declared), path="")
    own_id = process.get("id") if isinstance(process.get("id"), str) else None
    calls = user_process_cycle(process["process_graph"], lookup, own_id)
    if calls is not None:
        validator.errors.append(ProcessGraphInvalidException(
            message="Invalid process graph specified: user-defined processes call themselves "
                    f"({' -> '.join(calls)}); recursion is not supported."))
    return validator.errors


class _Validator:
    def __init__(self, specs: dict[str, Mapping[str, Any]], lookup: Lookup,
                 collection_exists: Callable[[str], bool] | None = None) -> None:
        self._specs = specs
        self._lookup = lookup
        self._collection_exists = collection_exists
        self._collections_seen: dict[str, bool] = {}
        self._user_specs: dict[str, Mapping[str, Any] | None] = {}
        self.errors: list[OpenEOApiException] = []

    def graph(self, graph: Mapping[str, Any], scope: frozenset[str], path: str) -> None:
        results = [node_id for node_id, node in graph.items() if isinstance(node, Mapping) and node.get("result")]
        where = f" in the callback of {path}" if path else ""
        if len(results) != 1:
            self._invalid(f"the graph{where} has {len(results)} result nodes; exactly one is required")
        cycle = node_cycle(graph)
        if cycle is not None:
            self._invalid(f"the nodes{where} depend on themselves in a cycle ({' -> '.join(cycle)})")
        for node_id, node in graph.items():
            self.node(graph, node_id, node, scope, f"{path}/{node_id}" if path else node_id)

    def node(self, graph: Mapping[str, Any], node_id: str, node: Any, scope: frozenset[str], path: str) -> None:
        if not isinstance(node, Mapping) or not isinstance(node.get("process_id"), str):
            self._invalid(f"node '{path}' has no process_id")
            return
        arguments = node.get("arguments", {})
        if not isinstance(arguments, Mapping):
            self._invalid(f"the arguments of node '{path}' are not an object")
            arguments = {}
        process_id, namespace = node["process_id"], node.get("namespace")
        spec = self._spec(process_id, namespace)
        parameters: dict[str, Mapping[str, Any]] = {}
        if spec is None:
            self.errors.append(ProcessUnsupportedException(process=process_id, namespace=namespace or "backend"))
        else:
            parameters = {p["name"]: p for p in spec.get("parameters") or []
                          if isinstance(p, Mapping) and isinstance(p.get("name"), str)}
            for name, parameter in parameters.items():
                if name not in arguments and not parameter.get("optional") and "default" not in parameter \
                        and name not in ENGINE_DEFAULTS.get(process_id, ()):
                    self.errors.append(ProcessParameterRequiredException(process=process_id, parameter=name))
            for name in arguments:
                if name not in parameters:
                    self.errors.append(ProcessParameterUnsupportedException(process=process_id, parameter=name))
            if process_id == "load_collection" and namespace in _BACKEND_NAMESPACES:
                self._collection(arguments.get("id"))
        for name, value in arguments.items():
            self.value(graph, value, scope, path, process_id, name, parameters.get(name))

    def value(self, graph: Mapping[str, Any], value: Any, scope: frozenset[str], path: str, process_id: str,
              name: str, parameter: Mapping[str, Any] | None) -> None:
        if isinstance(value, Mapping):
            if "from_node" in value:
                if not isinstance(value["from_node"], str):
                    self._invalid(f"node '{path}' has a `from_node` that is not a node id")
                elif value["from_node"] not in graph:
                    self._invalid(f"node '{path}' refers to the node '{value['from_node']}', which does not exist")
                return
            if "from_parameter" in value:
                if not isinstance(value["from_parameter"], str):
                    self._invalid(f"node '{path}' has a `from_parameter` that is not a parameter name")
                elif value["from_parameter"] not in scope:
                    self.errors.append(ProcessParameterRequiredException(
                        message=f"Process '{process_id}' (node '{path}') references the parameter "
                                f"'{value['from_parameter']}', which is not defined."))
                return
            if isinstance(value.get("process_graph"), Mapping):
                callback_scope = scope | _callback_parameters(parameter)
                self.graph(value["process_graph"], frozenset(callback_scope), path)
                return
            # e.g. load_collection's `properties`: each entry a condition callback on `value`
            entries = _entry_parameter(parameter)
            for item in value.values():
                self.value(graph, item, scope, path, process_id, name, entries)
            return
        if isinstance(value, list):
            for item in value:
                self.value(graph, item, scope, path, process_id, name, None)
            return
        if parameter is not None and not _accepts(parameter.get("schema"), value):
            self.errors.append(ProcessParameterInvalidException(
                process=process_id, parameter=name, reason=f"{value!r} does not match the parameter's schema"))

    def _spec(self, process_id: str, namespace: str | None) -> Mapping[str, Any] | None:
        if namespace in _BACKEND_NAMESPACES and process_id in self._specs:
            return self._specs[process_id]
        if namespace not in USER_NAMESPACES:
            return None
        if process_id not in self._user_specs:
            self._user_specs[process_id] = self._lookup(process_id)
        return self._user_specs[process_id]

    def _collection(self, collection_id: Any) -> None:
        """A literal id only: one from a parameter is known when the process is called."""
        if self._collection_exists is None or not isinstance(collection_id, str):
            return
        if collection_id not in self._collections_seen:
            self._collections_seen[collection_id] = self._collection_exists(collection_id)
            if not self._collections_seen[collection_id]:
                self.errors.append(CollectionNotFoundException(identifier=collection_id))

    def _invalid(self, reason: str) -> None:
        self.errors.append(ProcessGraphInvalidException(message=f"Invalid process graph specified: {reason}."))


def _schemas(schema: Any) -> list[Mapping[str, Any]]:
    if isinstance(schema, Mapping):
        nested = schema.get("anyOf") or schema.get("oneOf")
        return _schemas(nested) if isinstance(nested, list) else [schema]
    if isinstance(schema, list):
        return [s for item in schema for s in _schemas(item)]
    return []


def _entry_parameter(parameter: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The schema of the entries of an object argument (`additionalProperties`), as a parameter."""
    if parameter is None:
        return None
    entries = [s["additionalProperties"] for s in _schemas(parameter.get("schema"))
               if isinstance(s.get("additionalProperties"), Mapping)]
    return {"schema": entries} if entries else None


def _callback_parameters(parameter: Mapping[str, Any] | None) -> set[str]:
    """The names of the parameters a callback is called with, from the spec's `process-graph` schema."""
    if parameter is None:
        return set()
    return {p["name"] for schema in _schemas(parameter.get("schema")) if schema.get("subtype") == "process-graph"
            for p in schema.get("parameters") or [] if isinstance(p, Mapping) and "name" in p}


def _accepts(schema: Any, value: Any) -> bool:
    """Whether a literal scalar matches one of the schema's types; schemas without a type accept anything."""
    schemas = _schemas(schema)
    if not schemas:
        return True
    for candidate in schemas:
        types = candidate.get("type")
        if types is None:
            return True
        types = types if isinstance(types, list) else [types]
        if any(_TYPE_CHECKS.get(t, lambda v: True)(value) for t in types):
            return True
    return False
