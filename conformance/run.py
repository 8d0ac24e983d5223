"""Runs the official openeo-test-suite against the local system and prints per-module counts.

    python -m conformance.run                    # every module against a freshly started local system
    python -m conformance.run --fast             # the fast subset (the one `make test` runs)
    python -m conformance.run --modules WP3,WP5 --processes add,apply
    python -m conformance.run --url http://127.0.0.1:8000 --password ...   # against a running system

The wheel of openeo-test-suite ships its tests but not their assets (git submodules upstream); it looks for
them relative to the working directory. `prepare_workdir` links them from `../shared/conformance/` into
`build/conformance/`, where each module then runs as its own pytest process with a JUnit report.
Exit status: 0 when nothing failed (or `../shared` is absent, which skips the run), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"
WORKDIR = REPO_ROOT / "build" / "conformance"
COLLECTION = "sentinel-2-l2a-demo"
STARTUP_TIMEOUT_S = 90
TEST_TIMEOUT_S = 300


@dataclass(frozen=True)
class Module:
    name: str
    title: str
    tests: str  # directory under openeo_test_suite/tests
    args: tuple[str, ...] = ()
    selects_processes: bool = False  # honours --processes


MODULES = {m.name: m for m in (
    Module("WP2", "collections", "collections"),
    Module("WP3", "process metadata", "processes/metadata", selects_processes=True),
    Module("WP4", "API compliance", "general"),
    Module("WP5", "individual processes", "processes/processing", ("--runner=http",), selects_processes=True),
    Module("WP6", "workflows", "workflows", ("--s2-collection", COLLECTION), selects_processes=True),
)}

# The fast subset (`--fast`, and tests/e2e/test_openeo_test_suite.py inside `make test`): WP2, WP3 and WP6 whole
# (seconds each against the demo collection); WP4 without the tests the suite marks `longrunning` and without the
# three that sleep until their jobs are `running` (10 s, 10 s and 130 s here: the suite's jobs load a collection
# the demo lacks, so they end in `error` at once; tests/e2e covers start, cancel, estimate and logs); WP5 for a
# dozen processes: numbers, comparisons, logic, arrays, statistics (about 100 of its 950 tests).
FAST_PROCESSES = {"WP5": "absolute,add,divide,between,and,if,array_element,array_find,median,quantiles,"
                         "linear_scale_range,round"}
FAST_ARGS = {"WP4": ("-m", "not longrunning", "-k", "not (test_DELETE_jobs_job_id_results or "
                     "test_GET_jobs_job_id_estimate or test_GET_jobs_job_id_logs)")}


@dataclass(frozen=True)
class Credentials:
    """How the suite logs in: the OIDC machine client when the local system prints one, else the demo user."""

    user: str
    password: str
    oidc_provider: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None

    _LINE = re.compile(r"^\s*(demo user|demo password|oidc provider|oidc client id|oidc client secret):\s*(\S+)\s*$")

    @classmethod
    def from_output(cls, lines: Sequence[str], password: str | None = None) -> Credentials:
        """Reads the `demo user:`, `demo password:` and `oidc ...:` lines the local system prints at start."""
        found = {}
        for line in lines:
            if match := cls._LINE.match(line):
                found.setdefault(match[1], match[2])
        return cls(user=found.get("demo user", "demo"), password=password or found.get("demo password", ""),
                   oidc_provider=found.get("oidc provider"), oidc_client_id=found.get("oidc client id"),
                   oidc_client_secret=found.get("oidc client secret"))

    @property
    def method(self) -> str:
        return "client_credentials" if self.oidc_client_id and self.oidc_client_secret else "basic"

    def env(self) -> dict[str, str]:
        """The environment variables the openeo client (and the suite's `connection` fixture) read."""
        if self.method == "client_credentials":
            env = {"OPENEO_AUTH_METHOD": "client_credentials", "OPENEO_AUTH_CLIENT_ID": self.oidc_client_id,
                   "OPENEO_AUTH_CLIENT_SECRET": self.oidc_client_secret}
            if self.oidc_provider:
                env["OPENEO_AUTH_PROVIDER_ID"] = self.oidc_provider
            return env
        return {"OPENEO_AUTH_METHOD": "basic", "OPENEO_AUTH_BASIC_USERNAME": self.user,
                "OPENEO_AUTH_BASIC_PASSWORD": self.password}


@dataclass
class Outcome:
    """One module's run: counts from its JUnit report, the failing tests and the wall time."""

    module: Module
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # "test id: first line of the message"
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return not (self.failed or self.errors)


class SharedMaterialMissing(RuntimeError):
    pass


def suite_tests_dir() -> Path:
    import openeo_test_suite

    return Path(openeo_test_suite.__file__).resolve().parent / "tests"


def prepare_workdir(workdir: Path = WORKDIR, shared: Path = SHARED_CONFORMANCE) -> Path:
    """Lays out the suite's assets where it guesses them (relative to the working directory) and a pytest.ini of
    its own (so the repository's pytest settings stay out); returns the directory."""
    processes, api = shared / "openeo-processes", shared / "openeo-api"
    examples = shared / "openeo-test-suite" / "payload_examples"
    missing = [str(path) for path in (processes / "tests", api, examples) if not path.is_dir()]
    if missing:
        raise SharedMaterialMissing(f"{', '.join(missing)} absent: the shared conformance material lives beside "
                                    "the project in ../shared/conformance/")
    _link(workdir / "assets" / "openeo-api", api)
    # compliance_util.get_examples_path(): <assets/openeo-api>/../../src/openeo_test_suite/tests/general/...
    _link(workdir / "src" / "openeo_test_suite" / "tests" / "general" / "payload_examples", examples)
    # The process tests' "$ref": "assets/x.json5" are relative to tests/*.json5, but the suite resolves them
    # relative to the process's own <id>.json (test_example._load_ref): mirror the specifications with an
    # `assets` link beside them.
    for directory in (processes, processes / "proposals"):
        mirror = workdir / "assets" / "processes" / directory.relative_to(processes)
        for entry in directory.iterdir():
            if entry.name != "proposals":
                _link(mirror / entry.name, entry)
        _link(mirror / "assets", processes / "tests" / "assets")
    (workdir / "reports").mkdir(exist_ok=True)
    (workdir / "pytest.ini").write_text(
        "# written by conformance/run.py: the suite runs without the repository's pytest settings\n"
        "[pytest]\nmarkers =\n    longrunning: the suite's slow tests\n    vv: used by the suite, undeclared\n")
    return workdir


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=target.is_dir())


@contextlib.contextmanager
def local_system(password: str | None = None, env: Mapping[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Starts `python -m stratus_local --port 0` (with `env` added to this process' environment); yields its
    root URL and the output lines printed so far."""
    password = password or secrets.token_urlsafe(12)
    env = {**os.environ, **(env or {}), "STRATUS_DEMO_PASSWORD": password, "PYTHONUNBUFFERED": "1"}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "stratus_local", "--port", "0"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        for line in process.stdout:
            output.append(line.rstrip())
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    started = time.monotonic()
    url = None
    try:
        while url is None:
            remaining = STARTUP_TIMEOUT_S - (time.monotonic() - started)
            try:
                line = lines.get(timeout=max(0.1, remaining))
            except queue.Empty:
                line = ""
            if line.startswith("READY "):
                url = line.split()[1]
            elif process.poll() is not None or remaining <= 0:
                raise RuntimeError("local system did not start:\n" + "\n".join(output[-60:]))
        yield url, output
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def run_module(module: Module, url: str, credentials: Credentials, workdir: Path, extra_args: Sequence[str] = (),
               echo: bool = False) -> Outcome:
    """Runs one module as its own pytest process (the suite's plugin keeps per-process singletons)."""
    report = workdir / "reports" / f"{module.name}.xml"
    log = workdir / "reports" / f"{module.name}.log"
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", str(suite_tests_dir() / module.tests),
               "-c", str(workdir / "pytest.ini"), "--rootdir", str(workdir),
               "-p", "openeo_test_suite.lib.pytest_plugin", "-p", "conformance.plugin",
               "-U", url, f"--junit-xml={report}", f"--timeout={TEST_TIMEOUT_S}", "-q", "-rfE",
               *module.args, *extra_args]
    env = {**os.environ, **credentials.env(), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    with log.open("w") as sink:
        sink.write(" ".join(command) + "\n\n")
        sink.flush()
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            sink.write(line)
            if echo:
                print(line, end="", flush=True)
        returncode = process.wait()
    outcome = Outcome(module, seconds=time.monotonic() - started, log=log)
    if report.exists():
        _count(ElementTree.parse(report).getroot(), outcome)
    if returncode not in (0, 1, 5) or not report.exists():  # 5: nothing collected (a narrow selection)
        outcome.errors += 1
        outcome.problems.append(f"pytest exited with {returncode}, see {log}")
    return outcome


def _count(root: ElementTree.Element, outcome: Outcome) -> None:
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        verdicts = {child.tag for child in case}
        if "error" in verdicts:
            outcome.errors += 1
        elif "failure" in verdicts:
            outcome.failed += 1
        elif "skipped" in verdicts:
            outcome.skipped += 1
            continue
        else:
            outcome.passed += 1
            continue
        detail = next(child for child in case if child.tag in ("error", "failure"))
        message = (detail.get("message") or detail.text or "").strip().splitlines()
        outcome.problems.append(f"{test_id}: {message[0][:300] if message else ''}")


def run_suite(url: str, credentials: Credentials, modules: Sequence[str] = tuple(MODULES), fast: bool = False,
              processes: str | None = None, workdir: Path = WORKDIR, echo: bool = False) -> list[Outcome]:
    """Runs the modules one after the other in `workdir` (laid out by `prepare_workdir`)."""
    outcomes = []
    for name in modules:
        module = MODULES[name]
        extra = list(FAST_ARGS.get(name, ())) if fast else []
        selection = (processes if module.selects_processes else None) or (FAST_PROCESSES.get(name) if fast else None)
        if selection:
            extra += ["--processes", selection]
        outcome = run_module(module, url, credentials, workdir, extra, echo=echo)
        print(f"{name} {module.title}: {outcome.passed} passed, {outcome.failed} failed, {outcome.skipped} skipped, "
              f"{outcome.errors} errors in {outcome.seconds:.1f} s (log: {outcome.log})", flush=True)
        outcomes.append(outcome)
    return outcomes


def format_table(outcomes: Sequence[Outcome]) -> str:
    header = f"{'module':<7} {'suite':<21} {'passed':>7} {'failed':>7} {'skipped':>8} {'error':>6} {'time':>9}"
    rows = [header, "-" * len(header)]
    for o in outcomes:
        rows.append(f"{o.module.name:<7} {o.module.title:<21} {o.passed:>7} {o.failed:>7} {o.skipped:>8} "
                    f"{o.errors:>6} {o.seconds:>7.1f} s")
    rows.append("-" * len(header))
    rows.append(f"{'total':<29} {sum(o.passed for o in outcomes):>7} {sum(o.failed for o in outcomes):>7} "
                f"{sum(o.skipped for o in outcomes):>8} {sum(o.errors for o in outcomes):>6} "
                f"{sum(o.seconds for o in outcomes):>7.1f} s")
    return "\n".join(rows)


def format_problems(outcomes: Sequence[Outcome], limit: int = 30) -> str:
    """The most common failure messages with their counts, then the failing tests (at most `limit` per module)."""
    reasons = Counter(_REF.sub("", problem.split(": ", 1)[-1]) for o in outcomes for problem in o.problems)
    lines = ["most common messages:"] + [f"  {count:>5} × {reason}" for reason, count in reasons.most_common(10)]
    lines.append("failing tests:")
    for o in outcomes:
        lines += [f"  {o.module.name} {problem}" for problem in o.problems[:limit]]
        if len(o.problems) > limit:
            lines.append(f"  {o.module.name} ... and {len(o.problems) - limit} more: see {o.log}")
    return "\n".join(lines)


_REF = re.compile(r"\s*\(ref: \w+\)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default=",".join(MODULES),
                        help=f"comma-separated subset of {','.join(MODULES)} (default: all)")
    parser.add_argument("--processes", help="comma-separated process ids for WP3, WP5 and WP6 (default: all)")
    parser.add_argument("--fast", action="store_true", help="the fast subset that `make test` runs")
    parser.add_argument("--url", help="test a system that is already running (its root URL) instead of starting one")
    parser.add_argument("--password", help="with --url: the demo user's password (basic auth)")
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help=f"default: {WORKDIR.relative_to(REPO_ROOT)}")
    parser.add_argument("--echo", action="store_true", help="also stream pytest's output (always in reports/*.log)")
    args = parser.parse_args(argv)
    modules = [name.strip().upper() for name in args.modules.split(",") if name.strip()]
    unknown = sorted(set(modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    try:
        prepare_workdir(args.workdir)
    except SharedMaterialMissing as absent:
        print(f"conformance SKIPPED: {absent}")
        return 0

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.url:
            url, credentials = args.url, Credentials(user="demo", password=args.password or "")
        else:
            url, output = stack.enter_context(local_system())
            credentials = Credentials.from_output(output)
            print(f"local system ready at {url} in {time.monotonic() - started:.1f} s; "
                  f"the suite authenticates with {credentials.method}", flush=True)
        outcomes = run_suite(url, credentials, modules, fast=args.fast, processes=args.processes,
                             workdir=args.workdir, echo=args.echo)
    print()
    print(format_table(outcomes))
    print(f"wall time {time.monotonic() - started:.1f} s; JUnit reports and logs in {args.workdir / 'reports'}")
    if any(not o.ok for o in outcomes):
        print("\nfailures:\n" + format_problems(outcomes))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
