import pytest

from stratus.request_limits import MAX_JSON_DEPTH, BodyRefused, json_depth, parse_json_body, plausible_id


@pytest.mark.parametrize("value, depth", [(1, 0), ([], 1), ({}, 1), ({"a": [1, {"b": []}]}, 4), ([[], [[[]]]], 4)])
def test_json_depth(value, depth):
    assert json_depth(value) == depth


def test_depth_at_the_limit_is_parsed_and_one_more_is_refused():
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_depth(parse_json_body(at_limit, 10_000)) == MAX_JSON_DEPTH
    with pytest.raises(BodyRefused, match="nested"):
        parse_json_body("[" + at_limit + "]", 10_000)


def test_parser_recursion_is_a_refusal_not_a_crash():
    with pytest.raises(BodyRefused, match="nested"):
        parse_json_body("[" * 100_000 + "]" * 100_000, 1_000_000)


@pytest.mark.parametrize("body", [None, "", b"\xc5\xff", "{", "nan-ish"])
def test_invalid_bodies_are_refused(body):
    with pytest.raises(BodyRefused, match="not valid JSON"):
        parse_json_body(body, 1000)


def test_size_counts_utf8_bytes():
    assert parse_json_body('"ää"', 6) == "ää"
    with pytest.raises(BodyRefused, match="7 bytes"):
        parse_json_body('"ääa"', 6)


@pytest.mark.parametrize("value, plausible", [("j-123", True), ("", False), ("x" * 257, False), ("a\nb", False),
                                               ("a\u200bb", False), ("ünïcode", True)])
def test_plausible_ids(value, plausible):
    assert plausible_id(value) is plausible
