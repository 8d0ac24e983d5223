"""Running a UDF in a sandboxed child process (`runtime/udf_child.py`) and taking its result back.

The engine writes the input cube, the context and the code into a private temporary directory, starts
`python -I udf_child.py <dir>` with a clean environment, waits at most the wall-clock limit (then kills
the process group), and reads the result cube from the same directory. Failures become the user's
error with the UDF's own traceback; a sandbox that can't be set up refuses to run the UDF.

The layers (measured on the development machine, Linux 6.18: as root, where the child runs as uid 0
without capabilities, and as a plain user whose child is that same user, as on Fargate; not measured
on Fargate or Lambda themselves):
- a clean environment: the child sees none of the engine's variables (credentials included);
- the engine process is made non-dumpable before its first UDF, so a UDF running as the same user
  can't read its `/proc/<pid>/environ` or memory; run as root, the child drops to `nobody`, or, where
  `nobody` can't read the interpreter, keeps uid 0 without any capability;
- rlimits: address space, CPU seconds, file size, open files, no core dumps;
- seccomp (via libseccomp, `pyseccomp`): no sockets, no execve, no fork (threads only), no ptrace;
  needs only `no_new_privs`, no privilege, so it works in Docker's and ECS Fargate's default profiles;
- Landlock where the kernel has it (>= 5.13): writes only in its directory, reads only of the
  interpreter, libraries and system directories; no TCP (ABI 4), no signals outside (ABI 6);
- an audit hook (Python-level, a last layer): sockets, subprocesses, ctypes calls, other /proc files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratus import udf_runtimes
from stratus.errors import FeatureUnsupportedException, OpenEOApiException

from stratus_processing.deferred import xr
from stratus_processing.udf.runtime import udf_exchange

CHILD = Path(__file__).parent / "runtime" / "udf_child.py"
NOBODY = 65534
EXIT_UDF_ERROR, EXIT_SANDBOX_UNAVAILABLE = 1, 3
# The child's environment: nothing of the engine's; one thread per numerical library.
_CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
              "PYTHONDONTWRITEBYTECODE": "1"}
_STDIO_TAIL_CHARS = 4000
logger = logging.getLogger("stratus_processing")


class UdfException(OpenEOApiException):
    """The user's UDF failed (its own error, its own traceback)."""

    status_code, code = 400, "UdfError"
    message_template = "The UDF failed: {reason}"


class UdfSandboxUnavailableException(FeatureUnsupportedException):
    message_template = ("UDFs can't run here: their sandbox is unavailable ({reason}). An operator may allow a "
                        f"weaker sandbox with {udf_runtimes.SANDBOX_MODE_ENV}=process.")


@dataclass(frozen=True)
class UdfLimits:
    wall_seconds: float = udf_runtimes.UDF_WALL_SECONDS
    cpu_seconds: int = udf_runtimes.UDF_CPU_SECONDS
    memory_mib: int = udf_runtimes.UDF_MEMORY_MIB
    output_mib: int = udf_runtimes.UDF_OUTPUT_MIB


@dataclass(frozen=True)
class UdfOutcome:
    cube: xr.DataArray
    inspections: list[dict[str, Any]] = field(default_factory=list)  # openeo.udf.inspect entries
    output: str = ""  # the tail of what the UDF printed
    layers: dict[str, Any] = field(default_factory=dict)  # the sandbox's layers that were in force


def sandbox_mode(environ: dict[str, str] | None = None) -> str:
    mode = (os.environ if environ is None else environ).get(udf_runtimes.SANDBOX_MODE_ENV) or "seccomp"
    if mode not in udf_runtimes.SANDBOX_MODES:
        raise UdfSandboxUnavailableException(
            reason=f"{udf_runtimes.SANDBOX_MODE_ENV}={mode!r} is not one of {', '.join(udf_runtimes.SANDBOX_MODES)}")
    return mode


def default_limits() -> UdfLimits:
    """The configured limits, with memory at most a quarter of the container's (two tiles are in flight,
    and the engine holds their cubes too), so a UDF meets its own limit before the container's
    out-of-memory killer ends the job."""
    container_mib = _container_memory_mib()
    memory = udf_runtimes.UDF_MEMORY_MIB if container_mib is None else min(udf_runtimes.UDF_MEMORY_MIB,
                                                                             max(256, container_mib // 4))
    return UdfLimits(memory_mib=memory)


def _container_memory_mib() -> int | None:
    lambda_mib = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")  # the sync function's memory
    if lambda_mib.isdigit():
        return int(lambda_mib)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):  # cgroup v2, v1
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text) // 2**20
    return None


def run_udf_code(code: str, cube: xr.DataArray, context: Any, *, limits: UdfLimits | None = None,
                 mode: str | None = None, _audit_hook: bool = True) -> UdfOutcome:
    """Run `code` (an openeo.udf UDF) on `cube` in a sandboxed process; its result cube.
    `_audit_hook=False` is for tests that prove the kernel filter alone."""
    mode = mode or sandbox_mode()
    limits = limits or default_limits()
    _make_process_undumpable()
    work_dir = tempfile.mkdtemp(prefix="stratus-udf-")
    try:
        _write_inputs(work_dir, code, cube, context, limits, mode, _audit_hook)
        returncode, output, errors = _run_child(work_dir, limits)
        if errors.strip():
            logger.info("UDF process error stream: %s", errors)
        return _outcome(work_dir, returncode, output, limits)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _write_inputs(work_dir: str, code: str, cube: xr.DataArray, context: Any, limits: UdfLimits, mode: str,
                  audit_hook: bool) -> None:
    udf_exchange.write_array(work_dir, "input", cube)
    user = "nobody" if os.geteuid() == 0 and _nobody_can_run_python() else "self"
    request = {"engine_pid": os.getpid(), "mode": mode, "user": user, "audit_hook": audit_hook,
               "memory_bytes": limits.memory_mib * 2**20, "cpu_seconds": int(limits.cpu_seconds),
               "output_bytes": limits.output_mib * 2**20}
    for name, value in (("request.json", request), ("context.json", context if context is not None else {})):
        Path(work_dir, name).write_text(json.dumps(value), encoding="utf-8")
    Path(work_dir, "udf.py").write_text(code, encoding="utf-8")
    for name in os.listdir(work_dir):
        os.chmod(os.path.join(work_dir, name), 0o444)  # the code and inputs are read-only to the UDF
    if request["user"] == "nobody":  # the directory is the child's own
        os.chown(work_dir, NOBODY, NOBODY)
    os.chmod(work_dir, 0o700)


def _run_child(work_dir: str, limits: UdfLimits) -> tuple[int, str, str]:
    """Run the child; its exit code, what it printed (for the job's log) and its error stream (for the
    engine's log only: Python's warnings name the engine's files)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(
            [sys.executable, "-I", "-B", str(CHILD), work_dir], cwd=work_dir,
            env={**_CHILD_ENV, "HOME": work_dir, "TMPDIR": work_dir},
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, close_fds=True,
            start_new_session=True)  # its own process group, killed as a whole
        try:
            returncode = child.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            raise UdfException(reason=f"it ran longer than its time limit of {limits.wall_seconds:g} s and was "
                                      f"stopped") from None
        except BaseException:
            _kill_group(child)
            raise
        return returncode, _tail(stdout), _tail(stderr)


def _tail(file: Any) -> str:
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - _STDIO_TAIL_CHARS))
    return file.read().decode("utf-8", errors="replace")


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def _outcome(work_dir: str, returncode: int, output: str, limits: UdfLimits) -> UdfOutcome:
    inspections = _inspections(_read_json(work_dir, "inspect.json"))
    if returncode == 0:
        try:
            cube = udf_exchange.read_array(work_dir, "output")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UdfException(reason=f"its result could not be read ({type(exc).__name__})") from None
        layers = _read_json(work_dir, "layers.json")
        logger.debug("UDF sandbox layers: %s", layers)
        return UdfOutcome(cube, inspections, output, layers if isinstance(layers, dict) else {})
    if returncode == EXIT_SANDBOX_UNAVAILABLE:
        reason = (_read_json(work_dir, "unavailable.json") or {}).get("reason", "unknown")
        raise UdfSandboxUnavailableException(reason=f"the seccomp filter could not be installed: {reason}")
    if returncode == EXIT_UDF_ERROR and isinstance(error := _read_json(work_dir, "error.json"), dict):
        reason = str(error.get("traceback"))[:_STDIO_TAIL_CHARS * 4].rstrip()
        if error.get("memory"):
            reason += f"\n(the UDF's memory limit is {limits.memory_mib} MiB)"
        raise UdfException(reason=reason)
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise UdfException(reason=f"it was stopped at its limits ({limits.cpu_seconds} CPU-s, "
                                  f"{limits.memory_mib} MiB)")
    if returncode == -signal.SIGXFSZ:
        raise UdfException(reason=f"its result is larger than {limits.output_mib} MiB")
    logger.warning("UDF process ended with %s", _exit_description(returncode))
    raise UdfException(reason=f"the UDF process ended unexpectedly ({_exit_description(returncode)})")


def _inspections(entries: Any) -> list[dict[str, str]]:
    """The UDF's `inspect` entries (files the UDF could have written itself: checked, clipped)."""
    if not isinstance(entries, list):
        return []
    return [{"message": str(e.get("message"))[:2000], "code": str(e.get("code", "User"))[:100],
             "level": str(e.get("level", "info"))} for e in entries[:100] if isinstance(e, dict)]


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _read_json(work_dir: str, name: str) -> Any:
    try:
        with udf_exchange.open_no_symlink(os.path.join(work_dir, name), "r") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def _nobody_can_run_python() -> bool:
    """Whether `nobody` can read the interpreter, its standard library and the installed libraries."""
    import numpy

    for path in (sys.executable, os.path.dirname(os.__file__), os.path.dirname(numpy.__file__), str(CHILD)):
        path = os.path.realpath(path)
        while path != "/":
            mode = os.stat(path).st_mode
            if not mode & (stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH):
                return False
            path = os.path.dirname(path)
    return True


_undumpable = False


def _make_process_undumpable() -> None:
    """Make this (the engine's) process's /proc files and memory inaccessible to other processes of its
    user, UDFs included (PR_SET_DUMPABLE 0: no core dumps and no debugger attaching either)."""
    global _undumpable
    if _undumpable or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise UdfSandboxUnavailableException(reason=f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}")
    _undumpable = True
