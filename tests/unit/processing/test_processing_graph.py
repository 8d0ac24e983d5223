"""The process graph evaluator: references, parameters, callbacks, and errors that name the node."""

from __future__ import annotations

import pytest
import stratus_processing.processes  # noqa: F401  (registers the processes)
from stratus.errors import (
    ProcessGraphInvalidException,
    ProcessGraphMissingException,
    ProcessParameterInvalidException,
    ProcessParameterRequiredException,
    ProcessUnsupportedException,
)
from stratus_processing.env import EvalEnv
from stratus_processing.errors import describe_failure, node_path
from stratus_processing.graph import evaluate_graph, evaluate_process
from stratus_processing.registry import DEFAULT_REGISTRY, ProcessArgs, ProcessRegistry, process
from stratus_processing.reporting import RecordingReporter


def node(process_id: str, result: bool = False, **arguments):
    spec = {"process_id": process_id, "arguments": arguments}
    if result:
        spec["result"] = True
    return spec


@pytest.fixture
def counting_registry():
    """A registry with `count` (counts its calls), `call` (calls its callback) and `fail`."""
    registry = ProcessRegistry()
    calls: list[str] = []

    @process("count", registry)
    def count(args: ProcessArgs, env: EvalEnv):
        calls.append(args.node_id)
        return args.get_optional("x", 0) + 1

    @process("call", registry)
    def call(args: ProcessArgs, env: EvalEnv):
        return args.get_callback("callback")(env, x=args.get_required("x"))

    @process("fail", registry)
    def fail(args: ProcessArgs, env: EvalEnv):
        raise ZeroDivisionError("boom")

    registry.calls = calls
    return registry


def test_from_node_chains_results():
    # Given (3 + 4) * 2 - 1 as a graph
    graph = {
        "a": node("add", x=3, y=4),
        "m": node("multiply", x={"from_node": "a"}, y=2),
        "s": node("subtract", result=True, x={"from_node": "m"}, y=1),
    }
    # When / Then
    assert evaluate_graph(graph, EvalEnv()) == 13


def test_each_node_is_evaluated_once(counting_registry):
    # Given a diamond: two nodes use the same upstream node
    graph = {
        "base": node("count", x=0),
        "left": node("count", x={"from_node": "base"}),
        "right": node("count", x={"from_node": "base"}),
        "top": node("count", result=True, x={"from_node": "left"}),
        "unused_end": node("count", x={"from_node": "right"}),
    }
    # When
    result = evaluate_graph(graph, EvalEnv(), registry=counting_registry)
    # Then every node ran exactly once, dangling end nodes included, the result node last
    assert result == 3
    assert sorted(counting_registry.calls) == ["base", "left", "right", "top", "unused_end"]
    assert counting_registry.calls[-1] == "top"


def test_from_parameter_uses_arguments_and_declared_defaults():
    # Given a process with a parameter default and one given as argument
    process_object = {
        "process_graph": {"a": node("add", result=True, x={"from_parameter": "x"}, y={"from_parameter": "y"})},
        "parameters": [{"name": "x", "schema": {"type": "number"}}, {"name": "y", "default": 10}],
    }
    # When / Then
    assert evaluate_process(process_object, EvalEnv(), arguments={"x": 5}) == 15


def test_nested_arrays_and_objects_are_resolved(counting_registry):
    # Given references inside an array argument
    graph = {"one": node("count", x=0), "r": node("mean", result=True, data=[{"from_node": "one"}, 3, None])}
    registry = ProcessRegistry()
    registry.add("count", counting_registry.get("count"))
    registry.add("mean", DEFAULT_REGISTRY.get("mean"))
    # When / Then
    assert evaluate_graph(graph, EvalEnv(), registry=registry) == 2


def test_callbacks_get_their_parameters_and_see_the_parents(counting_registry):
    # Given a callback using its own parameter `x` and the parent graph's parameter `offset`
    counting_registry.add("add", DEFAULT_REGISTRY.get("add"))
    graph = {"c": node("call", result=True, x=4, callback={"process_graph": {
        "inner": node("add", result=True, x={"from_parameter": "x"}, y={"from_parameter": "offset"})}})}
    # When
    result = evaluate_graph(graph, EvalEnv(), registry=counting_registry, arguments={"offset": 100})
    # Then
    assert result == 104


def test_nested_callbacks(counting_registry):
    # Given a callback whose graph itself passes a callback
    inner = {"process_graph": {"deepest": node("count", result=True, x={"from_parameter": "x"})}}
    graph = {"outer": node("call", result=True, x=1, callback={"process_graph": {
        "middle": node("call", result=True, x={"from_parameter": "x"}, callback=inner)}})}
    # When / Then
    assert evaluate_graph(graph, EvalEnv(), registry=counting_registry) == 2


def test_unknown_process_is_unsupported_and_names_the_node():
    # Given a graph with an unknown process
    graph = {"a": node("add", x=1, y=2), "mystery": node("frobnicate", result=True, data={"from_node": "a"})}
    # When
    with pytest.raises(ProcessUnsupportedException) as caught:
        evaluate_graph(graph, EvalEnv())
    # Then
    assert caught.value.code == "ProcessUnsupported"
    assert "frobnicate" in caught.value.message
    assert node_path(caught.value) == [{"node_id": "mystery", "process_id": "frobnicate"}]
    assert "node 'mystery'" in describe_failure(caught.value)


def test_process_in_foreign_namespace_is_unsupported():
    graph = {"a": {"process_id": "add", "namespace": "https://example.org/udp", "arguments": {"x": 1, "y": 2},
                   "result": True}}
    with pytest.raises(ProcessUnsupportedException, match=r"example\.org"):
        evaluate_graph(graph, EvalEnv())


def test_missing_required_argument_names_the_node():
    graph = {"sub": node("subtract", result=True, x=1)}
    with pytest.raises(ProcessParameterRequiredException) as caught:
        evaluate_graph(graph, EvalEnv())
    assert caught.value.params == {"process": "subtract", "parameter": "y"}
    assert node_path(caught.value) == [{"node_id": "sub", "process_id": "subtract"}]


def test_missing_graph_parameter_names_the_node():
    graph = {"a": node("add", result=True, x={"from_parameter": "nope"}, y=1)}
    with pytest.raises(ProcessParameterRequiredException, match="'nope'") as caught:
        evaluate_graph(graph, EvalEnv())
    assert node_path(caught.value)[0]["node_id"] == "a"


def test_invalid_argument_names_the_node():
    graph = {"a": node("add", result=True, x="one", y=1)}
    with pytest.raises(ProcessParameterInvalidException) as caught:
        evaluate_graph(graph, EvalEnv())
    assert caught.value.params["parameter"] == "x"
    assert node_path(caught.value) == [{"node_id": "a", "process_id": "add"}]


def test_errors_upstream_keep_their_own_node(counting_registry):
    # Given a failing node feeding another one
    graph = {"bad": node("fail"), "next": node("count", result=True, x={"from_node": "bad"})}
    # When
    with pytest.raises(ZeroDivisionError) as caught:
        evaluate_graph(graph, EvalEnv(), registry=counting_registry)
    # Then the failure is attributed to the failing node only, and the type is kept
    assert node_path(caught.value) == [{"node_id": "bad", "process_id": "fail"}]
    assert describe_failure(caught.value) == "ZeroDivisionError: boom (node 'bad', process 'fail')"


def test_errors_inside_callbacks_carry_the_parent_chain(counting_registry):
    # Given a callback whose node fails
    graph = {"outer": node("call", result=True, x=1, callback={"process_graph": {
        "inner": node("fail", result=True)}})}
    # When
    with pytest.raises(ZeroDivisionError) as caught:
        evaluate_graph(graph, EvalEnv(), registry=counting_registry)
    # Then the path goes from the failing node to its parent, naming the callback parameter
    assert node_path(caught.value) == [
        {"node_id": "inner", "process_id": "fail"},
        {"node_id": "outer", "process_id": "call", "parameter": "callback"},
    ]


@pytest.mark.parametrize("graph, message", [
    ({}, "no nodes"),
    ({"a": node("add", x=1, y=2)}, "exactly one node"),
    ({"a": node("add", True, x=1, y=2), "b": node("add", True, x=1, y=2)}, "found 2"),
    ({"a": node("add", True, x={"from_node": "ghost"}, y=1)}, "ghost"),
    ({"a": {"arguments": {}, "result": True}}, "no 'process_id'"),
])
def test_malformed_graphs_are_invalid(graph, message):
    with pytest.raises(ProcessGraphInvalidException, match=message):
        evaluate_graph(graph, EvalEnv())


def test_cycles_are_invalid():
    graph = {"a": node("add", x={"from_node": "b"}, y=1), "b": node("add", x={"from_node": "a"}, y=1),
             "r": node("add", True, x={"from_node": "a"}, y=0)}
    with pytest.raises(ProcessGraphInvalidException, match="cycle"):
        evaluate_graph(graph, EvalEnv())


def test_a_process_without_graph_is_missing():
    with pytest.raises(ProcessGraphMissingException):
        evaluate_process({"parameters": []}, EvalEnv())


def test_progress_is_reported_per_node_of_the_top_level_graph():
    # Given a three-node graph and a recording reporter
    reporter = RecordingReporter()
    graph = {"a": node("add", x=1, y=1), "b": node("add", x={"from_node": "a"}, y=1),
             "c": node("add", True, x={"from_node": "b"}, y=1)}
    # When
    evaluate_process({"process_graph": graph}, EvalEnv(reporter=reporter))
    # Then
    assert reporter.fractions == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_the_engine_implements_exactly_the_processes_the_api_lists():
    # `GET /processes` serves stratus/process_specs; every one must run, and nothing unlisted.
    from stratus.domain.processes import predefined_process_ids

    assert set(DEFAULT_REGISTRY) == predefined_process_ids()
