"""User-defined processes (openEO `/process_graphs`): stored per user, called by id from other graphs.

A run never reads the store: what a graph calls is resolved once, when the run is frozen
(`freeze_user_processes`, used by PrepareJob and by synchronous processing), so a later edit of a
user-defined process does not change a job that is already running.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from stratus.domain.processes import predefined_process_ids, require_process_graph
from stratus.errors import (
    BadRequestException,
    PredefinedProcessExistsException,
    ProcessGraphInvalidException,
    ProcessGraphNotFoundException,
)
from stratus.run_contract import RunSnapshot

PROCESS_ID_PATTERN = re.compile(r"^\w+$")
# Namespaces in which a process id may name a user-defined process (as in the evaluator).
USER_NAMESPACES = (None, "user")
# Properties of the stored process left out of list responses, as the spec recommends.
LIST_OMITTED = ("process_graph", "exceptions", "examples", "links")

Lookup = Callable[[str], Mapping[str, Any] | None]


class UserProcessRepository(Protocol):
    def get(self, user_id: str, process_graph_id: str) -> dict[str, Any] | None: ...

    def put(self, user_id: str, process_graph_id: str, process: dict[str, Any]) -> None: ...

    def delete(self, user_id: str, process_graph_id: str) -> bool:
        """False if there was nothing to delete."""
        ...

    def list_for_user(self, user_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page, sorted by id, and the token of the next page (None on the last)."""
        ...


class UserProcesses(Protocol):
    """Where a run's user-defined processes are looked up when it is frozen (`UserProcessService`)."""

    def lookup_for(self, user_id: str) -> Lookup: ...


class UserProcessService:
    def __init__(self, repository: UserProcessRepository) -> None:
        self._repository = repository

    def list_processes(self, user_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """GET /process_graphs: the metadata of one page of the user's processes."""
        processes, next_token = self._repository.list_for_user(user_id, limit, after)
        return [{k: v for k, v in p.items() if k not in LIST_OMITTED} for p in processes], next_token

    def get_process(self, user_id: str, process_graph_id: str) -> dict[str, Any]:
        """GET /process_graphs/{process_graph_id}. Raises `ProcessGraphNotFoundException`."""
        process = self._repository.get(user_id, process_graph_id) if PROCESS_ID_PATTERN.match(process_graph_id) \
            else None
        if process is None:
            raise ProcessGraphNotFoundException(identifier=process_graph_id)
        return process

    def store_process(self, user_id: str, process_graph_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /process_graphs/{process_graph_id}: creates or fully replaces. Raises
        `PredefinedProcessExistsException`, `ProcessGraphMissingException` or `BadRequestException`."""
        if not PROCESS_ID_PATTERN.match(process_graph_id):
            raise BadRequestException(reason=f"the process id '{process_graph_id}' does not match ^\\w+$")
        if process_graph_id in predefined_process_ids():
            raise PredefinedProcessExistsException()
        require_process_graph(body)
        calls = user_process_cycle(body["process_graph"], self.lookup_for(user_id), process_graph_id)
        if calls is not None:
            raise ProcessGraphInvalidException(
                message=f"Invalid process graph specified: user-defined processes would call themselves "
                        f"({' -> '.join(calls)}); recursion is not supported.")
        process = {**body, "id": process_graph_id}  # the path wins over a different `id` in the body
        self._repository.put(user_id, process_graph_id, process)
        return process

    def delete_process(self, user_id: str, process_graph_id: str) -> None:
        """DELETE /process_graphs/{process_graph_id}. Raises `ProcessGraphNotFoundException`."""
        if not PROCESS_ID_PATTERN.match(process_graph_id) or not self._repository.delete(user_id, process_graph_id):
            raise ProcessGraphNotFoundException(identifier=process_graph_id)

    def lookup_for(self, user_id: str) -> Lookup:
        """The user's processes by id, for `freeze_user_processes` and validation."""
        def lookup(process_graph_id: str) -> dict[str, Any] | None:
            if not PROCESS_ID_PATTERN.match(process_graph_id):
                return None
            return self._repository.get(user_id, process_graph_id)
        return lookup


def called_processes(process_graph: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of a graph, including the nodes of callbacks at any depth."""
    for node in process_graph.values():
        if not isinstance(node, Mapping):
            continue
        yield node
        yield from _callback_nodes(node.get("arguments"))


def _callback_nodes(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        if isinstance(value.get("process_graph"), Mapping):
            yield from called_processes(value["process_graph"])
        else:
            for item in value.values():
                yield from _callback_nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _callback_nodes(item)


def resolve_user_processes(process_graph: Mapping[str, Any], lookup: Lookup) -> dict[str, dict[str, Any]]:
    """The user-defined processes a graph calls, directly, in callbacks or through other user-defined
    processes: `{id: {"process_graph", "parameters"}}`. A process id without namespace names a
    predefined process first (as in the evaluator); unknown ids are left for the evaluator to refuse."""
    predefined = predefined_process_ids()
    resolved: dict[str, dict[str, Any]] = {}
    pending = [process_graph]
    while pending:
        for node in called_processes(pending.pop()):
            process_id, namespace = node.get("process_id"), node.get("namespace")
            if not isinstance(process_id, str) or namespace not in USER_NAMESPACES or process_id in resolved:
                continue
            if namespace is None and process_id in predefined:
                continue
            definition = lookup(process_id)
            if definition is None or not isinstance(definition.get("process_graph"), Mapping):
                continue
            resolved[process_id] = {"process_graph": definition["process_graph"],
                                    "parameters": definition.get("parameters") or []}
            pending.append(definition["process_graph"])
    return resolved


def freeze_user_processes(process: Mapping[str, Any], lookup: Lookup) -> RunSnapshot:
    """The process as a run snapshot, with the user-defined processes it calls (resolved now, from `lookup`;
    a copy in the submitted process is never trusted)."""
    graph = process.get("process_graph")
    return RunSnapshot(process, resolve_user_processes(graph, lookup) if isinstance(graph, Mapping) else {})


def _user_calls(process_graph: Mapping[str, Any]) -> set[str]:
    """Ids of the user-defined processes a graph calls itself (in callbacks too, not through other UDPs)."""
    predefined = predefined_process_ids()
    return {node["process_id"] for node in called_processes(process_graph)
            if isinstance(node.get("process_id"), str) and node.get("namespace") in USER_NAMESPACES
            and not (node.get("namespace") is None and node["process_id"] in predefined)}


def user_process_cycle(process_graph: Mapping[str, Any], lookup: Lookup, own_id: str | None = None) -> list[str] | None:
    """A chain of user-defined processes that calls itself (e.g. `["a", "b", "a"]`), starting from a graph
    that is (or will be stored as) the user's process `own_id`; None when there is none. Unknown ids end a
    chain (they are reported elsewhere). Iterative, so a long chain cannot exhaust the stack."""
    graphs: dict[str, Mapping[str, Any] | None] = {}

    def graph_of(process_id: str) -> Mapping[str, Any] | None:
        if process_id == own_id:
            return process_graph
        if process_id not in graphs:
            definition = lookup(process_id)
            graph = definition.get("process_graph") if isinstance(definition, Mapping) else None
            graphs[process_id] = graph if isinstance(graph, Mapping) else None
        return graphs[process_id]

    root = own_id if own_id is not None else "\x00"  # a name no process can have
    on_path: list[str] = [root]
    done: set[str] = set()
    stack = [iter(sorted(_user_calls(process_graph)))]
    while stack:
        callee = next(stack[-1], None)
        if callee is None:
            stack.pop()
            done.add(on_path.pop())
            continue
        if callee in on_path:
            return on_path[on_path.index(callee):] + [callee]
        graph = None if callee in done else graph_of(callee)
        if graph is not None:
            on_path.append(callee)
            stack.append(iter(sorted(_user_calls(graph))))
    return None


def node_cycle(process_graph: Mapping[str, Any]) -> list[str] | None:
    """Node ids of a graph whose `from_node` references go round in a circle (e.g. `["a", "b", "a"]`), or None.
    Each callback is a graph of its own and checked on its own."""
    edges = {node_id: sorted(_references(node.get("arguments"))) for node_id, node in process_graph.items()
             if isinstance(node, Mapping)}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in edges:
        if start in state:
            continue
        path, stack = [start], [iter(edges[start])]
        state[start] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                state[path.pop()] = 2
                continue
            if target not in edges or state.get(target) == 2:
                continue
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            state[target] = 1
            path.append(target)
            stack.append(iter(edges[target]))
    return None


def _references(value: Any) -> Iterator[str]:
    """`from_node` targets in a node's arguments, outside callbacks (which have their own nodes)."""
    if isinstance(value, Mapping):
        if isinstance(value.get("from_node"), str):
            yield value["from_node"]
        elif not isinstance(value.get("process_graph"), Mapping):
            for item in value.values():
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
