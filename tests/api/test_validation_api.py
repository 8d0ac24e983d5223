"""`POST /validation` through the real handler: every error at once, 200 even when invalid."""

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
