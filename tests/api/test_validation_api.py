"""`POST /validation` through the real handler: every error at once, 200 even when invalid."""

import pytest

from tests.api.test_collections_api import OWN_ID, default_config_at, store_config, store_own_collection

VALIDATION = "/openeo/1.2/validation"
ADD = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


def codes(response):
    assert response.status == 200
    return sorted(error["code"] for error in response.json()["errors"])


def test_valid_process_has_no_errors(api):
    assert codes(api.post(VALIDATION, user="alice", json_body=ADD)) == []


def test_every_error_is_reported(api):
    # Given a graph with many problems at once
    graph = {
        "load": {"process_id": "load_collection", "arguments": {"id": "S2", "bogus": 1}},  # spatial/temporal missing
        "reduce": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "load"}, "dimension": "t",
            "reducer": {"process_graph": {
                "m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True},
                "u": {"process_id": "median", "arguments": {"data": {"from_parameter": "nope"}}}}}}},
        "unknown": {"process_id": "no_such_process", "arguments": {}},
        "dangling": {"process_id": "add", "arguments": {"x": {"from_node": "missing"}, "y": "text"},
                     "result": True},
        "second": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True},
    }
    # When it is validated
    response = api.post(VALIDATION, user="alice", json_body={"process_graph": graph})
    # Then each problem is one error, with the openEO codes
    assert codes(response) == sorted([
        "ProcessParameterRequired", "ProcessParameterRequired",  # spatial_extent, temporal_extent
        "ProcessParameterUnsupported",  # bogus
        "ProcessParameterRequired",  # from_parameter `nope` is not a callback parameter
        "ProcessUnsupported",  # no_such_process
        "ProcessGraphInvalid",  # from_node `missing`
        "ProcessParameterInvalid",  # "text" is no number
        "ProcessGraphInvalid",  # two result nodes
        "CollectionNotFound",  # S2 is no collection of this deployment
    ])
    messages = " ".join(error["message"] for error in response.json()["errors"])
    assert "no_such_process" in messages and "'bogus'" in messages and "'nope'" in messages


def test_user_processes_are_known_to_their_owner_only(api):
    # Given alice's process with a required parameter
    api.put("/openeo/1.2/process_graphs/twice", user="alice", json_body={
        "parameters": [{"name": "x", "schema": {"type": "number"}}],
        "process_graph": {"m": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2},
                                "result": True}}})
    call = {"process_graph": {"t": {"process_id": "twice", "arguments": {"x": 3}, "result": True}}}
    missing_x = {"process_graph": {"t": {"process_id": "twice", "namespace": "user", "arguments": {},
                                         "result": True}}}
    # Then alice's graphs calling it validate against its parameters
    assert codes(api.post(VALIDATION, user="alice", json_body=call)) == []
    assert codes(api.post(VALIDATION, user="alice", json_body=missing_x)) == ["ProcessParameterRequired"]
    # And for bob it does not exist
    assert codes(api.post(VALIDATION, user="bob", json_body=call)) == ["ProcessUnsupported"]


def test_declared_parameters_are_in_scope(api):
    process = {"parameters": [{"name": "n", "schema": {"type": "number"}}],
               "process_graph": {"a": {"process_id": "add", "arguments": {"x": {"from_parameter": "n"}, "y": 1},
                                       "result": True}}}
    assert codes(api.post(VALIDATION, user="alice", json_body=process)) == []
    del process["parameters"]
    assert codes(api.post(VALIDATION, user="alice", json_body=process)) == ["ProcessParameterRequired"]


def test_missing_graph_and_authentication(api):
    assert codes(api.post(VALIDATION, user="alice", json_body={"summary": "x"})) == ["ProcessGraphMissing"]
    assert api.post(VALIDATION, json_body=ADD).json()["code"] == "AuthenticationRequired"


def test_a_cycle_of_nodes_is_reported(api):
    # Given nodes that depend on each other in a circle (and a cycle inside a callback)
    graph = {
        "a": {"process_id": "add", "arguments": {"x": {"from_node": "c"}, "y": 1}},
        "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": 1}},
        "c": {"process_id": "add", "arguments": {"x": {"from_node": "b"}, "y": 1}, "result": True},
        "apply": {"process_id": "apply", "arguments": {"data": [1], "process": {"process_graph": {
            "p": {"process_id": "absolute", "arguments": {"x": {"from_node": "q"}}},
            "q": {"process_id": "absolute", "arguments": {"x": {"from_node": "p"}}, "result": True}}}}},
    }
    response = api.post(VALIDATION, user="alice", json_body={"process_graph": graph})
    errors = [e for e in response.json()["errors"] if "cycle" in e["message"]]
    assert [e["code"] for e in errors] == ["ProcessGraphInvalid", "ProcessGraphInvalid"]
    assert "a -> c -> b -> a" in errors[0]["message"] or "a -> c -> b -> a" in errors[1]["message"]


def test_user_defined_processes_calling_themselves_are_reported_and_not_stored(api):
    def calls(target):
        return {"process_graph": {"n": {"process_id": target, "namespace": "user", "arguments": {}, "result": True}}}

    # Given alice's process `ping`, which calls `pong` (not stored yet)
    assert api.put("/openeo/1.2/process_graphs/ping", user="alice", json_body=calls("pong")).status == 200
    # When she validates `pong` calling `ping`, or `selfish` calling itself
    for process in ({"id": "pong", **calls("ping")}, {"id": "selfish", **calls("selfish")}):
        errors = api.post(VALIDATION, user="alice", json_body=process).json()["errors"]
        # Then the recursion is reported
        assert any(e["code"] == "ProcessGraphInvalid" and "call themselves" in e["message"] for e in errors), errors
    # And storing them is refused, with the chain in the message
    refused = api.put("/openeo/1.2/process_graphs/pong", user="alice", json_body=calls("ping"))
    assert refused.status == 400 and "pong -> ping -> pong" in refused.json()["message"]
    assert api.put("/openeo/1.2/process_graphs/selfish", user="alice", json_body=calls("selfish")).status == 400
    # While a graph calling `ping` (which calls the missing `pong`) is no recursion
    assert not [e for e in api.post(VALIDATION, user="alice", json_body=calls("ping")).json()["errors"]
                if "call themselves" in e["message"]]


def load_with_properties(properties):
    return {"process_graph": {"load": {"process_id": "load_collection", "result": True, "arguments": {
        "id": OWN_ID, "spatial_extent": None, "temporal_extent": None, "properties": properties}}}}


def condition(process_id, **arguments):
    return {"process_graph": {"c": {"process_id": process_id, "arguments": arguments, "result": True}}}


@pytest.fixture
def own_collection(api):
    store_own_collection(api)


def test_property_conditions_on_value_are_valid(api, own_collection):
    # As the openeo client's max_cloud_cover= and a platform list build them
    value = {"from_parameter": "value"}
    properties = {"eo:cloud_cover": condition("lte", x=value, y=50),
                  "platform": condition("array_contains", data=["sentinel-2a", "sentinel-2b"], value=value),
                  "s2:mgrs_tile": condition("eq", x=value, y="32TPS")}
    assert codes(api.post(VALIDATION, user="alice", json_body=load_with_properties(properties))) == []


def test_property_conditions_report_their_real_errors(api, own_collection):
    properties = {"eo:cloud_cover": condition("lte", x={"from_parameter": "valeu"}, y=50),  # a typo
                  "platform": condition("no_such_test", x={"from_parameter": "value"}),
                  "gsd": 10}  # not a condition at all
    response = api.post(VALIDATION, user="alice", json_body=load_with_properties(properties))
    assert codes(response) == ["ProcessParameterInvalid", "ProcessParameterRequired", "ProcessUnsupported"]
    messages = " ".join(error["message"] for error in response.json()["errors"])
    assert "'valeu'" in messages and "no_such_test" in messages


def load(collection_id, node_id="load"):
    return {node_id: {"process_id": "load_collection", "arguments": {
        "id": collection_id, "spatial_extent": None, "temporal_extent": None}}}


def test_collections_are_known_by_id_or_alias_own_and_configured(api):
    # Given an own collection with an alias and the shipped configuration (remote sources never contacted)
    document = default_config_at("https://earth-search.example/v1")
    document["collections"].append({"id": OWN_ID, "kind": "own", "aliases": ["OWN"]})
    store_config(api, document)
    store_own_collection(api)
    # Then each known name validates, by id or alias
    for name in (OWN_ID, "OWN", "sentinel-2-l2a", "SENTINEL2_L2A", "COPERNICUS_30"):
        graph = {**load(name), "save": {"process_id": "save_result", "arguments": {
            "data": {"from_node": "load"}, "format": "GTiff"}, "result": True}}
        assert codes(api.post(VALIDATION, user="alice", json_body={"process_graph": graph})) == [], name
    # And an unknown id is reported once with openEO's code and its name, however often it is loaded
    graph = {**load("sentinel-2-l2b"), **load("sentinel-2-l2b", "again"), **load("OWN", "known"),
             "merge": {"process_id": "merge_cubes", "arguments": {
                 "cube1": {"from_node": "load"}, "cube2": {"from_node": "known"}}, "result": True}}
    response = api.post(VALIDATION, user="alice", json_body={"process_graph": graph})
    assert codes(response) == ["CollectionNotFound"]
    assert "'sentinel-2-l2b'" in response.json()["errors"][0]["message"]


def test_a_collection_from_a_parameter_is_checked_when_called(api):
    process = {"parameters": [{"name": "which", "schema": {"type": "string"}}],
               "process_graph": {"load": {"process_id": "load_collection", "arguments": {
                   "id": {"from_parameter": "which"}, "spatial_extent": None, "temporal_extent": None},
                   "result": True}}}
    assert codes(api.post(VALIDATION, user="alice", json_body=process)) == []


def test_the_openeo_clients_random_forest_graph_is_valid(api):
    # the client leaves out max_variables by default; predictors and target stay required
    fit = {"process_id": "fit_class_random_forest", "arguments": {
        "predictors": {"from_parameter": "samples"}, "target": {"type": "FeatureCollection", "features": []},
        "num_trees": 10, "seed": 1}}
    process = {"parameters": [{"name": "samples", "schema": {}}], "process_graph": {
        "fit": fit, "save": {"process_id": "save_ml_model", "arguments": {"data": {"from_node": "fit"}},
                             "result": True}}}
    assert codes(api.post(VALIDATION, user="alice", json_body=process)) == []
    del fit["arguments"]["target"]
    assert codes(api.post(VALIDATION, user="alice", json_body=process)) == ["ProcessParameterRequired"]
