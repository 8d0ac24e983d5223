"""Text processes (openEO category "texts"): plain strings only; a cube holds no text.

No-data in, no-data out for the tests (`text_begins(null, ...)` is null). Case-insensitive matching
compares case-folded text, so "Ä" matches "ä" (and "ß" matches "ss")."""

from __future__ import annotations

import json
import math
from typing import Any

from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process


def _text_and_pattern(args: ProcessArgs) -> tuple[str | None, str, bool]:
    data = args.get_required("data", expected_type=(str, type(None)))
    pattern = args.get_required("pattern", expected_type=str)
    case_sensitive = args.get_optional("case_sensitive", True, expected_type=bool)
    if data is not None and not case_sensitive:
        return data.casefold(), pattern.casefold(), case_sensitive
    return data, pattern, case_sensitive


@process("text_begins")
def text_begins(args: ProcessArgs, env: EvalEnv) -> bool | None:
    data, pattern, _ = _text_and_pattern(args)
    return None if data is None else data.startswith(pattern)


@process("text_ends")
def text_ends(args: ProcessArgs, env: EvalEnv) -> bool | None:
    data, pattern, _ = _text_and_pattern(args)
    return None if data is None else data.endswith(pattern)


@process("text_contains")
def text_contains(args: ProcessArgs, env: EvalEnv) -> bool | None:
    data, pattern, _ = _text_and_pattern(args)
    return None if data is None else pattern in data


@process("text_find")
def text_find(args: ProcessArgs, env: EvalEnv) -> int | None:
    """The character index of the first match in the original text (case folding may change lengths,
    so the case-insensitive search lower-cases, which keeps them for all but a few characters)."""
    data = args.get_required("data", expected_type=(str, type(None)))
    pattern = args.get_required("pattern", expected_type=str)
    case_sensitive = args.get_optional("case_sensitive", True, expected_type=bool)
    if data is None:
        return None
    if not case_sensitive:
        data, pattern = data.lower(), pattern.lower()
    position = data.find(pattern)
    return None if position < 0 else position


@process("text_concat")
def text_concat(args: ProcessArgs, env: EvalEnv) -> str:
    data = args.get_required("data", expected_type=list)
    separator = args.get_optional("separator", "", expected_type=(str, int, float, bool))
    return as_text(separator).join(as_text(value) for value in data)


def as_text(value: Any) -> str:
    """A JSON scalar as text the way JSON writes it: null, true, 1 (an integral number), -1.5."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value, ensure_ascii=False)
