"""Climatology (openEO category "climatology"): `climatological_normal` averages a time series per
period of the year over a range of years; `anomaly` subtracts such normals from a series.

Period keys are the labels of the normals (`month` -> "01".."12", `season` -> "djf".., `day` -> "001"..);
a series' time label maps to its key from its instant, or, for a label of `aggregate_temporal_period`
("2020-06", "2020-jja"), from the label's period part."""

from __future__ import annotations

from typing import Any

import numpy as np

from stratus_processing.deferred import pd, xr
from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.processes.dimensions import coords_along, dimensions_of_type
from stratus_processing.processes.temporal import temporal_dimension
from stratus_processing.registry import ProcessArgs, process

_SEASONS = ("djf", "mam", "jja", "son")
_TROPICAL_SEASONS = ("ndjfma", "mjjaso")
SINGLE_PERIOD = "climatology-period"


def _season(month: int) -> str:
    return _SEASONS[(month % 12) // 3]


def _tropical_season(month: int) -> str:
    return _TROPICAL_SEASONS[0] if month >= 11 or month <= 4 else _TROPICAL_SEASONS[1]


# period -> the key of an instant (as the normals label it)
_KEYS = {
    "hour": lambda t: f"{t.hour:02d}",
    "day": lambda t: f"{t.dayofyear:03d}",
    "week": lambda t: f"{t.isocalendar()[1]:02d}",
    "dekad": lambda t: f"{(t.month - 1) * 3 + min((t.day - 1) // 10, 2) + 1:02d}",
    "month": lambda t: f"{t.month:02d}",
    "season": lambda t: _season(t.month),
    "tropical-season": lambda t: _tropical_season(t.month),
    "year": lambda t: f"{t.year:04d}",
    "decade": lambda t: f"{t.year // 10 * 10:04d}",
    "decade-ad": lambda t: f"{(t.year - 1) // 10 * 10 + 1:04d}",
}
_NORMAL_LABELS = {
    "month": [f"{m:02d}" for m in range(1, 13)],
    "season": list(_SEASONS),
    "tropical-season": list(_TROPICAL_SEASONS),
}


@process("climatological_normal")
def climatological_normal(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    period = args.get_enum("period", ["day", "month", "climatology-period", "season", "tropical-season"])
    first, last = _climatology_years(args)
    dimension = temporal_dimension(args, cube)
    instants = pd.DatetimeIndex(cube[dimension].values)
    # A season reaching back into December (or November) counts for the year it ends in: the one before
    # the climatology period is in, the one at the end of its last year is not.
    shift = {"season": 12, "tropical-season": 11}.get(period)
    years = instants.year.to_numpy() + (instants.month.to_numpy() >= shift if shift else 0)
    inside = (years >= first) & (years <= last)
    if period == SINGLE_PERIOD:
        keys = np.array([SINGLE_PERIOD] * len(instants), dtype=object)
        labels = [SINGLE_PERIOD]
    else:
        keys = np.array([_KEYS[period](t) for t in instants], dtype=object)
        labels = _NORMAL_LABELS.get(period) or sorted(set(keys[inside]))
    means = []
    for label in labels:
        positions = np.flatnonzero(inside & (keys == label))
        selected = cube.isel({dimension: positions})
        means.append(selected.mean(dimension, skipna=True) if len(positions) else
                     cube.isel({dimension: 0}, drop=True) * np.nan)
    stacked = xr.concat([m.drop_vars(dimension, errors="ignore") for m in means], dim=dimension,
                        coords="minimal", compat="override")
    stacked = stacked.assign_coords({dimension: np.array(labels, dtype=object)}).transpose(*cube.dims)
    return cubes.carry_metadata(stacked.astype(cubes.CUBE_DTYPE), cube)


def _climatology_years(args: ProcessArgs) -> tuple[int, int]:
    period = args.get_optional("climatology_period", ["1981", "2010"], expected_type=list)
    try:
        first, last = (int(str(year)[:4]) for year in period)
    except ValueError as exc:
        raise args.invalid("climatology_period", "expected two years, e.g. ['1981', '2010']") from exc
    if first > last:
        raise args.invalid("climatology_period", "the first year is after the last")
    return first, last


@process("anomaly")
def anomaly(args: ProcessArgs, env: EvalEnv) -> xr.DataArray:
    cube = args.get_cube("data")
    normals = args.get_required("normals")
    if not isinstance(normals, xr.DataArray):
        raise args.invalid("normals", "expected a data cube")
    period = args.get_enum("period", [*_KEYS, "single-period", "climatology-period"])
    dimension = _series_dimension(args, cube)
    normal_dimension = _normals_dimension(args, normals)
    normal_labels = [str(label) for label in normals[normal_dimension].values]
    if period in ("single-period", "climatology-period"):
        if len(normal_labels) != 1:
            raise args.invalid("normals", f"a {period} normal has a single label, got {len(normal_labels)}")
        positions = [0] * cube.sizes[dimension]
    else:
        index = {label: i for i, label in enumerate(normal_labels)}
        keys = [_key(args, period, label) for label in cube[dimension].values]
        missing = sorted({key for key in keys if key not in index})
        if missing:
            raise args.invalid("normals", f"no normal for the period(s) {', '.join(missing)}")
        positions = [index[key] for key in keys]
    aligned = normals.isel({normal_dimension: positions}).drop_vars(coords_along(normals, normal_dimension))
    aligned = aligned.rename({normal_dimension: dimension}) if normal_dimension != dimension else aligned
    aligned = aligned.assign_coords({dimension: cube[dimension].values})
    difference = cube - aligned.drop_vars(cubes.SPATIAL_REF, errors="ignore")
    return cubes.carry_metadata(difference.transpose(*cube.dims), cube)


def _series_dimension(args: ProcessArgs, cube: xr.DataArray) -> str:
    """The only temporal dimension; its labels may be instants or period labels ("2020-06")."""
    candidates = dimensions_of_type(cube, "temporal")
    if len(candidates) != 1:
        raise args.invalid("data", f"expected exactly one temporal dimension, got {len(candidates)}")
    return candidates[0]


def _normals_dimension(args: ProcessArgs, normals: xr.DataArray) -> str:
    candidates = [d for d in normals.dims if d not in (cubes.X, cubes.Y, cubes.BANDS)]
    if len(candidates) != 1:
        raise args.invalid("normals", "expected exactly one temporal dimension besides x, y and bands")
    return str(candidates[0])


def _key(args: ProcessArgs, period: str, label: Any) -> str:
    if isinstance(label, np.datetime64):
        return _KEYS[period](pd.Timestamp(label))
    text = str(label)
    if len(text) >= 10 and text[4] == "-" and text[7] == "-" and period != "hour":  # a date or date-time
        try:
            return _KEYS[period](pd.Timestamp(cubes.parse_utc(text)))
        except ValueError as exc:
            raise args.invalid("data", f"the time label {text!r} is not a date-time") from exc
    if period in ("year", "decade", "decade-ad"):
        return text[:4]
    if "-" not in text:
        raise args.invalid("data", f"the time label {text!r} names no {period}")
    return text.rsplit("-", 1)[-1] if period == "hour" else text.split("-", 1)[-1]
