"""The sandboxed UDF process: `python -I udf_child.py <work dir>`, started by `sandbox.py`.

In order: death with the engine, limits (rlimits), the user (root drops to nobody, or keeps uid 0
without capabilities), the libraries a UDF gets, then the kernel's filters (seccomp: no sockets, no
new programs or processes, no tracing; Landlock where the kernel has it: files beneath the work dir
and the interpreter's only), then an audit hook (a last layer in Python: sockets, subprocesses,
ctypes, other processes' /proc files), and only then the user's code. Exit codes tell the engine
what happened (EXIT_*); files in the work dir carry the rest (output, error, inspect, layers)."""

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
MAX_FRAMES = 20
MAX_ERROR_CHARS = 4000

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
    _end_with_the_engine(request["engine_pid"])
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
    try:
        landlock_abi = _restrict_filesystem(work_dir)
    except OSError:
        landlock_abi = 0  # a kernel that refuses it: the other layers hold (the engine logs the layers)
    if request.get("audit_hook", True):
        sys.addaudithook(_audit)
    _write(work_dir, "layers.json", {"seccomp": request["mode"] == "seccomp", "landlock_abi": landlock_abi,
                                     "audit_hook": request.get("audit_hook", True), "uid": os.getuid()})

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


def _end_with_the_engine(engine_pid: int) -> None:
    """Killed when the engine ends (e.g. a canceled job's process), not left to run to its limits."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != engine_pid:  # it ended before the line above
        os._exit(EXIT_UDF_ERROR)


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


# Landlock (Linux >= 5.13, unprivileged): the UDF writes only beneath its work dir and reads only
# beneath the interpreter, its libraries and the system's; with ABI 4 no TCP connect or bind, with
# ABI 6 no signals to processes outside. System calls 444-446 on every architecture.
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute (needed to map libraries), read file, read dir
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
_SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/etc", "/dev/null", "/dev/urandom", "/proc/self")


def _restrict_filesystem(work_dir: str) -> int:
    """Landlock the process; its ABI version, or 0 where the kernel has none (then the other layers hold)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # VERSION
    if abi < 1:
        return 0
    fs_rights = _FS_RIGHTS_BY_ABI.get(abi, (1 << 16) - 1)

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                    ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(fs_rights, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    readable = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_SYSTEM_READ_PATHS,
                *(p for p in sys.path if p)}
    try:
        for path, rights in [*((p, _FS_READ) for p in sorted(readable)), (work_dir, fs_rights)]:
            try:
                descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # e.g. no /lib64 here
            try:
                if not os.path.isdir(path):
                    rights &= (1 << 1) | (1 << 2) | (1 << 14)  # files take file rights only
                rule = PathBeneath(rights, descriptor)
                if libc.syscall(_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:  # PATH_BENEATH
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(descriptor)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (seccomp set it already, "process" mode not)
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


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
    """The traceback of the user's code only: frames of other files (the sandbox, libraries) left out;
    deep recursions keep their last frames, long messages their start."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == UDF_FILENAME]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    if len(frames) > MAX_FRAMES:
        lines.append(f"  ... {len(frames) - MAX_FRAMES} earlier frames ...\n")
    lines += traceback.format_list(frames[-MAX_FRAMES:])
    error = "".join(traceback.format_exception_only(type(exc), exc))
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + " ...\n"
    return "".join(lines) + error


def _write(work_dir: str, name: str, value) -> None:
    with open(os.path.join(work_dir, name), "w", encoding="utf-8") as file:
        json.dump(value, file)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(sys.argv[1]))
