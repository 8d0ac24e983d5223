"""The UDF sandbox, against the real child process: what a UDF cannot do (read the engine's
environment or credentials, reach a local TCP listener, start programs, outlive its limits) and what
it gets back when it fails (its own traceback only)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest
import xarray as xr
from stratus import udf_runtimes
from stratus_processing.udf.sandbox import (
    UdfException,
    UdfLimits,
    UdfSandboxUnavailableException,
    default_limits,
    run_udf_code,
    sandbox_mode,
)

CUBE = xr.DataArray(np.arange(8, dtype=float).reshape(2, 2, 2), dims=("t", "y", "x"),
                    coords={"t": np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[ns]")})
SHORT = UdfLimits(wall_seconds=60, cpu_seconds=60, memory_mib=1024)


def udf(body: str) -> str:
    """A UDF whose apply_datacube runs `body` (with `cube` and `context`) and returns `cube`."""
    return ("import os, socket, sys\nfrom openeo.udf import XarrayDataCube\n\n"
            "def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:\n"
            + textwrap.indent(textwrap.dedent(body), "    ") + "\n    return cube\n")


def failure(code: str, **kwargs) -> str:
    with pytest.raises(UdfException) as raised:
        run_udf_code(code, CUBE, {}, limits=kwargs.pop("limits", SHORT), **kwargs)
    assert raised.value.status_code == 400 and raised.value.code == "UdfError"
    return raised.value.message


def test_the_udf_sees_no_variable_of_the_engine_nor_its_proc_files(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "engine-secret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENGINE")
    code = udf("""
        leaks = [name for name in os.environ if name.startswith("AWS")]
        for path in (f"/proc/{os.getppid()}/environ", "/proc/1/environ"):
            try:
                with open(path, "rb") as file:
                    leaks.append(path + ":" + file.read().decode(errors="replace"))
            except OSError:
                pass
        if leaks:
            raise RuntimeError("leaked: " + " | ".join(leaks))
        cube = XarrayDataCube(cube.get_array() + len(os.environ))
    """)
    # with the audit hook, and with the kernel's protections alone (non-dumpable engine, no capabilities)
    for audit_hook in (True, False):
        result = run_udf_code(code, CUBE, {}, limits=SHORT, _audit_hook=audit_hook).cube
        assert (result - CUBE).values.min() > 0  # it ran, and saw only its own few variables
        assert (result - CUBE).values.max() < 15


def test_the_udf_cannot_connect_to_a_local_tcp_listener_nor_start_programs():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        connect = udf(f"""
            socket.create_connection(("127.0.0.1", {port}), timeout=5)
        """)
        assert "PermissionError" in failure(connect)  # audit hook and seccomp filter
        assert "PermissionError" in failure(connect, _audit_hook=False)  # the seccomp filter alone
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    # nor a socket of any family, a new program or a child process (the kernel filter alone)
    attempts = udf("""
        import _socket
        outcomes = []
        for attempt in (lambda: _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
                        lambda: _socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
                        lambda: os.execv("/bin/sh", ["sh", "-c", "true"]), os.fork):
            try:
                attempt()
                outcomes.append("allowed")
            except OSError as error:
                outcomes.append(type(error).__name__)
        raise RuntimeError(",".join(outcomes))
    """)
    assert "RuntimeError: PermissionError,PermissionError,PermissionError,PermissionError" in failure(
        attempts, _audit_hook=False)


def test_a_udf_is_stopped_at_its_wall_clock_limit():
    message = failure(udf("while True:\n    pass"), limits=UdfLimits(wall_seconds=2, cpu_seconds=60))
    assert "time limit of 2 s" in message


def test_a_udf_is_stopped_at_its_cpu_limit():
    message = failure(udf("while True:\n    pass"), limits=UdfLimits(wall_seconds=60, cpu_seconds=1))
    assert "stopped at its limits (1 CPU-s" in message


def test_a_udf_cannot_allocate_beyond_its_memory_limit():
    message = failure(udf("big = __import__('numpy').ones(2 * 1024**3 // 8)"),
                      limits=UdfLimits(wall_seconds=60, cpu_seconds=60, memory_mib=512))
    assert "MemoryError" in message and "memory limit is 512 MiB" in message


def test_a_failing_udf_reports_its_own_traceback_and_nothing_of_the_engine():
    code = udf("""
        def ratio(values):
            return values / context["missing"]
        ratio(cube.get_array())
    """)
    message = failure(code)
    assert message.startswith("The UDF failed: Traceback (most recent call last):\n")
    assert 'File "udf.py", line 8, in apply_datacube' in message
    assert 'File "udf.py", line 7, in ratio' in message
    assert 'return values / context["missing"]' in message
    assert message.rstrip().endswith("KeyError: 'missing'")
    for internal in ("site-packages", "stratus", "/work", "/tmp", "udf_child", "run_code"):
        assert internal not in message


def test_code_without_a_udf_function_is_the_users_error():
    assert "No UDF found" in failure("x = 1\n")
    assert "SyntaxError" in failure("def apply_datacube(:\n")


def test_an_unknown_sandbox_mode_refuses_to_run_udfs():
    with pytest.raises(UdfSandboxUnavailableException) as raised:
        sandbox_mode({"STRATUS_UDF_SANDBOX": "none"})
    assert raised.value.status_code == 501
    assert sandbox_mode({}) == "seccomp" and sandbox_mode({"STRATUS_UDF_SANDBOX": "process"}) == "process"


# Runs in a fresh interpreter whose kernel refuses new seccomp filters (as a restrictive container
# profile would): the sandbox must refuse the UDF, unless the operator allowed the weaker mode.
_WITHOUT_SECCOMP = """
import errno, json, sys
import numpy as np, pyseccomp as seccomp, xarray as xr
from stratus import udf_runtimes
from stratus_processing.udf.sandbox import UdfSandboxUnavailableException, run_udf_code

rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "seccomp")
rules.add_rule(seccomp.ERRNO(errno.EPERM), "prctl", seccomp.Arg(0, seccomp.EQ, 22))  # PR_SET_SECCOMP
rules.load()
code = '''
from openeo.udf import XarrayDataCube
def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
    seccomp = open("/proc/self/status").read().split("Seccomp:")[1].split()[0]
    return XarrayDataCube(cube.get_array() + int(seccomp))
'''
cube = xr.DataArray(np.zeros((1, 1)), dims=("y", "x"))
outcome = {}
try:
    run_udf_code(code, cube, {}, mode="seccomp")
    outcome["seccomp"] = "ran"
except UdfSandboxUnavailableException as error:
    outcome["seccomp"] = [error.status_code, error.message]
outcome["process"] = float(run_udf_code(code, cube, {}, mode="process").cube.values[0, 0])
print(json.dumps(outcome))
"""


def test_without_a_kernel_filter_udfs_are_refused_unless_the_weaker_mode_is_allowed():
    completed = subprocess.run([sys.executable, "-c", _WITHOUT_SECCOMP], capture_output=True, text=True,
                               timeout=120, env=os.environ)
    assert completed.returncode == 0, completed.stderr[-2000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    status, message = outcome["seccomp"]
    assert status == 501 and "sandbox is unavailable" in message and "STRATUS_UDF_SANDBOX=process" in message
    # the weaker mode runs it, under the inherited filter only (mode 2) but without its own
    assert outcome["process"] == 2.0


def test_the_declared_libraries_are_the_installed_ones():
    """`/udf_runtimes` tells what a UDF imports: the engine's own versions (the shim: the client's API)."""
    for name, version in udf_runtimes.PYTHON_LIBRARIES.items():
        if name == "openeo":
            from stratus_processing.udf.runtime import openeo as shim  # noqa: PLC0415
            assert shim.__version__ == version
        else:
            assert metadata.version(name) == version, name


def test_the_udf_writes_only_in_its_own_directory_and_reads_no_other_users_files(tmp_path):
    # Landlock: whatever user the UDF runs as (here root without capabilities, on Fargate the engine's)
    engine_file = tmp_path / "engine-result.txt"
    engine_file.write_text("engine data")
    code = udf(f"""
        outcomes = []
        for attempt in (lambda: open({str(engine_file)!r}, "a").write("tampered"),
                        lambda: open({str(tmp_path / "new.txt")!r}, "w"),
                        lambda: open({str(engine_file)!r}).read(),
                        lambda: open("/proc/1/status").read()):
            try:
                attempt()
                outcomes.append("allowed")
            except OSError as error:
                outcomes.append(type(error).__name__)
        open("scratch.txt", "w").write("its own directory is writable")
        raise RuntimeError(",".join(outcomes))
    """)
    message = failure(code, _audit_hook=False)
    assert "RuntimeError: PermissionError,PermissionError,PermissionError,PermissionError" in message
    assert engine_file.read_text() == "engine data" and not (tmp_path / "new.txt").exists()


def test_the_engine_reads_no_file_the_udf_links_to_its_own(tmp_path):
    secret = tmp_path / "engine-secret.json"
    secret.write_text(json.dumps({"traceback": "engine secret"}))
    code = udf(f"""
        os.symlink({str(secret)!r}, "error.json")
        os._exit(1)
    """)
    message = failure(code, _audit_hook=False)
    assert "engine secret" not in message and "ended unexpectedly (exit code 1)" in message


def test_the_memory_limit_is_a_quarter_of_the_functions_memory_at_most(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    assert default_limits().memory_mib == 752
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "30720")
    assert default_limits().memory_mib == udf_runtimes.UDF_MEMORY_MIB
