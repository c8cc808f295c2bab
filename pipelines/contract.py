"""The SageMaker container contract as one thin adapter that also runs on a laptop.

SageMaker mounts inputs under ``/opt/ml``; our local runner builds the same tree under a per-step
directory and passes its root as ``--sm-base``. Step code asks this object for its inputs and
outputs and never spells a path itself.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_BASE = Path("/opt/ml")
# A step that refuses its input exits 2, the CLI's code for bad input; the local runner does not
# retry it, since the same input would be refused again. Any other failure exits 1 and may be retried.
BAD_INPUT = 2


@dataclass(frozen=True)
class StepContext:
    base: Path
    args: dict[str, str]

    # processing jobs
    def input(self, name: str) -> Path:
        return self.base / "processing" / "input" / name

    def output(self, name: str) -> Path:
        path = self.base / "processing" / "output" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # training jobs
    def channel(self, name: str) -> Path:
        env = os.environ.get(f"SM_CHANNEL_{name.upper()}")
        return Path(env) if env else self.base / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        path = Path(os.environ.get("SM_MODEL_DIR", self.base / "model"))
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def output_data_dir(self) -> Path:
        path = Path(os.environ.get("SM_OUTPUT_DATA_DIR", self.base / "output" / "data"))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def hyperparameters(self) -> dict[str, Any]:
        file = self.base / "input" / "config" / "hyperparameters.json"
        values: dict[str, Any] = json.loads(file.read_text()) if file.exists() else {}
        return {**values, **self.args}

    def param(self, name: str, default: str | None = None) -> str:
        value = self.hyperparameters().get(name, default)
        if value is None:
            raise SystemExit(f"missing required parameter --{name}")
        return str(value)

    def write_failure(self, message: str) -> None:
        """SageMaker shows /opt/ml/output/failure in the job's FailureReason."""
        path = self.base / "output"
        path.mkdir(parents=True, exist_ok=True)
        (path / "failure").write_text(message[:1024])


def parse(argv: list[str] | None = None) -> StepContext:
    """``--sm-base DIR`` plus any ``--name value`` pairs (SageMaker passes hyperparameters this way)."""
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--sm-base", default=os.environ.get("SM_BASE", str(DEFAULT_BASE)))
    known, rest = parser.parse_known_args(argv)
    extra: dict[str, str] = {}
    it = iter(rest)
    for token in it:
        if not token.startswith("--"):
            raise SystemExit(f"unexpected argument {token!r}")
        key, sep, value = token[2:].partition("=")
        extra[key.replace("-", "_")] = value if sep else next(it, "")
    return StepContext(Path(known.sm_base), extra)
