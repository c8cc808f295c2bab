"""Small helpers shared by step entrypoints: reading the sales input and running a step safely."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ordernimbus.errors import OrderNimbusError
from pipelines.contract import BAD_INPUT, StepContext, parse

SALES = "sales.parquet"
META = "meta.json"


def read_sales(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The validated sales written by the Validate step, with its metadata (frequency, fingerprint)."""
    frame = pd.read_parquet(folder / SALES)
    meta: dict[str, Any] = json.loads((folder / META).read_text())
    return frame, meta


def strict_json(value: Any, indent: int | None = 2) -> str:
    """JSON with every non-finite float as null.

    Python writes NaN and Infinity as bare tokens, which strict parsers refuse: SageMaker's
    condition step reads ``gate.wape_ratio`` from evaluation.json, and a tenant that sold nothing
    in its backtest windows has WAPEs of 0 / 0.
    """
    return json.dumps(_finite(value), indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def fingerprint(frame: pd.DataFrame) -> str:
    """Content hash of a sales frame, independent of row order: the data lineage of a model."""
    ordered = frame.sort_values(["store_id", "sku", "date"]).reset_index(drop=True)
    digest = hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def quantiles_arg(text: str) -> tuple[float, ...]:
    values = tuple(sorted(float(x) for x in text.split(",") if x.strip()))
    if not values or any(not 0 < q < 1 for q in values) or 0.5 not in values:
        raise OrderNimbusError(f"quantiles {text!r}: expected levels in (0, 1) including 0.5")
    return values


def run_step(main: Callable[[StepContext], None], argv: list[str] | None = None) -> None:
    """Run ``main`` with the container contract; write SageMaker's failure file and exit 1 on error."""
    ctx = parse(argv if argv is not None else sys.argv[1:])
    try:
        main(ctx)
    except OrderNimbusError as exc:  # the input, not the machine: exit as the CLI does for bad input
        ctx.write_failure(str(exc))
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(BAD_INPUT) from None
    except Exception as exc:
        ctx.write_failure(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        raise SystemExit(1) from None
