"""Temporal aggregation (openEO category "aggregate"): `aggregate_temporal` over given intervals and
`aggregate_temporal_period` over calendar periods.

Each interval or period is one reducer call on the sub-cube of its time steps (vectorised over all
pixels, `env.array_dimension` = the temporal dimension); intervals and periods are few, pixels many.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import (
    DimensionNotAvailableException,
    DistinctDimensionLabelsRequiredException,
    TemporalExtentEmptyException,
    TooManyDimensionsException,
)
from stratus_processing.processes.dimensions import coords_along, datetime64, dimensions_of_type
from stratus_processing.registry import Callback, ProcessArgs, process

_TIME_OF_DAY = re.compile(r"^(\d{2}):(\d{2}):(\d{2})$")
_NS_PER_DAY = 86_400 * 10**9


@process("aggregate_temporal")
def aggregate_temporal(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    intervals = args.get_required("intervals", expected_type=list)
    reducer = args.get_callback("reducer")
    labels = args.get_optional("labels", [], expected_type=list)
    context = args.get_optional("context")
    dimension = temporal_dimension(args, cube)
    if not intervals:
        raise args.invalid("intervals", "expected at least one interval")

    instants = cube[dimension].values.astype("datetime64[ns]")
    groups = [_interval_positions(args, instants, interval) for interval in intervals]
    if labels:
        if len(labels) != len(intervals):
            raise args.invalid("labels", f"expected one label per interval ({len(intervals)}), got {len(labels)}")
        new_labels = labels
    else:
        new_labels = [interval[0] for interval in intervals]
        if any(label is None for label in new_labels):
            raise DistinctDimensionLabelsRequiredException(
                message="An interval has no start, which would be its label: specify the labels.")
    if len({str(label) for label in new_labels}) != len(new_labels):
        raise DistinctDimensionLabelsRequiredException()
    return _aggregate(cube, dimension, groups, _interval_labels(new_labels), reducer, env, context, args)


@process("aggregate_temporal_period")
def aggregate_temporal_period(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    ordinal, label = args.get_enum("period", PERIODS)
    reducer = args.get_callback("reducer")
    context = args.get_optional("context")
    dimension = temporal_dimension(args, cube)

    instants = pd.DatetimeIndex(cube[dimension].values)
    ordinals = ordinal(instants) if len(instants) else np.array([], dtype=np.int64)
    # The labels are complete from the first to the last period with data.
    periods = np.arange(ordinals.min(), ordinals.max() + 1) if len(ordinals) else np.array([], dtype=np.int64)
    groups = [np.flatnonzero(ordinals == period) for period in periods]
    labels = np.array([label(int(period)) for period in periods], dtype=object)
    return _aggregate(cube, dimension, groups, labels, reducer, env, context, args)


def temporal_dimension(args: ProcessArgs, cube: xr.DataArray) -> str:
    """The `dimension` argument, or the cube's only temporal dimension."""
    name = args.get_optional("dimension", expected_type=str)
    if name is not None:
        if name not in cube.dims:
            raise DimensionNotAvailableException(dimension=name)
        candidates = [name]
    else:
        candidates = dimensions_of_type(cube, "temporal")
        if not candidates:
            raise DimensionNotAvailableException(message="The data cube has no temporal dimension.")
        if len(candidates) > 1:
            raise TooManyDimensionsException()
    if not np.issubdtype(cube[candidates[0]].dtype, np.datetime64):
        raise args.invalid("dimension", f"the labels of the dimension '{candidates[0]}' are not date-times")
    return candidates[0]


# --- intervals -------------------------------------------------------------------------------------

def _interval_positions(args: ProcessArgs, instants: np.ndarray, interval: Any) -> np.ndarray:
    """Positions of the time steps in a left-closed interval [start, end): instants, or times of day
    (which wrap around midnight when the end is earlier than the start)."""
    if not isinstance(interval, list) or len(interval) != 2:
        raise args.invalid("intervals", f"expected intervals [start, end], got {interval!r}")
    if interval[0] is None and interval[1] is None:
        raise args.invalid("intervals", "only one of start and end may be null")
    times = [_time_of_day(v) for v in interval]
    if any(t is not None for t in times):
        if any(t is None and v is not None for t, v in zip(times, interval, strict=True)):
            raise args.invalid("intervals", f"an interval mixes times of day with dates: {interval!r}")
        start = times[0] if times[0] is not None else 0
        end = times[1] if times[1] is not None else _NS_PER_DAY
        of_day = (instants - instants.astype("datetime64[D]")).astype("timedelta64[ns]").astype(np.int64)
        inside = (of_day >= start) & (of_day < end) if start < end else (of_day >= start) | (of_day < end)
        return np.flatnonzero(inside)
    try:
        start, end = (None if v is None else datetime64(v) for v in interval)
    except (TypeError, ValueError):
        raise args.invalid("intervals", f"instants must be RFC 3339 dates or date-times: {interval!r}") from None
    if start is not None and end is not None and end <= start:
        raise TemporalExtentEmptyException(
            message="At least one of the intervals is empty. The second instant in time must always be "
                    "greater/later than the first instant.")
    inside = np.ones(instants.shape, dtype=bool)
    if start is not None:
        inside &= instants >= start
    if end is not None:
        inside &= instants < end
    return np.flatnonzero(inside)


def _time_of_day(value: Any) -> int | None:
    """`HH:MM:SS` as nanoseconds since midnight; None for anything else."""
    match = _TIME_OF_DAY.match(value) if isinstance(value, str) else None
    if not match:
        return None
    hours, minutes, seconds = (int(g) for g in match.groups())
    return ((hours * 60 + minutes) * 60 + seconds) * 10**9


def _interval_labels(labels: Sequence[Any]) -> np.ndarray:
    """Dates and date-times become instants (the dimension stays temporal); others stay as given."""
    if all(isinstance(v, str) and _time_of_day(v) is None for v in labels):
        try:
            return np.array([datetime64(v) for v in labels], dtype="datetime64[ns]")
        except (TypeError, ValueError):
            pass
    if all(isinstance(v, Real) and not isinstance(v, bool) for v in labels):
        return np.array(labels)
    return np.array(labels, dtype=object)


# --- calendar periods: instant -> period number, period number -> label ------------------------------

def _years(t: pd.DatetimeIndex) -> np.ndarray:
    return t.year.to_numpy(np.int64)


def _months(t: pd.DatetimeIndex) -> np.ndarray:
    """Months since the year 0."""
    return _years(t) * 12 + t.month.to_numpy(np.int64) - 1


def _days(t: pd.DatetimeIndex) -> np.ndarray:
    """Days since 1970-01-01."""
    return t.values.astype("datetime64[D]").astype(np.int64)


def _day(days: int) -> pd.Timestamp:
    return pd.Timestamp(np.datetime64(days, "D"))


def _dekads(t: pd.DatetimeIndex) -> np.ndarray:
    return _months(t) * 3 + np.minimum((t.day.to_numpy(np.int64) - 1) // 10, 2)


def _week_label(week: int) -> str:
    year, number, _ = _day(7 * week - 3).isocalendar()  # 1970-01-01 is a Thursday: weeks start on Mondays
    return f"{year:04d}-{number:02d}"


def _hour_label(hour: int) -> str:
    return f"{pd.Timestamp(np.datetime64(hour, 'h')):%Y-%m-%d-%H}"


_SEASONS = ("djf", "mam", "jja", "son")
_TROPICAL_SEASONS = ("ndjfma", "mjjaso")

# openEO period -> (period number of each instant, label of a period number); consecutive periods
# have consecutive numbers, so the complete label range is a number range.
PERIODS: dict[str, tuple[Callable[[pd.DatetimeIndex], np.ndarray], Callable[[int], str]]] = {
    "hour": (lambda t: t.values.astype("datetime64[h]").astype(np.int64), _hour_label),
    "day": (_days, lambda d: f"{_day(d).year:04d}-{_day(d).dayofyear:03d}"),
    "week": (lambda t: (_days(t) + 3) // 7, _week_label),
    "dekad": (_dekads, lambda k: f"{k // 36:04d}-{k % 36 + 1:02d}"),
    "month": (_months, lambda m: f"{m // 12:04d}-{m % 12 + 1:02d}"),
    # December belongs to the next season block; a season is labelled with the year it starts in.
    "season": (lambda t: (_months(t) + 1) // 3,
               lambda s: f"{s // 4 - (1 if s % 4 == 0 else 0):04d}-{_SEASONS[s % 4]}"),
    "tropical-season": (lambda t: (_months(t) + 2) // 6,
                        lambda s: f"{s // 2 - (1 if s % 2 == 0 else 0):04d}-{_TROPICAL_SEASONS[s % 2]}"),
    "year": (_years, lambda y: f"{y:04d}"),
    "decade": (lambda t: _years(t) // 10, lambda d: f"{d * 10:04d}"),
    "decade-ad": (lambda t: (_years(t) - 1) // 10, lambda d: f"{d * 10 + 1:04d}"),
}


# --- the aggregation -------------------------------------------------------------------------------

def _aggregate(cube: xr.DataArray, dimension: str, groups: Sequence[np.ndarray], labels: np.ndarray,
               reducer: Callback, env: EvalEnv, context: Any, args: ProcessArgs) -> xr.DataArray:
    """One reducer call per group of time steps; the results stacked along `dimension` with `labels`.
    A group without time steps is no-data (what the reducers give for an empty array), without a call."""
    reducer_env = env.for_array_dimension(dimension)
    template = _template(cube, dimension)
    reduced = [
        _one_per_cell(reducer(reducer_env, data=cube.isel({dimension: positions}), context=context), template,
                      dimension, args) if len(positions) else template
        for positions in groups
    ]
    if reduced:
        stacked = xr.concat(reduced, dim=dimension, coords="minimal", compat="override", join="override")
    else:
        stacked = template.expand_dims({dimension: 0})
    stacked = stacked.drop_vars(coords_along(stacked, dimension), errors="ignore")
    stacked = stacked.assign_coords({dimension: labels}).transpose(*cube.dims)
    return cubes.carry_metadata(stacked, cube)


def _template(cube: xr.DataArray, dimension: str) -> xr.DataArray:
    """An all-NaN cube like `cube` without `dimension` (also when `dimension` is empty)."""
    dims = [d for d in cube.dims if d != dimension]
    coords = {name: coord for name, coord in cube.coords.items() if dimension not in coord.dims}
    return xr.DataArray(np.full([cube.sizes[d] for d in dims], np.nan, dtype=cubes.CUBE_DTYPE),
                        dims=dims, coords=coords, attrs=cube.attrs)


def _one_per_cell(value: Any, template: xr.DataArray, dimension: str, args: ProcessArgs) -> xr.DataArray:
    if not isinstance(value, xr.DataArray):
        if value is not None and not isinstance(value, Real):
            raise args.invalid("reducer", f"it must compute a number per cell, got {type(value).__name__}")
        return xr.full_like(template, np.nan if value is None else value, dtype=cubes.CUBE_DTYPE)
    if dimension in value.dims:
        raise args.invalid("reducer", f"it must compute a single value per cell, but its result still has the "
                                      f"dimension '{dimension}'")
    if not set(value.dims) <= set(template.dims):
        raise args.invalid("reducer", f"its result has dimensions the cube doesn't have: {list(value.dims)}")
    # Drop what's left of the reduced dimension, e.g. the scalar label array_element keeps.
    value = value.drop_vars([dimension, *coords_along(value, dimension)], errors="ignore")
    value = value.broadcast_like(template).transpose(*template.dims)
    return value.astype(cubes.CUBE_DTYPE) if value.dtype.kind in "biuf" else value
