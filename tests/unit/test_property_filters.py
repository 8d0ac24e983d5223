"""openEO `properties` conditions translated to CQL2-JSON and the STAC Query extension (pure Python)."""

from stratus.domain.property_filters import combined_cql2, combined_query, cql2_to_query, to_cql2, to_query

VALUE = {"from_parameter": "value"}
CLOUD = {"property": "eo:cloud_cover"}


def condition(*nodes):
    """A condition graph; the last node is the result. Nodes: (id, process_id, arguments)."""
    graph = {node_id: {"process_id": process_id, "arguments": arguments} for node_id, process_id, arguments in nodes}
    graph[nodes[-1][0]]["result"] = True
    return {"process_graph": graph}


def test_comparisons_either_way_round():
    assert to_cql2("eo:cloud_cover", condition(("c", "lte", {"x": VALUE, "y": 50}))) == \
        {"op": "<=", "args": [CLOUD, 50]}
    assert to_query("eo:cloud_cover", condition(("c", "lte", {"x": VALUE, "y": 50}))) == {"lte": 50}
    # 30 < value is value > 30
    assert to_cql2("eo:cloud_cover", condition(("c", "lt", {"x": 30, "y": VALUE}))) == \
        {"op": ">", "args": [CLOUD, 30]}
    assert to_query("platform", condition(("c", "eq", {"x": VALUE, "y": "sentinel-2a"}))) == {"eq": "sentinel-2a"}
    assert to_cql2("platform", condition(("c", "neq", {"x": VALUE, "y": "sentinel-2a"}))) == \
        {"op": "<>", "args": [{"property": "platform"}, "sentinel-2a"]}


def test_between_array_contains_and_and():
    between = condition(("b", "between", {"x": VALUE, "min": 10, "max": 20}))
    assert to_cql2("eo:cloud_cover", between) == {"op": "between", "args": [CLOUD, 10, 20]}
    assert to_query("eo:cloud_cover", between) == {"gte": 10, "lte": 20}
    excluding = condition(("b", "between", {"x": VALUE, "min": 10, "max": 20, "exclude_max": True}))
    assert to_cql2("eo:cloud_cover", excluding) == {"op": "and", "args": [
        {"op": ">=", "args": [CLOUD, 10]}, {"op": "<", "args": [CLOUD, 20]}]}
    tiles = condition(("a", "array_contains", {"data": ["32TPS", "33UXP"], "value": VALUE}))
    assert to_cql2("s2:mgrs_tile", tiles) == {"op": "in", "args": [{"property": "s2:mgrs_tile"}, ["32TPS", "33UXP"]]}
    assert to_query("s2:mgrs_tile", tiles) == {"in": ["32TPS", "33UXP"]}
    both = condition(("low", "gte", {"x": VALUE, "y": 5}), ("high", "lte", {"x": VALUE, "y": 60}),
                     ("and", "and", {"x": {"from_node": "low"}, "y": {"from_node": "high"}}))
    assert to_cql2("eo:cloud_cover", both) == {"op": "and", "args": [
        {"op": ">=", "args": [CLOUD, 5]}, {"op": "<=", "args": [CLOUD, 60]}]}
    assert to_query("eo:cloud_cover", both) == {"gte": 5, "lte": 60}


def test_what_does_not_translate():
    either = condition(("low", "lt", {"x": VALUE, "y": 5}), ("high", "gt", {"x": VALUE, "y": 60}),
                       ("or", "or", {"x": {"from_node": "low"}, "y": {"from_node": "high"}}))
    assert to_cql2("eo:cloud_cover", either)["op"] == "or"
    assert to_query("eo:cloud_cover", either) is None  # the Query extension has no "or"
    for untranslatable in (condition(("c", "eq", {"x": VALUE, "y": 50, "delta": 1})),
                           condition(("c", "eq", {"x": VALUE, "y": "S2A", "case_sensitive": False})),
                           condition(("c", "text_begins", {"data": VALUE, "pattern": "S2"})),
                           condition(("c", "lte", {"x": VALUE, "y": {"from_parameter": "other"}})),
                           {"process_graph": {}}, None):
        assert to_cql2("p", untranslatable) is None and to_query("p", untranslatable) is None


def test_combined_with_a_default_filter():
    default = {"op": "=", "args": [{"property": "platform"}, "sentinel-2b"]}
    conditions = {"eo:cloud_cover": condition(("c", "lte", {"x": VALUE, "y": 50})),
                  "x": condition(("c", "text_begins", {"data": VALUE, "pattern": "S2"}))}
    assert combined_cql2(conditions, default) == {"op": "and", "args": [default, {"op": "<=", "args": [CLOUD, 50]}]}
    assert combined_cql2({}, None) is None and combined_cql2({}, default) == default
    assert combined_query(conditions) == {"eo:cloud_cover": {"lte": 50}}
    assert cql2_to_query({"op": "and", "args": [default, {"op": "<", "args": [CLOUD, 9]}]}) == {
        "platform": {"eq": "sentinel-2b"}, "eo:cloud_cover": {"lt": 9}}
    assert cql2_to_query({"op": "or", "args": [default, default]}) is None
