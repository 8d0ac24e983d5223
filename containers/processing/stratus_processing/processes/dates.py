"""Date and time processes (openEO category "date & time") on RFC 3339 strings.

A date without a time is midnight UTC; results keep the input's form: a date stays a date (time units
only move it by whole days), a date-time keeps its time zone offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process

_UNITS = ("millisecond", "second", "minute", "hour", "day", "week", "month", "year")
_SECONDS = {"millisecond": 1e-3, "second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0,
            "week": 604800.0}


def _is_date_only(text: str) -> bool:
    return len(text.strip()) == 10


def _instant(args: ProcessArgs, name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise args.invalid(name, "expected a date or date-time string")
    try:
        return cubes.parse_utc(value)
    except ValueError as exc:
        raise args.invalid(name, f"not an RFC 3339 date or date-time: {value!r}") from exc


def _local(args: ProcessArgs, name: str, value: str) -> datetime:
    """The date-time with its own offset (UTC for a date or a 'Z')."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise args.invalid(name, f"not an RFC 3339 date or date-time: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@process("date_between")
def date_between(args: ProcessArgs, env: EvalEnv) -> bool | None:
    x = args.get_required("x")
    if x is None:
        return None
    exclude_max = args.get_optional("exclude_max", False, expected_type=bool)
    value = _instant(args, "x", x)
    low = _instant(args, "min", args.get_required("min"))
    high = _instant(args, "max", args.get_required("max"))
    return low <= value < high if exclude_max else low <= value <= high


@process("date_shift")
def date_shift(args: ProcessArgs, env: EvalEnv) -> str | None:
    text = args.get_required("date", expected_type=(str, type(None)))
    value = args.get_required("value", expected_type=int)
    unit = args.get_enum("unit", list(_UNITS))
    if text is None:
        return None
    moment = _local(args, "date", text)
    if unit in ("month", "year"):
        # relativedelta rounds an invalid day down to the month's last day (2020-01-31 + 1 month = 02-29)
        shifted = moment + (relativedelta(months=value) if unit == "month" else relativedelta(years=value))
    else:
        shifted = moment + timedelta(seconds=_SECONDS[unit] * value)
    if _is_date_only(text):
        return shifted.date().isoformat()
    return _format(shifted)


def _format(moment: datetime) -> str:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        stamp += f".{moment.microsecond // 1000:03d}"
    offset = moment.utcoffset()
    if not offset:
        return stamp + "Z"
    return stamp + moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:]


@process("date_difference")
def date_difference(args: ProcessArgs, env: EvalEnv) -> float | None:
    first, second = args.get_required("date1"), args.get_required("date2")
    unit = args.get_enum("unit", list(_UNITS), default="second")
    if first is None or second is None:
        return None
    start, end = _instant(args, "date1", first), _instant(args, "date2", second)
    if unit in _SECONDS:
        return (end - start).total_seconds() / _SECONDS[unit]
    months = _months_between(start, end)
    return months / 12 if unit == "year" else months


def _months_between(start: datetime, end: datetime) -> float:
    """Whole calendar months, plus the remainder as a fraction of the month it falls in."""
    if end < start:
        return -_months_between(end, start)
    whole = (end.year - start.year) * 12 + end.month - start.month
    if start + relativedelta(months=whole) > end:
        whole -= 1
    anchor = start + relativedelta(months=whole)
    following = start + relativedelta(months=whole + 1)
    return whole + (end - anchor) / (following - anchor)

