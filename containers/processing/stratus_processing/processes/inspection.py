"""`inspect`: writes its data (a summary for arrays and cubes) to the job's logs and passes it on."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from stratus.events import LogLevel

from stratus_processing.deferred import xr
from stratus_processing.env import EvalEnv
from stratus_processing.registry import ProcessArgs, process

# Longer values are summarised: a log entry is read by people, and the job log has a size limit.
MAX_LOGGED_CHARACTERS = 2_000


@process("inspect")
def inspect(args: ProcessArgs, env: EvalEnv) -> Any:
    data = args.get_required("data")
    message = args.get_optional("message", "", expected_type=str)
    code = args.get_optional("code", "User", expected_type=str)
    level = args.get_enum("level", [level.value for level in LogLevel], default="info")
    env.reporter.log(message, level=LogLevel(level), path=args.path, data=summary(data), code=code)
    return data


def summary(value: Any) -> Any:
    """A JSON-able picture of `value`: itself when short, else its shape and a few statistics."""
    if isinstance(value, xr.DataArray):
        described: dict[str, Any] = {
            "dimensions": [{"name": str(d), "size": int(value.sizes[d]),
                            "labels": [str(v) for v in value[d].values[:10]] if d in value.indexes else None}
                           for d in value.dims],
            "dtype": str(value.dtype),
        }
        if value.dtype.kind in "biuf" and value.size:
            numbers = value.values.astype(np.float64)
            finite = numbers[np.isfinite(numbers)]
            described.update(nodata=int(np.isnan(numbers).sum()),
                             min=float(finite.min()) if finite.size else None,
                             max=float(finite.max()) if finite.size else None,
                             mean=float(finite.mean()) if finite.size else None)
        return described
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError):
        text = None
    if text is None:
        return str(value)[:MAX_LOGGED_CHARACTERS]
    if len(text) <= MAX_LOGGED_CHARACTERS:
        return value
    return {"type": type(value).__name__, "length": len(value) if hasattr(value, "__len__") else None,
            "excerpt": text[:MAX_LOGGED_CHARACTERS]}
