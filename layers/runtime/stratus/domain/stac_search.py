"""STAC API Item Search requests (`GET`/`POST /stac/search`, `GET /stac/collections/{id}/items`): parsing
and checking the parameters of Core, Item Search, Filter (CQL2 text and JSON), Sort, Fields and Query into
one `SearchRequest` the index executes. Plain Python: `cql2` parses and checks filters."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
MAX_IDS = 1_000
# Query extension operators and their CQL2 equivalents
_QUERY_OPERATORS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in",
                    "startsWith": "like", "endsWith": "like", "contains": "like"}


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


# CQL2 operators a filter may use (basic CQL2, advanced comparison, spatial, temporal and array operators).
# Everything else is refused: CQL2 "custom functions" would reach the SQL as function calls (DuckDB's `getenv`
# would read the function's environment, credentials included).
CQL2_OPERATORS = frozenset({
    "and", "or", "not", "=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "isNull",
    "s_intersects", "s_equals", "s_disjoint", "s_touches", "s_within", "s_overlaps", "s_crosses", "s_contains",
    "t_before", "t_after", "t_meets", "t_metby", "t_overlaps", "t_overlappedby", "t_starts", "t_startedby",
    "t_during", "t_contains", "t_finishes", "t_finishedby", "t_equals", "t_disjoint", "t_intersects",
    "a_equals", "a_contains", "a_containedby", "a_overlaps",
})


class InvalidSearch(ValueError):
    """A search parameter is malformed (the API answers 400)."""


@dataclass(frozen=True)
class SortKey:
    field: str  # a queryable name: "datetime", "id", "collection", "eo:cloud_cover" (without "properties.")
    descending: bool = False


@dataclass(frozen=True)
class SearchRequest:
    collections: tuple[str, ...] = ()  # empty: every collection the caller may see (the API fills them in)
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    intersects: dict[str, Any] | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    filter: dict[str, Any] | None = None  # CQL2-JSON (text is converted), with the Query extension's terms ANDed
    sortby: tuple[SortKey, ...] = ()
    include: tuple[str, ...] | None = None  # Fields extension; None: not given, (): the default set
    exclude: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def with_collections(self, collections: tuple[str, ...]) -> SearchRequest:
        return SearchRequest(**{**self.__dict__, "collections": collections})


@dataclass(frozen=True)
class SearchPage:
    items: list[dict[str, Any]]
    matched: int
    next_offset: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def offset_of(token: Any) -> int:
    if token in (None, ""):
        return 0
    try:
        padded = str(token) + "=" * (-len(str(token)) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded))["offset"]
    except (ValueError, KeyError, TypeError):
        raise InvalidSearch("token: not a page token of this API") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidSearch("token: not a page token of this API")
    return offset


def from_query_string(params: Mapping[str, str]) -> SearchRequest:
    """GET: comma-separated lists, `sortby=-eo:cloud_cover,+id`, `fields=id,-assets`, `filter` as CQL2 text
    (or JSON with `filter-lang=cql2-json`), `query` as JSON."""
    body: dict[str, Any] = {}
    for name in ("collections", "ids"):
        if params.get(name):
            body[name] = [part for part in params[name].split(",") if part]
    if params.get("bbox"):
        body["bbox"] = _numbers(params["bbox"].split(","), "bbox")
    if params.get("intersects"):
        body["intersects"] = _json(params["intersects"], "intersects")
    for name in ("datetime", "limit", "token"):
        if params.get(name) not in (None, ""):
            body[name] = params[name]
    if params.get("sortby"):
        body["sortby"] = [{"field": part.lstrip("+-"), "direction": "desc" if part.startswith("-") else "asc"}
                          for part in params["sortby"].split(",") if part.strip("+-")]
    if params.get("fields"):
        parts = [part for part in params["fields"].split(",") if part]
        include = [p.lstrip("+") for p in parts if not p.startswith("-")]
        body["fields"] = {"exclude": [p[1:] for p in parts if p.startswith("-")], **({"include": include} if include
                                                                                    else {})}
    if params.get("query"):
        body["query"] = _json(params["query"], "query")
    if params.get("filter"):
        language = params.get("filter-lang") or "cql2-text"
        body["filter"] = _json(params["filter"], "filter") if language == "cql2-json" else params["filter"]
        body["filter-lang"] = language
    return from_body(body)


def from_body(body: Any) -> SearchRequest:
    """POST (and GET, once parsed): the STAC API search body."""
    if not isinstance(body, dict):
        raise InvalidSearch("the search body must be a JSON object")
    collections = _strings(body.get("collections"), "collections")
    ids = _strings(body.get("ids"), "ids")
    if len(ids) > MAX_IDS:
        raise InvalidSearch(f"ids: at most {MAX_IDS}")
    bbox = _bbox(body.get("bbox"))
    intersects = body.get("intersects")
    if intersects is not None:
        if bbox is not None:
            raise InvalidSearch("bbox and intersects exclude each other")
        if not isinstance(intersects, dict) or "type" not in intersects:
            raise InvalidSearch("intersects must be a GeoJSON geometry")
    filter_json = _filter(body.get("filter"), body.get("filter-lang"), intersects)
    query_filter = _query(body.get("query"))
    if query_filter is not None:
        filter_json = query_filter if filter_json is None else {"op": "and", "args": [filter_json, query_filter]}
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        raise InvalidSearch("fields must be an object with include and/or exclude")
    # include absent: every field; include null or [] (POST): the default set (`stac_api.DEFAULT_FIELDS`)
    include = _strings(fields.get("include"), "fields.include") if "include" in fields else None
    return SearchRequest(
        collections=collections, ids=ids, bbox=bbox, intersects=intersects,
        interval=_interval(body.get("datetime")), filter=filter_json, sortby=_sortby(body.get("sortby")),
        include=include, exclude=_strings(fields.get("exclude"), "fields.exclude"),
        limit=_limit(body.get("limit")), offset=offset_of(body.get("token")))


def queryable_name(name: str) -> str:
    return name[len("properties."):] if name.startswith("properties.") else name


def _filter(value: Any, language: Any, intersects: Any) -> dict[str, Any] | None:
    if value in (None, ""):
        return None
    import cql2  # parses and checks; the API function bundles it (a small wheel)

    try:
        if isinstance(value, dict):
            if language not in (None, "cql2-json"):
                raise InvalidSearch("filter-lang must be cql2-json for a JSON filter")
            expression = cql2.Expr(_final_cql2(value))
        elif isinstance(value, str):
            if language not in (None, "cql2-text"):
                raise InvalidSearch("filter-lang must be cql2-text for a text filter")
            expression = cql2.Expr(_final_cql2(cql2.parse_text(value).to_json()))
        else:
            raise InvalidSearch("filter must be CQL2 text or CQL2 JSON")
        expression.to_sql()  # what the index runs; `validate()` would add ~0.1 s of JSON Schema per search
        unknown = sorted(_operators(expression.to_json()) - CQL2_OPERATORS)
        if unknown:
            raise InvalidSearch(f"filter: unsupported operator or function {', '.join(unknown)}")
    except (cql2.ParseError, cql2.ValidationError, ValueError) as error:
        if isinstance(error, InvalidSearch):
            raise
        raise InvalidSearch(f"filter: {str(error).splitlines()[0][:300]}") from None
    return expression.to_json()


def _final_cql2(node: Any) -> Any:
    """CQL2-JSON in the form the index runs: 1.0's `between` also for the drafts' (bounds as one array), item
    properties by their queryable name (`properties.eo:cloud_cover` is `eo:cloud_cover`)."""
    if isinstance(node, list):
        return [_final_cql2(part) for part in node]
    if not isinstance(node, dict):
        return node
    node = {key: _final_cql2(value) for key, value in node.items()}
    if isinstance(node.get("property"), str):
        node["property"] = queryable_name(node["property"])
    args = node.get("args")
    if node.get("op") == "between" and isinstance(args, list) and len(args) == 2 and isinstance(args[1], list) \
            and len(args[1]) == 2:
        node["args"] = [args[0], *args[1]]
    return node


def _operators(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_operators(part) for part in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["op"]} if isinstance(node.get("op"), str) else set()
    return found.union(*(_operators(value) for value in node.values()))


def filter_properties(node: Any) -> set[str]:
    """The property names a CQL2-JSON filter refers to."""
    if isinstance(node, list):
        return set().union(*(filter_properties(part) for part in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    if isinstance(node.get("property"), str) and len(node) == 1:
        return {node["property"]}
    return set().union(*(filter_properties(value) for value in node.values())) if node else set()


def _query(value: Any) -> dict[str, Any] | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise InvalidSearch("query must be an object of property -> {operator: value}")
    terms = []
    for name, operators in value.items():
        if not isinstance(operators, dict):
            raise InvalidSearch(f"query.{name} must be an object of operator -> value")
        for operator, operand in operators.items():
            if operator not in _QUERY_OPERATORS:
                raise InvalidSearch(f"query.{name}: unknown operator {operator!r}")
            prop = {"property": queryable_name(name)}
            if operator == "in":
                if not isinstance(operand, list):
                    raise InvalidSearch(f"query.{name}.in must be a list")
                terms.append({"op": "in", "args": [prop, operand]})
            elif operator in ("startsWith", "endsWith", "contains"):
                escaped = str(operand).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                pattern = {"startsWith": f"{escaped}%", "endsWith": f"%{escaped}", "contains": f"%{escaped}%"}
                terms.append({"op": "like", "args": [prop, pattern[operator]]})
            else:
                terms.append({"op": _QUERY_OPERATORS[operator], "args": [prop, operand]})
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"op": "and", "args": terms}


def _interval(value: Any) -> tuple[datetime | None, datetime | None] | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidSearch("datetime must be an RFC 3339 date-time or interval")
    parts = value.split("/")
    if len(parts) > 2:
        raise InvalidSearch("datetime: at most one '/'")
    bounds = [None if part in ("", "..") else _instant(part) for part in parts]
    if len(bounds) == 1:
        if bounds[0] is None:
            raise InvalidSearch("datetime: an instant or an interval")
        return bounds[0], bounds[0]
    start, end = bounds
    if start is None and end is None:
        raise InvalidSearch("datetime: an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise InvalidSearch("datetime: the interval ends before it starts")
    return start, end


def _instant(text: str) -> datetime:
    if not _RFC3339.match(text):
        raise InvalidSearch(f"datetime: not an RFC 3339 date-time: {text!r}")
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSearch(f"datetime: not an RFC 3339 date-time: {text!r}") from None


def _bbox(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    numbers = _numbers(value, "bbox") if isinstance(value, list) else None
    if numbers is None or len(numbers) not in (4, 6):
        raise InvalidSearch("bbox must be 4 (or 6) numbers")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    west, south, east, north = numbers
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidSearch("bbox must be west, south, east, north in WGS 84 degrees (south <= north)")
    return west, south, east, north


def _sortby(value: Any) -> tuple[SortKey, ...]:
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        value = [{"field": part.lstrip("+-"), "direction": "desc" if part.startswith("-") else "asc"}
                 for part in value.split(",") if part.strip("+-")]
    if not isinstance(value, list):
        raise InvalidSearch("sortby must be a list of {field, direction}")
    keys = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("field"), str) or not entry["field"]:
            raise InvalidSearch("sortby entries need a field")
        direction = entry.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise InvalidSearch("sortby direction must be asc or desc")
        keys.append(SortKey(queryable_name(entry["field"]), direction == "desc"))
    return tuple(keys)


def _limit(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise InvalidSearch("limit must be an integer") from None
    if limit < 1:
        raise InvalidSearch("limit must be at least 1")
    return min(limit, MAX_LIMIT)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSearch(f"{name} must be a list of strings")
    return tuple(value)


def _numbers(values: list[Any], name: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidSearch(f"{name} must be numbers") from None


def _json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidSearch(f"{name} is not valid JSON") from None
