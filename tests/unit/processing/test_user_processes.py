"""User-defined processes stored on the back-end are called by id, with parameters and defaults."""

import pytest

import stratus_processing.processes  # noqa: F401
from stratus.errors import ProcessParameterRequiredException, ProcessUnsupportedException
from stratus_processing.env import EvalEnv
from stratus_processing.errors import node_path
from stratus_processing.graph import evaluate_graph

SCALE = {
    "parameters": [{"name": "x", "schema": {"type": "number"}},
                   {"name": "factor", "schema": {"type": "number"}, "default": 10, "optional": True}],
    "process_graph": {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"},
                                                                     "y": {"from_parameter": "factor"}},
                            "result": True}},
}
# a UDP calling another UDP
SCALE_PLUS_ONE = {
    "parameters": [{"name": "x", "schema": {"type": "number"}}],
    "process_graph": {
        "s": {"process_id": "scale", "namespace": "user", "arguments": {"x": {"from_parameter": "x"}}},
        "a": {"process_id": "add", "arguments": {"x": {"from_node": "s"}, "y": 1}, "result": True}},
}
ENV = EvalEnv(user_processes={"scale": SCALE, "scale_plus_one": SCALE_PLUS_ONE})


def call(process_id, arguments, namespace=None):
    node = {"process_id": process_id, "arguments": arguments, "result": True}
    if namespace:
        node["namespace"] = namespace
    return evaluate_graph({"n": node}, ENV)


def test_defaults_and_given_arguments():
    assert call("scale", {"x": 2}) == 20
    assert call("scale", {"x": 2, "factor": 3}, namespace="user") == 6


def test_nested_user_processes():
    assert call("scale_plus_one", {"x": 2}) == 21


def test_missing_required_parameter_names_the_node():
    with pytest.raises(ProcessParameterRequiredException) as raised:
        call("scale", {})
    assert node_path(raised.value)[0]["node_id"] == "n"


def test_unknown_user_process():
    with pytest.raises(ProcessUnsupportedException):
        call("nope", {}, namespace="user")


def test_predefined_processes_win_without_namespace():
    env = EvalEnv(user_processes={"add": SCALE})
    assert evaluate_graph({"n": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}, env) == 3


def test_recursion_is_stopped():
    loop = {"parameters": [], "process_graph": {"l": {"process_id": "loop", "arguments": {}, "result": True}}}
    with pytest.raises(Exception, match="nested more than"):
        evaluate_graph({"n": {"process_id": "loop", "arguments": {}, "result": True}},
                       EvalEnv(user_processes={"loop": loop}))
