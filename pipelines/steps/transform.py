"""Transform step (local Batch Transform): run inference/handler.py over every input file by mini-batch.

As SageMaker does with SplitType=Line and BatchStrategy=MultiRecord: each file is read in
mini-batches of whole lines, each mini-batch goes through input_fn -> predict_fn -> output_fn, and
the results are appended to ``<file>.out`` in the output location. Memory stays bounded by the
mini-batch, whatever the tenant's size.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

from inference.handler import model_fn, transform
from pipelines.contract import StepContext
from pipelines.steps._io import quantiles_arg, run_step

SERIES_PER_BATCH = 500


def unpack(model_input: Path, into: Path) -> Path:
    """The model directory from a model.tar.gz (or an already unpacked directory)."""
    archives = [model_input] if model_input.is_file() else sorted(model_input.glob("*.tar.gz"))
    if not archives:
        return model_input
    with tarfile.open(archives[0]) as tar:
        tar.extractall(into, filter="data")
    return into


def main(ctx: StepContext) -> None:
    batch_dir = ctx.input("batch")
    request_file = batch_dir / "request.json"
    request = json.loads(request_file.read_text()) if request_file.exists() else {}
    horizon = int(request.get("horizon", 28))
    quantiles = quantiles_arg(str(request.get("quantiles", "0.1,0.5,0.9")))
    out = ctx.output("predictions")
    with tempfile.TemporaryDirectory() as tmp:
        model = model_fn(str(unpack(ctx.input("model"), Path(tmp))))
        files = sorted(batch_dir.glob("*.jsonl"))
        for file in files:
            with open(file, "rb") as src, open(out / f"{file.name}.out", "w") as dst:
                lines = src.readlines()
                for i in range(0, len(lines), SERIES_PER_BATCH):
                    body = b"".join(lines[i : i + SERIES_PER_BATCH])
                    dst.write(transform(model, body, "application/jsonlines", "application/jsonlines",
                                        horizon=horizon, quantiles=quantiles))
            print(f"transformed {file.name}: {len(lines)} series")


if __name__ == "__main__":
    run_step(main)
