"""Read files out of a registered model artifact (``model.tar.gz``) without unpacking it to disk.

The registry records each version's artifact URI: ``file://`` on one machine, ``s3://`` on AWS
(boto3 is imported only then; the Lambda runtime ships it). An artifact never changes once
registered, so a member read once is kept in a small in-process cache keyed by URI (and, for local
files, size and mtime, in case a file is replaced in place by hand).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from ordernimbus.errors import OrderNimbusError

MAX_MEMBER_BYTES = 16 * 1024 * 1024
_CACHE_SIZE = 64


class ArtifactError(OrderNimbusError):
    status = 502
    title = "Model artifact unreadable"


_cache: OrderedDict[tuple[str, str, object], bytes | None] = OrderedDict()
_lock = threading.Lock()


def read_member(uri: str, name: str) -> bytes | None:
    """The bytes of ``name`` at the archive root of the artifact at ``uri``; None when absent."""
    key = (uri, name, _stamp(uri))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with _open_archive(uri) as archive:
        found = _extract(archive, name)
    with _lock:
        _cache[key] = found
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


@contextlib.contextmanager
def unpacked(uri: str) -> Iterator[Path | None]:
    """The artifact unpacked into a temporary directory (None when it cannot be found)."""
    with tempfile.TemporaryDirectory(prefix="artifact-") as tmp:
        try:
            with _open_archive(uri) as archive:
                archive.extractall(tmp, filter="data")
        except ArtifactError:
            yield None
            return
        yield Path(tmp)


def _extract(archive: tarfile.TarFile, name: str) -> bytes | None:
    for candidate in (name, f"./{name}"):
        try:
            member = archive.getmember(candidate)
        except KeyError:
            continue
        if not member.isfile() or member.size > MAX_MEMBER_BYTES:
            raise ArtifactError(
                f"{name} in the model artifact is not a regular file of at most {MAX_MEMBER_BYTES:,} bytes"
            )
        handle = archive.extractfile(member)
        return handle.read() if handle is not None else None
    return None


@contextlib.contextmanager
def _open_archive(uri: str) -> Iterator[tarfile.TarFile]:
    parsed = urlparse(uri)
    try:
        if parsed.scheme == "s3":
            with tarfile.open(
                fileobj=io.BytesIO(_s3_bytes(parsed.netloc, parsed.path.lstrip("/"))), mode="r:*"
            ) as tar:
                yield tar
            return
        path = _local_path(uri)
        if path.is_dir():  # an unpacked model directory (tests, a manual registration)
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                for item in sorted(path.iterdir()):
                    tar.add(item, arcname=item.name)
            buffer.seek(0)
            with tarfile.open(fileobj=buffer, mode="r") as tar:
                yield tar
            return
        with tarfile.open(path, mode="r:*") as tar:
            yield tar
    except (OSError, tarfile.TarError) as exc:
        raise ArtifactError(f"the model artifact could not be read ({type(exc).__name__})") from None


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise ArtifactError(f"artifact URI scheme {parsed.scheme!r} is not supported: expected file:// or s3://")


def _stamp(uri: str) -> object:
    if urlparse(uri).scheme == "s3":
        return None
    try:
        stat = _local_path(uri).stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def _s3_bytes(bucket: str, key: str) -> bytes:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read())
    except (BotoCoreError, ClientError) as exc:
        raise OSError(f"s3://{bucket}/{key}: {type(exc).__name__}") from None
