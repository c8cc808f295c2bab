"""Transform step (local Batch Transform): run inference/handler.py over every input file by mini-batch.

As SageMaker does with SplitType=Line, BatchStrategy=MultiRecord and AssembleWith=Line: each file
is cut into mini-batches of whole lines (one series per line) of at most ``max_payload_mb``
(SageMaker's MaxPayloadInMB, 6 by default) and ``SERIES_PER_BATCH`` series; each mini-batch goes
through input_fn -> predict_fn -> output_fn, and the responses are appended in input order to
``<file>.out``. Mini-batches run in parallel on ``workers`` processes (SageMaker's
MaxConcurrentTransforms; by default one per two cores, as the booster runs two threads itself),
each loading the model once. At most two mini-batches per worker are in flight, so memory stays
bounded whatever the tenant's size.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from inference.handler import model_fn, transform
from ordernimbus.errors import OrderNimbusError
from ordernimbus.settings import get_settings
from pipelines.contract import StepContext
from pipelines.steps._io import quantiles_arg, run_step

SERIES_PER_BATCH = 500
MIN_SERIES_PER_BATCH = 20  # below this the per-call overhead (feature frames, booster calls) dominates
# Below this many series one process finishes before a pool pays for itself (forked workers start
# in ~0.1 s, then import the model's libraries and load it: about a second; one process
# forecasts ~100 series/s here; benchmarks/forecast_publish.py).
POOL_MIN_SERIES = 1000
# The gradient-boosted member predicts on 2 threads of its own (n_jobs=2), so one process already
# keeps two cores busy: the default is one worker per two cores (measured on 2 cores, 4,000
# series: 1 process 15 s, 2 processes 19 s; benchmarks/results/forecast_publish.json).
THREADS_PER_WORKER = 2
MAX_PAYLOAD_MB = 6.0
CONTENT_TYPE = "application/jsonlines"
_WORKER: dict[str, Any] = {}


class PayloadTooLargeError(OrderNimbusError):
    title = "Batch transform record too large"


def unpack(model_input: Path, into: Path) -> Path:
    """The model directory from a model.tar.gz (or an already unpacked directory)."""
    archives = [model_input] if model_input.is_file() else sorted(model_input.glob("*.tar.gz"))
    if not archives:
        return model_input
    with tarfile.open(archives[0]) as tar:
        tar.extractall(into, filter="data")
    return into


def mini_batches(file: Path, max_records: int, max_bytes: int) -> Iterator[bytes]:
    """Whole lines of ``file``, grouped up to ``max_records`` lines and ``max_bytes`` bytes."""
    batch: list[bytes] = []
    size = 0
    with open(file, "rb") as src:
        for number, line in enumerate(src, start=1):
            if not line.strip():
                continue
            if len(line) > max_bytes:
                raise PayloadTooLargeError(
                    f"{file.name} line {number} is {len(line):,} bytes, more than the payload limit of "
                    f"{max_bytes:,} bytes (MaxPayloadInMB): shorten the series' history"
                )
            if batch and (len(batch) >= max_records or size + len(line) > max_bytes):
                yield b"".join(batch)
                batch, size = [], 0
            batch.append(line if line.endswith(b"\n") else line + b"\n")
            size += len(line)
    if batch:
        yield b"".join(batch)


def series_per_batch(total_series: int, workers: int) -> int:
    """Enough mini-batches to keep every worker busy, none larger than SERIES_PER_BATCH."""
    return max(MIN_SERIES_PER_BATCH, min(SERIES_PER_BATCH, math.ceil(total_series / max(workers, 1))))


def ordered_map(
    submit: Callable[[bytes], Future[str]], bodies: Iterator[bytes], in_flight: int
) -> Iterator[str]:
    """Results of ``bodies`` in input order, with at most ``in_flight`` submitted and unfinished."""
    pending: deque[Future[str]] = deque()
    for body in bodies:
        pending.append(submit(body))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _init_worker(model_dir: str, attrs: dict[str, Any]) -> None:
    _WORKER["model"] = model_fn(model_dir)
    _WORKER["attrs"] = attrs


def _predict(body: bytes) -> str:
    return transform(_WORKER["model"], body, CONTENT_TYPE, CONTENT_TYPE, **_WORKER["attrs"])


def run_files(files: list[Path], out: Path, model_dir: Path, *, attrs: dict[str, Any], workers: int,
              max_bytes: int, pool_min_series: int = POOL_MIN_SERIES,
              batch_series: int | None = None) -> int:  # fmt: skip
    """Transform every file into ``out/<name>.out`` (written then renamed); returns the series count."""
    total = sum(_count_lines(file) for file in files)
    if total < pool_min_series:
        workers = 1  # a small tenant is done before a pool has started
    per_batch = batch_series or series_per_batch(total, workers)
    workers = min(workers, math.ceil(total / per_batch))
    print(f"{total} series in mini-batches of up to {per_batch} on {max(workers, 1)} process(es)", flush=True)
    if workers <= 1:
        _init_worker(str(model_dir), attrs)
        _transform_files(
            files,
            out,
            per_batch=per_batch,
            max_bytes=max_bytes,
            submit=lambda body: _done(_predict(body)),
            in_flight=1,
        )
        return total
    ctx = mp.get_context(_start_method())
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(str(model_dir), attrs)) as pool:  # fmt: skip
        _transform_files(files, out, per_batch=per_batch, max_bytes=max_bytes,
                         submit=lambda body: pool.submit(_predict, body), in_flight=2 * workers)  # fmt: skip
    return total


def _transform_files(files: list[Path], out: Path, *, per_batch: int, max_bytes: int,
                     submit: Callable[[bytes], Future[str]], in_flight: int) -> None:  # fmt: skip
    for file in files:
        started, batches = time.monotonic(), 0
        final = out / f"{file.name}.out"
        partial = final.with_name(final.name + ".partial")
        with open(partial, "w") as dst:
            for result in ordered_map(submit, mini_batches(file, per_batch, max_bytes), in_flight):
                dst.write(result)
                batches += 1
        os.replace(partial, final)
        print(
            f"transformed {file.name}: {batches} mini-batch(es) in {time.monotonic() - started:.1f} s",
            flush=True,
        )


def _start_method() -> str:
    """fork when safe, else spawn.

    Forked workers inherit the imported modules instead of re-importing them (a pool started in
    0.1 s here with fork, 6 s with spawn). That is safe while this process has not loaded a library
    that runs an OpenMP or torch thread pool, which a forked child could deadlock on; the Transform
    step never has (each worker loads the model after the fork), a caller that trained in-process has.
    """
    threaded = {"xgboost", "torch", "lightgbm"} & set(sys.modules)
    return "spawn" if threaded or sys.platform != "linux" else "fork"


def _count_lines(file: Path) -> int:
    with open(file, "rb") as src:
        return sum(1 for line in src if line.strip())


def _done(value: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(value)
    return future


def main(ctx: StepContext) -> None:
    batch_dir = ctx.input("batch")
    request_file = batch_dir / "request.json"
    request = json.loads(request_file.read_text()) if request_file.exists() else {}
    attrs = {"horizon": int(request.get("horizon", 28)),
             "quantiles": quantiles_arg(str(request.get("quantiles", "0.1,0.5,0.9")))}  # fmt: skip
    configured = int(ctx.param("workers", str(get_settings().transform_workers)))
    workers = configured or max(1, len(os.sched_getaffinity(0)) // THREADS_PER_WORKER)
    max_bytes = int(float(ctx.param("max_payload_mb", str(MAX_PAYLOAD_MB))) * 2**20)
    out = ctx.output("predictions")
    files = sorted(batch_dir.glob("*.jsonl"))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = unpack(ctx.input("model"), Path(tmp))
        series = run_files(files, out, model_dir, attrs=attrs, workers=workers, max_bytes=max_bytes)
    print(f"transformed {series} series from {len(files)} file(s) in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    run_step(main)
