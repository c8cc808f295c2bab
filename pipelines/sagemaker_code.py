"""The step code as one content-addressed archive, so SageMaker's step cache survives a re-upsert.

SageMaker keys a step's cache on its arguments, and the S3 URI of the code is one of them. The 3.x
SDK uploads local training code to a timestamped key, so every upsert would miss the cache; here the
archive is built byte-for-byte reproducibly (sorted members, zero mtimes, fixed owner, gzip without
a timestamp) and its key is its own SHA-256. Same code, same key, cache hit; any code change, new
key, cache miss — exactly what the local runner's :func:`pipelines.local.code_version` does.

The archive is a SageMaker "source dir": our packages, a ``requirements.txt`` pinned from
``pyproject.toml`` (installed by the step bootstrap on a framework image) and ``ordernimbus_serve.py``,
the inference-toolkit entry module for Batch Transform. Building it is offline; uploading it is
:func:`upload_bundle` (boto3), called by ``pipeline upsert``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.local import CODE_PACKAGES

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = "sourcedir.tar.gz"
PACKAGE_FILES = ("*.py", "*.html", "*.json", "*.ini", "*.mako", "*.sql")
# Extras the steps import; torch comes with the framework image (pinning ours would reinstall 800 MB).
CONTAINER_EXTRAS = ("data", "train", "store")
PROVIDED_BY_IMAGE = frozenset({"torch", "boto3", "sagemaker"})
SERVE_MODULE = "ordernimbus_serve.py"
SERVE_SOURCE = '''"""SageMaker inference-toolkit entry (SAGEMAKER_PROGRAM): inference.handler's functions."""

from inference.handler import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
'''


@dataclass(frozen=True)
class CodeBundle:
    """The archive bytes and where they live in S3 (``<prefix>/code/<sha256[:16]>/sourcedir.tar.gz``)."""

    data: bytes
    sha256: str

    def key(self, prefix: str) -> str:
        return f"{prefix.strip('/')}/code/{self.sha256[:16]}/{ARCHIVE}"

    def uri(self, bucket: str, prefix: str) -> str:
        return f"s3://{bucket}/{self.key(prefix)}"


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """Pinned requirements of the step containers: core + data + train + store, minus what the image has."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    pins: list[str] = list(project["dependencies"])
    for extra in CONTAINER_EXTRAS:
        pins += [p for p in extras[extra] if not p.startswith("ordernimbus[")]
    out = []
    for pin in pins:
        name = re.split(r"[\[=<>!~ ]", pin, maxsplit=1)[0].lower()
        if name not in PROVIDED_BY_IMAGE and pin not in out:
            out.append(pin)
    return sorted(out, key=str.lower)


def _members(root: Path) -> list[tuple[str, bytes]]:
    files: dict[str, bytes] = {}
    for package in CODE_PACKAGES:
        for pattern in PACKAGE_FILES:
            for file in (root / package).rglob(pattern):
                if "__pycache__" not in file.parts:
                    files[file.relative_to(root).as_posix()] = file.read_bytes()
    files["requirements.txt"] = ("\n".join(requirements(root / "pyproject.toml")) + "\n").encode()
    files[SERVE_MODULE] = SERVE_SOURCE.encode()
    return sorted(files.items())


def build_bundle(root: Path = ROOT) -> CodeBundle:
    """The reproducible source-dir archive of ``root``'s packages (same files -> same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in _members(root):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    data = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return CodeBundle(data, hashlib.sha256(data).hexdigest())


@cache
def current_bundle() -> CodeBundle:
    """The bundle of this checkout, built once per process."""
    return build_bundle()


def artifacts(bundle: CodeBundle) -> dict[str, bytes]:
    """Every object of the bundle's folder: the archive, and the Spark step's app and py-files."""
    from pipelines.sagemaker_spark import spark_files

    return {ARCHIVE: bundle.data, **spark_files(bundle.data)}


def upload_bundle(bundle: CodeBundle, bucket: str, prefix: str, s3: Any) -> bool:
    """Put the bundle's objects at their content keys unless they are there; True if anything was put."""
    from botocore.exceptions import ClientError

    folder = bundle.key(prefix).rsplit("/", 1)[0]
    uploaded = False
    for name, data in artifacts(bundle).items():
        key = f"{folder}/{name}"
        try:
            s3.head_object(Bucket=bucket, Key=key)
            continue
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": bundle.sha256})
        uploaded = True
    return uploaded
