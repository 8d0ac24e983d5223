"""openEO `properties` conditions of load_collection / load_stac as STAC API search filters.

Each condition is a child process graph on the parameter `value` (the item's property). Those built
from `eq`, `neq`, `lt`, `lte`, `gt`, `gte` (with a constant), `between`, `array_contains` (a constant
list) and `and` / `or` of them translate to CQL2-JSON (STAC API Filter extension) and, without `or`,
to the Query extension; the openeo client's `max_cloud_cover=` is `lte(value, n)` on
`eo:cloud_cover`. Anything else is not translated: the engine still applies every condition to
every item it receives, so a translation only lets the API send fewer items.
Pure Python, in the runtime layer, so the API could tell the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VALUE = "value"
_COMPARISONS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_MIRRORED = {"eq": "eq", "neq": "neq", "lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}
_BACKEND = (None, "backend")


class Untranslatable(ValueError):
    pass


def to_cql2(name: str, condition: Mapping[str, Any]) -> dict[str, Any] | None:
    """The condition on property `name` as CQL2-JSON, or None when it doesn't translate."""
    try:
        return _Translator(condition).cql2(name)
    except Untranslatable:
        return None


def to_query(name: str, condition: Mapping[str, Any]) -> dict[str, Any] | None:
    """The condition as Query-extension operators (`{"lte": 50}`), or None when it doesn't translate."""
    try:
        return _Translator(condition).query()
    except Untranslatable:
        return None


def combined_cql2(properties: Mapping[str, Mapping[str, Any]],
                  default: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The AND of a collection's default CQL2 filter and the translatable conditions."""
    parts = [dict(default)] if default else []
    parts += [expression for name, condition in properties.items() if (expression := to_cql2(name, condition))]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"op": "and", "args": parts}


def combined_query(properties: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    query = {name: operators for name, condition in properties.items() if (operators := to_query(name, condition))}
    return query or None


def cql2_to_query(expression: Mapping[str, Any]) -> dict[str, Any] | None:
    """A CQL2-JSON filter as a Query-extension query when it is an AND of comparisons of a property
    with a constant (as the configured default filters are); else None."""
    query: dict[str, dict[str, Any]] = {}
    operators = {symbol: name for name, symbol in _COMPARISONS.items()}

    def add(item: Any) -> bool:
        if not isinstance(item, Mapping):
            return False
        op, args = item.get("op"), item.get("args")
        if not isinstance(args, list):
            return False
        if op == "and":
            return all(add(a) for a in args)
        if len(args) != 2 or not isinstance(args[0], Mapping) or not isinstance(args[0].get("property"), str):
            return False
        name = args[0]["property"]
        if op in operators and _is_constant(args[1]):
            key = operators[op]
        elif op == "in" and isinstance(args[1], list) and all(_is_constant(v) for v in args[1]):
            key = "in"
        else:
            return False
        if key in query.setdefault(name, {}):
            return False
        query[name][key] = args[1]
        return True

    return query if add(expression) and query else None


class _Translator:
    def __init__(self, condition: Mapping[str, Any]) -> None:
        graph = condition.get("process_graph") if isinstance(condition, Mapping) else None
        if not isinstance(graph, Mapping):
            raise Untranslatable("not a process graph")
        self._nodes = {k: v for k, v in graph.items() if isinstance(v, Mapping)}
        results = [k for k, v in self._nodes.items() if v.get("result")]
        if len(results) != 1:
            raise Untranslatable("no single result node")
        self._result = results[0]

    def cql2(self, name: str) -> dict[str, Any]:
        return self._cql2(self._result, {"property": name}, set())

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        for op, operand in self._query_terms(self._result, set()):
            if op in query:
                raise Untranslatable(f"two '{op}' conditions")
            query[op] = operand
        return query

    def _node(self, node_id: str, seen: set[str]) -> tuple[str, Mapping[str, Any]]:
        if node_id in seen or node_id not in self._nodes:
            raise Untranslatable("not a tree")
        seen.add(node_id)
        node = self._nodes[node_id]
        if node.get("namespace") not in _BACKEND:
            raise Untranslatable("not a predefined process")
        return str(node.get("process_id")), node.get("arguments") or {}

    def _cql2(self, node_id: str, prop: dict[str, str], seen: set[str]) -> dict[str, Any]:
        process_id, arguments = self._node(node_id, seen)
        if process_id in ("and", "or"):
            return {"op": process_id, "args": [self._cql2(self._child(arguments, k), prop, seen) for k in ("x", "y")]}
        terms = self._terms(process_id, arguments)
        expressions = []
        for op, operand in terms:
            if op == "in":
                expressions.append({"op": "in", "args": [prop, list(operand)]})
            elif op == "between":
                expressions.append({"op": "between", "args": [prop, operand[0], operand[1]]})
            else:
                expressions.append({"op": _COMPARISONS[op], "args": [prop, operand]})
        return expressions[0] if len(expressions) == 1 else {"op": "and", "args": expressions}

    def _query_terms(self, node_id: str, seen: set[str]) -> list[tuple[str, Any]]:
        process_id, arguments = self._node(node_id, seen)
        if process_id == "and":
            return [t for k in ("x", "y") for t in self._query_terms(self._child(arguments, k), seen)]
        if process_id == "or":
            raise Untranslatable("the Query extension has no 'or'")
        terms = []
        for op, operand in self._terms(process_id, arguments):
            if op == "between":
                terms += [("gte", operand[0]), ("lte", operand[1])]
            else:
                terms.append((op, list(operand) if op == "in" else operand))
        return terms

    @staticmethod
    def _child(arguments: Mapping[str, Any], key: str) -> str:
        value = arguments.get(key)
        if not isinstance(value, Mapping) or not isinstance(value.get("from_node"), str):
            raise Untranslatable(f"'{key}' is not another condition")
        return value["from_node"]

    @staticmethod
    def _terms(process_id: str, arguments: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """One leaf condition as (operator, constant) terms, all of which must hold."""
        if process_id in _COMPARISONS:
            extras = set(arguments) - {"x", "y"}
            if any(arguments[k] is not None and arguments[k] is not True for k in extras):
                raise Untranslatable("delta or case-insensitive comparison")
            x, y = arguments.get("x"), arguments.get("y")
            if _is_value(x) and _is_constant(y):
                return [(process_id, y)]
            if _is_value(y) and _is_constant(x):
                return [(_MIRRORED[process_id], x)]
            raise Untranslatable("not a comparison of the value with a constant")
        if process_id == "between":
            low, high = arguments.get("min"), arguments.get("max")
            if not _is_value(arguments.get("x")) or not _is_number(low) or not _is_number(high):
                raise Untranslatable("between needs the value and numeric bounds")
            if arguments.get("exclude_max"):
                return [("gte", low), ("lt", high)]
            return [("between", (low, high))]
        if process_id == "array_contains":
            data = arguments.get("data")
            if not _is_value(arguments.get("value")) or not isinstance(data, list) or not data \
                    or not all(_is_constant(v) for v in data):
                raise Untranslatable("array_contains needs a constant array and the value")
            return [("in", tuple(data))]
        raise Untranslatable(f"process '{process_id}'")


def _is_value(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("from_parameter") == VALUE


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_constant(value: Any) -> bool:
    return isinstance(value, str) or _is_number(value)
