"""Evaluates openEO process graphs (openEO API 1.2 "process graph" semantics).

- Nodes are evaluated once each, depth first from the end nodes (nodes nobody references); the
  node flagged `result: true` gives the value. Dangling end nodes (e.g. a second `save_result`)
  are evaluated too, before the result node.
- Arguments resolve `{"from_node": id}`, `{"from_parameter": name}`, nested arrays/objects, and
  `{"process_graph": {...}}`, which becomes a `Callback` the process calls with its parameters.
- Any error is annotated with the failing node (and, for errors inside callbacks, the chain of
  parent nodes), see `errors.record_node`; openEO errors keep their type and code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from stratus.errors import (
    ProcessGraphInvalidException,
    ProcessGraphMissingException,
    ProcessParameterRequiredException,
    ProcessUnsupportedException,
)

from stratus_processing.deferred import xr
from stratus_processing.env import EvalEnv
from stratus_processing.errors import has_node_path, record_callback_parameter, record_node
from stratus_processing.load_extent import with_load_needs
from stratus_processing.precision import outputs_single_precision
from stratus_processing.registry import DEFAULT_REGISTRY, Callback, ProcessArgs, ProcessRegistry

# Namespaces that mean "this back-end's predefined processes" (openEO: null or "backend").
_BACKEND_NAMESPACES = (None, "backend")
# A process id without namespace is a predefined process first, then the user's (openEO API 1.2).
_USER_NAMESPACES = (None, "user")
# User-defined processes may call each other; a chain this deep is a recursion, not a design.
MAX_USER_PROCESS_DEPTH = 16


@dataclass(frozen=True)
class Node:
    node_id: str
    process_id: str
    arguments: Mapping[str, Any]
    namespace: str | None = None
    result: bool = False


class ProcessGraph:
    """A validated flat process graph: its nodes, the result node and the end nodes."""

    def __init__(self, flat_graph: Any) -> None:
        if not isinstance(flat_graph, Mapping) or not flat_graph:
            raise ProcessGraphInvalidException(message="Invalid process graph specified: it has no nodes.")
        self.nodes: dict[str, Node] = {node_id: _parse_node(node_id, spec) for node_id, spec in flat_graph.items()}
        result_nodes = [n.node_id for n in self.nodes.values() if n.result]
        if len(result_nodes) != 1:
            raise ProcessGraphInvalidException(
                message=f"Invalid process graph specified: exactly one node must have 'result: true', "
                        f"found {len(result_nodes)}{': ' + ', '.join(result_nodes) if result_nodes else ''}.")
        self.result_node_id = result_nodes[0]
        referenced = {ref for node in self.nodes.values() for ref in _node_references(node.arguments)}
        unknown = referenced - set(self.nodes)
        if unknown:
            raise ProcessGraphInvalidException(
                message=f"Invalid process graph specified: 'from_node' references unknown node(s) "
                        f"{', '.join(sorted(unknown))}.")
        # The result node last, so its value is the last thing computed.
        self.end_node_ids = [n for n in self.nodes if n not in referenced and n != self.result_node_id]
        self.end_node_ids.append(self.result_node_id)

    def __len__(self) -> int:
        return len(self.nodes)


def evaluate_process(process: Any, env: EvalEnv, *, registry: ProcessRegistry = DEFAULT_REGISTRY,
                     arguments: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an openEO `process` object (`{"process_graph": ..., "parameters": [...]}`), reporting
    progress per node. Graph parameters take `arguments`, else their declared defaults."""
    if not isinstance(process, Mapping) or not process.get("process_graph"):
        raise ProcessGraphMissingException()
    values = {p["name"]: p["default"] for p in process.get("parameters") or []
              if isinstance(p, Mapping) and "name" in p and "default" in p}
    values.update(arguments or {})
    graph = ProcessGraph(process["process_graph"])
    env = replace(env, single_precision_outputs=outputs_single_precision(graph))
    with numeric_conventions():
        return _Evaluation(graph, env, registry, values, report_progress=True).run()


def evaluate_graph(flat_graph: Any, env: EvalEnv, *, registry: ProcessRegistry = DEFAULT_REGISTRY,
                   arguments: Mapping[str, Any] | None = None) -> Any:
    """Evaluate a flat process graph with the given parameter values (no progress reporting)."""
    with numeric_conventions():
        return _Evaluation(ProcessGraph(flat_graph), env, registry, dict(arguments or {})).run()


class GraphCallback(Callback):
    """A child process graph; parent parameters stay visible to it, its own parameters win."""

    def __init__(self, graph: ProcessGraph, *, parameter: str, registry: ProcessRegistry,
                 outer_arguments: Mapping[str, Any]) -> None:
        self.graph = graph
        self.parameter = parameter
        self._registry = registry
        self._outer_arguments = dict(outer_arguments)

    def __call__(self, env: EvalEnv, **parameters: Any) -> Any:
        try:
            return _Evaluation(self.graph, env, self._registry, {**self._outer_arguments, **parameters}).run()
        except Exception as exc:
            record_callback_parameter(exc, self.parameter)
            raise

    def __repr__(self) -> str:
        return f"GraphCallback({self.parameter!r}, nodes={list(self.graph.nodes)})"


class _Evaluation:
    """One evaluation of one graph: memoises node results and detects cycles."""

    def __init__(self, graph: ProcessGraph, env: EvalEnv, registry: ProcessRegistry,
                 arguments: Mapping[str, Any], *, report_progress: bool = False, depth: int = 0) -> None:
        self._graph = graph
        self._env = with_load_needs(env, graph, arguments)
        self._registry = registry
        self._arguments = arguments
        self._report_progress = report_progress
        self._depth = depth  # how many user-defined process calls deep this evaluation is
        self._results: dict[str, Any] = {}
        self._in_progress: set[str] = set()

    def run(self) -> Any:
        for node_id in self._graph.end_node_ids:
            self._node_result(node_id)
        return self._results[self._graph.result_node_id]

    def _node_result(self, node_id: str) -> Any:
        if node_id in self._results:
            return self._results[node_id]
        if node_id in self._in_progress:
            raise ProcessGraphInvalidException(
                message=f"Invalid process graph specified: node '{node_id}' depends on itself (a cycle).")
        self._in_progress.add(node_id)
        node = self._graph.nodes[node_id]
        try:
            function = self._registry.get(node.process_id) if node.namespace in _BACKEND_NAMESPACES else None
            if function is None and node.namespace in _USER_NAMESPACES and node.process_id in self._env.user_processes:
                function = self._user_process(node.process_id)
            if function is None:
                raise ProcessUnsupportedException(process=node.process_id, namespace=node.namespace or "backend")
            arguments = {name: self._resolve(value, node, name) for name, value in node.arguments.items()}
        except Exception as exc:
            # Errors of upstream nodes already carry their own path; only this node's own problems
            # (unknown process, missing graph parameter, invalid callback) are attributed here.
            if not has_node_path(exc):
                record_node(exc, node.node_id, node.process_id)
            raise
        try:
            result = function(ProcessArgs(arguments, process_id=node.process_id, node_id=node_id), self._env)
        except Exception as exc:
            record_node(exc, node.node_id, node.process_id)
            raise
        self._in_progress.discard(node_id)
        self._results[node_id] = result
        if self._report_progress:
            self._env.reporter.progress(len(self._results) / len(self._graph))
        return result

    def _user_process(self, process_id: str):
        """A user-defined process as a process function: its graph, evaluated with the node's arguments
        as parameter values (declared defaults for the rest; missing required ones are an error)."""
        definition = self._env.user_processes[process_id]
        if self._depth >= MAX_USER_PROCESS_DEPTH:
            raise ProcessGraphInvalidException(
                message=f"Invalid process graph specified: user-defined process '{process_id}' is nested more "
                        f"than {MAX_USER_PROCESS_DEPTH} levels deep (a recursion?).")
        graph = ProcessGraph(definition.get("process_graph"))
        declared = [p for p in definition.get("parameters") or [] if isinstance(p, Mapping) and "name" in p]

        def call(args: ProcessArgs, env: EvalEnv) -> Any:
            values = {}
            for parameter in declared:
                name = parameter["name"]
                if name in args:
                    values[name] = args[name]
                elif "default" in parameter:
                    values[name] = parameter["default"]
                elif not parameter.get("optional"):
                    raise ProcessParameterRequiredException(process=process_id, parameter=name)
            unknown = set(args) - {p["name"] for p in declared}
            if unknown:
                raise args.invalid(sorted(unknown)[0], "the user-defined process has no such parameter")
            return _Evaluation(graph, env, self._registry, values, depth=self._depth + 1).run()

        return call

    def _resolve(self, value: Any, node: Node, parameter: str) -> Any:
        if isinstance(value, Mapping):
            if isinstance(value.get("from_node"), str):
                return self._node_result(value["from_node"])
            if isinstance(value.get("from_parameter"), str):
                return self._parameter_value(value["from_parameter"], node)
            if isinstance(value.get("process_graph"), Mapping):
                return GraphCallback(ProcessGraph(value["process_graph"]), parameter=parameter,
                                     registry=self._registry, outer_arguments=self._arguments)
            return {key: self._resolve(item, node, parameter) for key, item in value.items()}
        if isinstance(value, list):
            return [self._resolve(item, node, parameter) for item in value]
        return value

    def _parameter_value(self, name: str, node: Node) -> Any:
        if name not in self._arguments:
            raise ProcessParameterRequiredException(
                message=f"Process '{node.process_id}' (node '{node.node_id}') references the parameter "
                        f"'{name}', but no value was given for it.",
                process=node.process_id, parameter=name)
        return self._arguments[name]


def _parse_node(node_id: Any, spec: Any) -> Node:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("process_id"), str):
        raise ProcessGraphInvalidException(
            message=f"Invalid process graph specified: node '{node_id}' has no 'process_id'.")
    arguments = spec.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise ProcessGraphInvalidException(
            message=f"Invalid process graph specified: the arguments of node '{node_id}' are not an object.")
    return Node(str(node_id), spec["process_id"], arguments, spec.get("namespace"), bool(spec.get("result", False)))


def _node_references(value: Any) -> set[str]:
    """Node ids referenced by `from_node` in an argument value, not descending into child graphs
    (their `from_node`s refer to their own nodes)."""
    if isinstance(value, Mapping):
        if isinstance(value.get("from_node"), str):
            return {value["from_node"]}
        if isinstance(value.get("process_graph"), Mapping):
            return set()
        return set().union(*(_node_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_node_references(v) for v in value)) if value else set()
    return set()


@contextmanager
def numeric_conventions() -> Iterator[None]:
    """IEEE semantics without warnings (x/0 is ±inf, 0/0 NaN, as openEO allows), attributes kept
    through xarray operations whatever xarray's default is, and an error instead of silently
    dropping pixels when arrays on different coordinates are combined (that is merge_cubes' job)."""
    with (np.errstate(divide="ignore", invalid="ignore", over="ignore"),
          xr.set_options(keep_attrs=True, arithmetic_join="exact")):
        yield
