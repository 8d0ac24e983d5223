"""Which user-defined processes a graph calls: the one resolution used by PrepareJob and `POST /result`."""

from __future__ import annotations

from typing import Any

from stratus.domain.sync_processing import SyncProcessingService
from stratus.domain.user_processes import freeze_user_processes, resolve_user_processes
from stratus.run_contract import USER_PROCESSES_KEY, ResultsManifest, RunSnapshot


def udp(process_id: str, arguments: dict | None = None, **node: Any) -> dict:
    return {"process_graph": {"n": {"process_id": process_id, "arguments": arguments or {}, "result": True, **node}},
            "parameters": [{"name": "x", "schema": {}}], "summary": "left out of the snapshot"}


STORE = {
    "outer": udp("apply", {"process": {"process_graph": {"i": {"process_id": "inner", "arguments": {},
                                                              "result": True}}}}),
    "inner": udp("leaf", namespace="user"),
    "leaf": udp("absolute"),
    "loop": udp("loop"),  # recursion must not hang the resolution
    "add": udp("absolute"),  # shadowed by the predefined `add` unless the namespace is `user`
    "unused": udp("absolute"),
}


def lookup(process_id: str):
    return STORE.get(process_id)


def test_transitive_through_callbacks_and_other_udps():
    # Given a graph calling `outer` in a callback nested in an array argument
    graph = {"a": {"process_id": "array_apply", "arguments": {"data": [1], "process": {"process_graph": {
        "o": {"process_id": "outer", "arguments": {"x": [{"y": 1}]}, "result": True}}}}, "result": True}}
    # When the user-defined processes are resolved
    resolved = resolve_user_processes(graph, lookup)
    # Then all reachable ones are there with graph and parameters only
    assert set(resolved) == {"outer", "inner", "leaf"}
    leaf = STORE["leaf"]
    assert resolved["leaf"] == {"process_graph": leaf["process_graph"], "parameters": leaf["parameters"]}


def test_predefined_wins_without_namespace_and_unknown_ids_are_left_out():
    graph = {"a": {"process_id": "add", "arguments": {}},
             "b": {"process_id": "add", "namespace": "user", "arguments": {}},
             "c": {"process_id": "nope", "arguments": {}},
             "d": {"process_id": "leaf", "namespace": "backend", "arguments": {}},
             "e": {"process_id": "loop", "arguments": {}, "result": True}}
    assert set(resolve_user_processes(graph, lookup)) == {"add", "loop"}


def test_freeze_sets_the_key_the_processing_reads():
    process = {"process_graph": {"i": {"process_id": "inner", "arguments": {}, "result": True}},
               USER_PROCESSES_KEY: {"forged": {}}}
    snapshot = freeze_user_processes(process, lookup)
    stored = snapshot.to_json()
    assert set(stored[USER_PROCESSES_KEY]) == {"inner", "leaf"}
    assert RunSnapshot.from_json(stored) == snapshot  # what the processing reads back
    plain = freeze_user_processes({"process_graph": {"a": {"process_id": "absolute", "result": True}}}, lookup)
    assert USER_PROCESSES_KEY not in plain.to_json()


class _Store:
    def __init__(self) -> None:
        self.written: dict[str, Any] = {}

    def write_snapshot(self, key: str, snapshot: RunSnapshot) -> None:
        self.written[key] = snapshot

    def read_manifest(self, key: str):
        return ResultsManifest(assets={"a": {"key": "out.json", "type": "application/json", "file:size": 2}})

    def read_bytes(self, key: str) -> bytes:
        return b"{}"

    def presign(self, key: str, expires_in_s: int) -> str:
        return "https://example.com"


class _Users:
    def lookup_for(self, user_id: str):
        assert user_id == "alice"
        return lookup


class _Catalog:
    def collection(self, collection_id):
        return None

    def items(self, collection_id, search=None):
        return []


class _Processor:
    def run(self, run):
        return {"ok": True}


def test_sync_processing_freezes_the_same_way():
    # Given a synchronous request calling a user-defined process
    store = _Store()
    service = SyncProcessingService(_Catalog(), store, _Processor(), 60, user_processes=_Users())
    process = {"process_graph": {"i": {"process_id": "inner", "arguments": {}, "result": True}}}
    # When it is processed
    service.process("alice", {"process": process})
    # Then the graph written for the processing function carries the resolved processes
    (written,) = store.written.values()
    assert written == freeze_user_processes(process, lookup)
