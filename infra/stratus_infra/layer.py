"""The Lambda layer with the shared `stratus` package and its dependencies, built by pip on the host (no Docker)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stratus_infra import constants

# Never part of the layer's source: build leftovers that setuptools/pip write next to a package.
_SOURCE_IGNORE = ("build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache")


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Installs a Python project and its dependencies into `<output>/python` for a Lambda target platform.

    pip picks wheels for the *target* (`--platform/--implementation/--python-version --only-binary=:all:`), so
    a layer for Linux arm64 can be built on any host. pip's own cache (`~/.cache/pip`, or `PIP_CACHE_DIR`) makes
    repeated builds fast. The project is copied to a temporary directory first, so the build never writes
    `build/` or `*.egg-info` into the source tree.
    """

    def __init__(
        self, source: Path, *, python_version: str, platforms: Sequence[str], constraints: Path | None = None
    ) -> None:
        self.source = source
        self.python_version = python_version
        self.platforms = tuple(platforms)
        self.constraints = constraints

    def pip_arguments(self, source: Path, target: Path) -> list[str]:
        constraints = ["--constraint", str(self.constraints)] if self.constraints else []
        return [
            sys.executable, "-m", "pip", "install", str(source),
            "--target", str(target),
            *(argument for platform in self.platforms for argument in ("--platform", platform)),
            "--implementation", "cp",
            "--python-version", self.python_version,
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            *constraints,
        ]

    def fingerprint(self) -> str:
        """Asset hash: the project's files plus everything that decides which wheels pip picks."""
        digest = hashlib.sha256()
        arguments = self.pip_arguments(Path("SRC"), Path("OUT"))[3:]  # without the host's interpreter path
        if self.constraints:
            arguments = [self.constraints.name if a == str(self.constraints) else a for a in arguments]
            digest.update(self.constraints.read_bytes())
        digest.update(" ".join(arguments).encode())
        for path in sorted(p for p in self.source.rglob("*") if p.is_file() and not _ignored(p, self.source)):
            digest.update(str(path.relative_to(self.source)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:  # noqa: ARG002 - jsii signature
        started = time.monotonic()
        target = Path(output_dir) / "python"
        with tempfile.TemporaryDirectory(prefix="stratus-layer-") as tmp:
            source = Path(tmp) / self.source.name
            shutil.copytree(self.source, source, ignore=shutil.ignore_patterns(*_SOURCE_IGNORE))
            result = subprocess.run(self.pip_arguments(source, target), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip could not build the Lambda layer from {self.source}:\n{result.stdout}\n{result.stderr}"
            )
        # Console scripts carry the host interpreter's shebang and are useless in a layer.
        shutil.rmtree(target / "bin", ignore_errors=True)
        # Packages' own test suites (numpy's alone is ~10 MB) are dead weight under Lambda's 250 MB layer limit.
        for suite in [path for path in target.rglob("tests") if path.is_dir()]:
            shutil.rmtree(suite, ignore_errors=True)
        if sys.version_info[:2] != tuple(int(p) for p in self.python_version.split(".")):
            # pip compiled bytecode for the host interpreter, which the Lambda runtime cannot use
            for cache in list(target.rglob("__pycache__")):
                shutil.rmtree(cache, ignore_errors=True)
        print(f"stratus: built Lambda layer from {self.source.name} in {time.monotonic() - started:.1f}s",
              file=sys.stderr)
        return True


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _ignored(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(Path(part).match(pattern) for part in parts for pattern in _SOURCE_IGNORE)


@dataclass(frozen=True)
class RuntimeLayerProps:
    """Props of `RuntimeLayer`.

    :param source: Directory of the installable project that goes into the layer (with its pip dependencies).
        @default `<repo>/layers/runtime`
    :param python_version: Python version pip selects wheels for; must match the functions' runtime.
        @default "3.14" (`constants.LAYER_PYTHON_VERSION`)
    :param pip_platforms: Wheel platform tags pip selects wheels for; must match the functions' architecture and
        the runtime's glibc. @default ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
    :param constraints: pip constraints file, so the layer gets the versions the tests ran with.
        @default `<repo>/constraints.txt` if it exists, else None (newest versions within the project's ranges)
    :param removal_policy: What happens to old layer versions on update/delete. @default DESTROY
    :param description: The layer version's description. @default the shared runtime's
    """

    source: Path = field(default_factory=lambda: constants.REPO_ROOT / constants.LAYER_SOURCE_DIR)
    python_version: str = constants.LAYER_PYTHON_VERSION
    pip_platforms: Sequence[str] = constants.LAYER_PIP_PLATFORMS
    constraints: Path | None = field(
        default_factory=lambda: _existing(constants.REPO_ROOT / constants.LAYER_CONSTRAINTS)
    )
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    description: str = "Stratus shared runtime: the stratus package and its dependencies"


class RuntimeLayer(Construct):
    """`layer`: the shared runtime (`stratus` + dependencies) as a Lambda layer, bundled locally by pip."""

    def __init__(self, scope: Construct, construct_id: str, props: RuntimeLayerProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or RuntimeLayerProps()
        bundler = PipLayerBundling(
            props.source,
            python_version=props.python_version,
            platforms=props.pip_platforms,
            constraints=props.constraints,
        )
        code = lambda_.Code.from_asset(
            str(props.source),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=bundler.fingerprint(),
            bundling=BundlingOptions(
                local=bundler,
                # Required by CDK; only used if local bundling returned False, which it never does.
                image=DockerImage.from_registry(constants.LAYER_FALLBACK_IMAGE),
                command=["bash", "-c", "pip install /asset-input --target /asset-output/python"],
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[constants.LAMBDA_RUNTIME],
            compatible_architectures=[constants.LAMBDA_ARCHITECTURE],
            description=props.description,
            removal_policy=props.removal_policy,
        )
