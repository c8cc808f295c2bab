"""Builds the API's Lambda package directory: serving dependencies plus our light source packages.

    python -m serving.package --out build/lambda [--max-mb 50]

Dependencies come from PyPI as manylinux wheels for Lambda's Python (whatever this machine is),
pinned to the versions pyproject.toml declares, so the package runs what the tests ran. Only the
source our API imports is copied: ordernimbus/, serving/, inference/store/ (with its migrations)
and models/registry/. Prints the unzipped size and exits 1 when it is over the limit, because a
package that grows past it fails at deploy time, far from the change that caused it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the Lambda needs; alembic because the store migrates a fresh database on first open.
# python-multipart: the upload route declares form fields, which FastAPI checks at import (the
# route itself answers 501 on Lambda, where ingestion's pandas is absent). No pyjwt/cryptography:
# bearer tokens are verified by serving/rs256.py with the standard library (cryptography alone
# would take 15 MB of the 50).
LAMBDA_DEPENDENCIES = (
    "fastapi", "mangum", "pydantic", "pydantic-settings", "sqlalchemy", "psycopg", "alembic",
    "python-multipart",
)  # fmt: skip
# Extras that would drag in heavy native code the API does not use.
_DROP_EXTRAS: dict[str, str] = {}
# Parts of dependencies the API never imports: test suites and database dialects other than
# SQLite and PostgreSQL.
PRUNE = (
    "sqlalchemy/testing", "sqlalchemy/dialects/mssql", "sqlalchemy/dialects/mysql",
    "sqlalchemy/dialects/oracle", "alembic/testing", "mako/testing",
)  # fmt: skip
SOURCE_TREES = ("ordernimbus", "serving", "inference/store", "models/registry")
# Parent packages of those trees, and the one stdlib-only module of features/ the API uses (the
# Shopify signature check runs before anything else of an upload, so it must work on Lambda).
PARENT_PACKAGES = (
    "inference/__init__.py", "models/__init__.py",
    "features/__init__.py", "features/sources/__init__.py", "features/sources/shopify_hmac.py",
)  # fmt: skip
OUR_TOP_LEVEL = frozenset({"ordernimbus", "serving", "inference", "models", "features"})
SOURCE_SUFFIXES = {".py", ".mako", ".ini", ".json", ".sql", ".html", ".j2"}
DEFAULT_MAX_MB = 50.0


class PackageError(Exception):
    """The package could not be built as declared (missing pin, failed install)."""


def pinned_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The Lambda dependencies with the exact pins pyproject.toml gives them."""
    project = tomllib.loads(pyproject.read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared.extend(extra)
    pins: dict[str, str] = {}
    for spec in declared:
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==\s*([^\s;]+)", spec)
        if match:
            name = match.group(1).lower().replace("_", "-")
            extras = match.group(2) or ""
            if name in _DROP_EXTRAS:
                extras = extras.replace(_DROP_EXTRAS[name], "").replace("[]", "")
            if name == "psycopg" and "binary" not in extras:
                extras = "[binary]"
            pins.setdefault(name, f"{name}{extras}=={match.group(3)}")
    missing = [name for name in LAMBDA_DEPENDENCIES if name not in pins]
    if missing:
        raise PackageError(f"pyproject.toml pins no version for {', '.join(missing)}")
    return [pins[name] for name in LAMBDA_DEPENDENCIES]


def copy_sources(out: Path, root: Path = ROOT) -> list[Path]:
    """Copy our source files (no tests, no caches) into ``out``; returns the files written."""
    files: list[Path] = [root / p for p in PARENT_PACKAGES]
    for tree in SOURCE_TREES:
        files.extend(_source_files(root / tree))
    written = []
    for src in files:
        dest = out / src.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        written.append(dest)
    return written


def _source_files(tree: Path) -> Iterable[Path]:
    for path in sorted(tree.rglob("*")):
        if path.is_file() and path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts:
            yield path


def install_dependencies(out: Path, requirements: list[str], python_version: str, platform: str) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(out), "--platform", platform, "--python-version", python_version,
        "--implementation", "cp", "--only-binary=:all:", *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackageError(f"pip could not install {' '.join(requirements)}:\n{result.stderr.strip()}")
    shutil.rmtree(out / "bin", ignore_errors=True)  # console scripts are useless on Lambda


def prune(out: Path) -> None:
    for part in PRUNE:
        shutil.rmtree(out / part, ignore_errors=True)


def compile_bytecode(out: Path, python_version: str) -> bool:
    """Ship bytecode: Lambda's code directory is read-only, so without .pyc every cold start
    compiles every module it imports (measured here: about twice the import time).

    Both copies of every dependency would not fit the 50 MB budget, so dependencies ship as
    bytecode only (``module.pyc`` beside where ``module.py`` was: Python imports it directly;
    tracebacks keep file and line, without the source text). Our own code keeps its sources
    next to its bytecode. Unchecked-hash pycs do not depend on file times surviving the zip.
    """
    if python_version != f"{sys.version_info.major}.{sys.version_info.minor}":
        return False  # bytecode is specific to the interpreter version that would load it
    import compileall
    import py_compile

    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    for entry in sorted(out.iterdir()):
        ours = entry.name in OUR_TOP_LEVEL
        if entry.is_dir():
            ok = compileall.compile_dir(entry, quiet=2, workers=0, legacy=not ours, invalidation_mode=mode)
        elif entry.suffix == ".py":
            ok = compileall.compile_file(entry, quiet=2, legacy=True, invalidation_mode=mode)
        else:
            continue
        if not ok:
            raise PackageError(f"byte-compiling {entry} failed")
        if not ours:
            for source in [entry] if entry.is_file() else list(entry.rglob("*.py")):
                if source.with_suffix(".pyc").exists():
                    source.unlink()
    for stub in out.rglob("*.pyi"):  # type stubs: nothing runs them
        stub.unlink()
    return True


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1_000_000


def build(out: Path, *, python_version: str, platform: str) -> float:
    """Build the package in ``out`` (replacing it) and return its unzipped size in MB."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    install_dependencies(out, pinned_requirements(), python_version, platform)
    prune(out)
    copy_sources(out)
    compile_bytecode(out, python_version)
    return size_mb(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.package", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/lambda"))
    parser.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB)
    parser.add_argument("--python-version", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    parser.add_argument("--platform", default="manylinux2014_x86_64", help="wheel platform tag of the Lambda")
    args = parser.parse_args(argv)
    try:
        mb = build(args.out, python_version=args.python_version, platform=args.platform)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {mb:.1f} MB unzipped (limit {args.max_mb:.0f} MB)")
    if mb > args.max_mb:
        print(f"error: the Lambda package is over {args.max_mb:.0f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
