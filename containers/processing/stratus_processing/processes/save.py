"""Output: `save_result` in the formats listed by `/file_formats`."""

from __future__ import annotations

from stratus_processing import cube as cubes
from stratus_processing.env import EvalEnv
from stratus_processing.errors import FormatUnsuitableException
from stratus_processing.io.save import save_geotiff
from stratus_processing.registry import ProcessArgs, process

# openEO output format name -> writer; names match case-insensitively (openEO file format ids).
OUTPUT_FORMATS = {"GTiff": save_geotiff}


@process("save_result")
def save_result(args: ProcessArgs, env: EvalEnv) -> bool:
    data = args.get_required("data")
    writer = args.get_enum("format", OUTPUT_FORMATS, case_sensitive=False)
    options = args.get_optional("options", {}, expected_type=dict)
    if not cubes.is_cube(data):
        raise FormatUnsuitableException(reason="only raster data cubes can be saved in this format")
    shape = " × ".join(f"{dim} {size}" for dim, size in data.sizes.items())
    env.reporter.log(f"save_result: writing result as {args['format']} ({shape})", path=args.path)
    records = writer(data, env.require_results(), options=options)
    env.reporter.log(f"save_result: wrote {', '.join(r.name for r in records)}", path=args.path)
    return True
