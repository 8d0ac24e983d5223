"""A labeled array as files: its values as `.npy` and its dimensions and labels as JSON. Both the
engine and the sandboxed UDF process read and write these, so no Python object crosses the boundary
(nothing is unpickled)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr


def write_array(folder: str, name: str, array: xr.DataArray) -> None:
    values = np.asarray(array.values)
    if values.dtype.kind not in "biuf":
        raise TypeError(f"the cube's values must be numbers or booleans, not {values.dtype}")
    np.save(os.path.join(folder, f"{name}.npy"), values, allow_pickle=False)
    labels = {str(dim): _encode_labels(array[dim].values) for dim in array.dims if dim in array.indexes}
    with open(os.path.join(folder, f"{name}.json"), "w", encoding="utf-8") as file:
        json.dump({"dims": [str(d) for d in array.dims], "labels": labels, "name": _name(array.name)}, file)


def read_array(folder: str, name: str) -> xr.DataArray:
    import xarray as xr  # noqa: PLC0415 - here: the engine imports this module at start (`stratus_processing.deferred`)

    with open_no_symlink(os.path.join(folder, f"{name}.json"), "r") as file:
        meta = json.load(file)
    with open_no_symlink(os.path.join(folder, f"{name}.npy"), "rb") as file:
        # Copy-on-write: the values load lazily and the UDF may still change them in place. (A memory
        # map needs a name: the descriptor's, so it is the very file opened without following links.)
        values = np.load(f"/proc/self/fd/{file.fileno()}", mmap_mode="c", allow_pickle=False)
    coords = {dim: _decode_labels(encoded) for dim, encoded in meta["labels"].items()}
    return xr.DataArray(values, dims=meta["dims"], coords=coords, name=meta.get("name"))


def open_no_symlink(path: str, mode: str):
    """Open a file the other side wrote, refusing a symbolic link (a UDF's way to make the engine read
    one of its own files)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(descriptor, mode, **({"encoding": "utf-8"} if "b" not in mode else {}))


def _encode_labels(values: np.ndarray) -> dict[str, Any]:
    if np.issubdtype(values.dtype, np.datetime64):
        return {"kind": "datetime", "values": values.astype("datetime64[ns]").astype(np.int64).tolist()}
    if values.dtype.kind in "biuf":
        return {"kind": "number", "values": values.tolist()}
    return {"kind": "text", "values": [str(v) for v in values]}


def _decode_labels(encoded: dict[str, Any]) -> np.ndarray:
    if encoded["kind"] == "datetime":
        return np.array(encoded["values"], dtype=np.int64).astype("datetime64[ns]")
    return np.array(encoded["values"], dtype=object if encoded["kind"] == "text" and not encoded["values"] else None)


def _name(name: Any) -> str | None:
    return None if name is None else str(name)
