"""The drift-check function's container image: its Dockerfile, build context and what CDK stages.

The monitor needs pandas, pyarrow, scipy and Evidently, far beyond the 250 MB unzipped limit of a
zip Lambda, while the API package (``make lambda-package``) must stay free of them. So the monitor
is a container image built from the repository root with ``infra/docker/monitor/Dockerfile``.
Synthesis only copies the build context into ``cdk.out``; Docker runs at ``cdk deploy``, which
keeps ``make synth`` offline. The context is cut down by the allowlist next to the Dockerfile
(``Dockerfile.dockerignore``, which BuildKit also reads), so .venv, build outputs, tests and data
never reach the asset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.errors import InfraConfigError

DOCKERFILE = "infra/docker/monitor/Dockerfile"
IGNORE_FILE = f"{DOCKERFILE}.dockerignore"
MONITOR_HANDLER = "monitoring.lambda_handler.handler"  # the Dockerfile's CMD


@dataclass(frozen=True)
class ImageAsset:
    """A Docker build context for a Lambda image; the image's CMD names the handler."""

    directory: Path
    dockerfile: str  # relative to directory
    exclude: tuple[str, ...]  # .dockerignore patterns, relative to directory


def monitor_image(root: Path) -> ImageAsset:
    """The monitor's image asset under ``root`` (the repository); names any file that is missing."""
    missing = [name for name in (DOCKERFILE, IGNORE_FILE) if not (root / name).is_file()]
    if missing:
        raise InfraConfigError(
            f"monitor image: {root} lacks {missing}; the drift-check function is built from "
            f"{DOCKERFILE} with the repository root as its context"
        )
    return ImageAsset(directory=root, dockerfile=DOCKERFILE, exclude=read_ignore(root / IGNORE_FILE))


def read_ignore(path: Path) -> tuple[str, ...]:
    """The patterns of a .dockerignore file (comments and blank lines dropped), in order."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    patterns = tuple(line for line in lines if line and not line.startswith("#"))
    if "*" not in patterns:
        raise InfraConfigError(
            f"{path}: the monitor's context is the whole repository, so this file must be an allowlist "
            "that starts with '*' and re-includes what the Dockerfile copies ('!monitoring', ...)"
        )
    return patterns
