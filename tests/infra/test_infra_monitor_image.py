"""The monitor's container image, checked without Docker: what it copies and installs, and its CMD.

Docker is not needed to know that the image can run the handler: every module the handler can
import (followed statically through our packages, lazy imports included) must be copied by the
Dockerfile, and every third-party module must come from a distribution that the Dockerfile's pip
install (our extras, pinned by requirements.lock) brings in. A new import in monitoring/ that the
image would lack fails here instead of at 06:00 in the drift check's log.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.app import REPO_ROOT
from infra.errors import InfraConfigError
from infra.monitor_image import DOCKERFILE, IGNORE_FILE, MONITOR_HANDLER, monitor_image, read_ignore

OUR_PACKAGES = frozenset(
    {"ordernimbus", "features", "models", "pipelines", "inference", "serving", "monitoring", "infra"}
)
HEAVY = {"torch", "gluonts", "xgboost", "xgboost-cpu", "statsforecast", "shap", "pyspark", "sagemaker"}


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (REPO_ROOT / DOCKERFILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.strip().split(None, 1) for line in joined.splitlines())
        if parts
    ]


def copied_packages() -> set[str]:
    """Directories the build stage copies from the context (``COPY <pkg> <pkg>``)."""
    copied = set()
    for instruction, args in _instructions():
        if instruction == "COPY" and not args.startswith("--"):
            *sources, _ = args.split()
            copied |= {s for s in sources if (REPO_ROOT / s).is_dir()}
    return copied


def pip_requirements() -> list[str]:
    """The requirements of the Dockerfile's ``pip install -c requirements.lock ...``, ARGs expanded."""
    defaults = dict(a.split("=", 1) for i, a in _instructions() if i == "ARG" and "=" in a)
    for instruction, args in _instructions():
        if instruction == "RUN" and "pip install" in args:
            expanded = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], args)
            words = shlex.split(expanded.split("pip install", 1)[1].split("&&")[0])
            assert words[words.index("-c") + 1] == "requirements.lock"  # every version from the lock
            return [w for i, w in enumerate(words) if not w.startswith("-") and words[i - 1] != "-c"]
    raise AssertionError(f"{DOCKERFILE} has no pip install")


def _module_file(name: str) -> Path | None:
    path = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def import_closure(start: str) -> tuple[set[str], set[str]]:
    """(our modules, third-party top-level names) reachable from ``start`` by any import statement."""
    ours: set[str] = set()
    third: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in ours or path is None:
            continue
        ours.add(name)
        todo += [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]  # parent packages
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for imported in names:
                top = imported.split(".")[0]
                if top in OUR_PACKAGES:
                    todo.append(imported)
                elif top not in sys.stdlib_module_names:
                    third.add(top)
    return ours, third


def installed_distributions(requirements: list[str]) -> set[str]:
    """Canonical names of what ``pip install`` of ``requirements`` brings in, per this venv's metadata."""
    seen: set[str] = set()
    todo = [
        (Requirement("ordernimbus" + r[1:]) if r.startswith(".[") else Requirement(r)) for r in requirements
    ]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not in this venv (awslambdaric): the image's own, nothing of ours imports it
        for line in distribution.requires or []:
            dependency = Requirement(line)
            wanted = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in wanted):
                todo.append(dependency)
    return {key.split("[")[0] for key in seen}


def test_cmd_is_the_handler_the_stack_expects_and_it_resolves() -> None:
    cmd = [json.loads(args) for instruction, args in _instructions() if instruction == "CMD"]
    assert cmd[-1] == [MONITOR_HANDLER]
    module, _, attribute = MONITOR_HANDLER.rpartition(".")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_image_copies_every_package_the_handler_can_import() -> None:
    ours, _ = import_closure("monitoring.lambda_handler")
    needed = {name.split(".")[0] for name in ours}
    assert needed <= copied_packages(), f"{DOCKERFILE} must COPY {sorted(needed - copied_packages())}"
    assert {"monitoring", "models", "inference", "features", "ordernimbus"} <= needed
    patterns = read_ignore(REPO_ROOT / IGNORE_FILE)
    assert {f"!{package}" for package in copied_packages()} <= set(patterns)  # and the context has them


def test_the_image_installs_every_library_the_handler_can_import() -> None:
    requirements = pip_requirements()
    assert ".[monitor,store]" in requirements
    distributions = installed_distributions(requirements)
    _, third = import_closure("monitoring.lambda_handler")
    providers = metadata.packages_distributions()
    missing = {
        module
        for module in third
        if not {canonicalize_name(d) for d in providers.get(module, [])} & distributions
    }
    assert not missing, f"the monitor imports {sorted(missing)}, which {DOCKERFILE}'s pip install lacks"
    assert {"evidently", "pandas", "scipy", "boto3", "psycopg", "alembic"} <= distributions
    assert not HEAVY & distributions, "the monitor image must not carry the training stack"


def test_missing_dockerfile_or_ignore_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        InfraConfigError, match=r"lacks \['infra/docker/monitor/Dockerfile', .*dockerignore'\]"
    ):
        monitor_image(tmp_path)
    (tmp_path / DOCKERFILE).parent.mkdir(parents=True)
    (tmp_path / DOCKERFILE).write_text("FROM scratch\n", encoding="utf-8")
    with pytest.raises(InfraConfigError, match=r"lacks \['infra/docker/monitor/Dockerfile.dockerignore'\]"):
        monitor_image(tmp_path)


def test_ignore_file_must_be_an_allowlist(tmp_path: Path) -> None:
    ignore = tmp_path / ".dockerignore"
    ignore.write_text("# only the usual suspects\n.venv\nbuild\n", encoding="utf-8")
    with pytest.raises(InfraConfigError, match="must be an allowlist that starts with '\\*'"):
        read_ignore(ignore)
    image = monitor_image(REPO_ROOT)
    assert image.exclude[0] == "*"
    assert "**/__pycache__" in image.exclude
