"""The sandboxed UDF process: `python -I udf_child.py <work dir>`, started by `sandbox.py`.

In order: limits (rlimits), the user (root drops to nobody), the libraries a UDF gets, then the
kernel filter (seccomp: no sockets, no new programs or processes, no tracing), then an audit hook
(a last layer in Python: sockets, subprocesses, ctypes, other processes' /proc files), and only then
the user's code. It reads and writes files in its work dir only; exit codes tell the engine what
happened (see EXIT_*)."""

from __future__ import annotations

import errno
import json
import linecache
import os
import resource
import sys
import traceback

EXIT_UDF_ERROR = 1
EXIT_SANDBOX_UNAVAILABLE = 3
UDF_FILENAME = "udf.py"  # how the user's code appears in tracebacks
NOBODY = 65534

# Denied with EPERM: the network, new programs and processes, reaching into other processes, and
# kernel interfaces a UDF has no business with. Threads stay allowed (clone with CLONE_THREAD).
DENIED_SYSCALLS = (
    "socket", "socketpair", "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv",
    "process_vm_writev", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
    "userfaultfd", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "keyctl", "add_key",
    "request_key", "capset", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "kexec_load", "init_module", "finit_module", "delete_module", "pidfd_getfd", "kcmp",
)
CLONE_THREAD = 0x00010000


def main(work_dir: str) -> int:
    with open(os.path.join(work_dir, "request.json"), encoding="utf-8") as file:
        request = json.load(file)
    _limit(request)
    if request.get("user") == "nobody":
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    elif os.geteuid() == 0:
        _drop_capabilities()

    import numpy  # noqa: F401  (the libraries load before the filters: they need nothing at run time)
    import pandas  # noqa: F401
    import xarray  # noqa: F401

    import udf_exchange
    from openeo.udf import UdfData, XarrayDataCube, debug
    from openeo.udf.run_code import execution_globals, run_udf_code

    if request["mode"] == "seccomp":
        try:
            _deny_syscalls()
        except Exception as exc:  # noqa: BLE001 - any failure means: no kernel filter here
            _write(work_dir, "unavailable.json", {"reason": f"{type(exc).__name__}: {exc}"})
            return EXIT_SANDBOX_UNAVAILABLE
    if request.get("audit_hook", True):
        sys.addaudithook(_audit)

    with open(os.path.join(work_dir, "context.json"), encoding="utf-8") as file:
        context = json.load(file)
    with open(os.path.join(work_dir, UDF_FILENAME), encoding="utf-8") as file:
        source = file.read()
    cube = udf_exchange.read_array(work_dir, "input")
    try:
        code = compile(source, UDF_FILENAME, "exec", dont_inherit=True)  # not this file's __future__
        linecache.cache[UDF_FILENAME] = (len(source), None, source.splitlines(keepends=True), UDF_FILENAME)
        data = run_udf_code(code, UdfData(datacube_list=[XarrayDataCube(cube)], user_context=context),
                            execution_globals())
        cubes = data.get_datacube_list()
        if len(cubes) != 1 or not isinstance(cubes[0], XarrayDataCube):
            raise TypeError("the UDF must give exactly one data cube (an XarrayDataCube or xarray.DataArray)")
        udf_exchange.write_array(work_dir, "output", cubes[0].get_array())
    except BaseException as exc:  # noqa: BLE001 - every failure of the user's code is reported as such
        _write(work_dir, "error.json", {"type": type(exc).__name__, "traceback": _user_traceback(exc),
                                        "memory": isinstance(exc, MemoryError)})
        _write(work_dir, "inspect.json", debug.ENTRIES)
        return EXIT_UDF_ERROR
    _write(work_dir, "inspect.json", debug.ENTRIES)
    return 0


def _limit(request: dict) -> None:
    def cap(limit: int, soft: int, hard: int | None = None) -> None:
        resource.setrlimit(limit, (soft, soft if hard is None else hard))

    cap(resource.RLIMIT_AS, request["memory_bytes"])
    cap(resource.RLIMIT_CPU, request["cpu_seconds"], request["cpu_seconds"] + 1)  # SIGXCPU, then SIGKILL
    cap(resource.RLIMIT_FSIZE, request["output_bytes"])
    cap(resource.RLIMIT_NOFILE, 64)
    cap(resource.RLIMIT_CORE, 0)


def _drop_capabilities() -> None:
    """Root whose interpreter `nobody` can't read (e.g. a pyenv under /root) stays uid 0 without any
    capability: no reading other users' files or other processes' /proc entries, no raising limits."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    none = (Data * 2)()
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), none) != 0:  # _LINUX_CAPABILITY_VERSION_3
        raise OSError(ctypes.get_errno(), "capset failed")


def _deny_syscalls() -> None:
    import pyseccomp as seccomp

    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(denied, name)
        except (RuntimeError, ValueError, OSError):
            continue  # not a system call of this architecture (e.g. fork on arm64)
    rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    # clone3 takes its flags in memory a filter can't read: ENOSYS makes the C library use clone.
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()


_AUDIT_DENIED_PREFIXES = ("socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                          "os.forkpty", "os.system", "os.kill", "os.killpg", "ctypes.")


def _audit(event: str, args: tuple) -> None:
    if event.startswith(_AUDIT_DENIED_PREFIXES):
        raise PermissionError(f"not allowed in a UDF: {event}")
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        if path.startswith("/proc/") and not path.startswith(("/proc/self/", f"/proc/{os.getpid()}/")):
            raise PermissionError(f"not allowed in a UDF: reading {path}")


def _user_traceback(exc: BaseException) -> str:
    """The traceback of the user's code only: frames of other files (the sandbox, libraries) left out."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == UDF_FILENAME]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _write(work_dir: str, name: str, value) -> None:
    with open(os.path.join(work_dir, name), "w", encoding="utf-8") as file:
        json.dump(value, file)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(sys.argv[1]))
