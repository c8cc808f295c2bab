"""The SageMaker inference contract, so Batch Transform runs the same code as the local runner.

SageMaker Batch Transform with ``SplitType=Line`` cuts input files at line ends and sends groups
of whole lines (up to ``MaxPayloadInMB``) to the container, whose inference toolkit calls
``model_fn`` once, then ``input_fn -> predict_fn -> output_fn`` per request, and joins the
responses line by line (``AssembleWith=Line``) into ``<input file>.out``. A series must therefore
sit on one line, whatever the format, so no request ever holds half a series:

- ``application/jsonlines`` (what Prepare writes): one object per series,
  ``{"store_id", "sku", "history": {"date": [...], "units": [...], <covariate>: [...]}}``;
  flat per-day records (``store_id, sku, date, units, ...``) are accepted too when a request
  holds whole series (a direct call, not a split file).
- ``text/csv``: one line per series, no header (a first line starting ``store_id`` is skipped):
  ``store_id,sku,end_date,u_1,...,u_n``, the units of consecutive periods ending at
  ``end_date`` in the model's frequency (empty cells are missing days). Covariates need JSON Lines.

Output: JSON Lines, one forecast record per series x target date; with ``Accept: text/csv``,
headerless CSV lines in :func:`forecast_columns` order (a header per request would repeat inside
the assembled file). Horizon and quantiles come from the environment (``ORDERNIMBUS_HORIZON``,
``ORDERNIMBUS_QUANTILES``), which the model's container definition sets, or from ``data.attrs``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.base import Forecaster, load_model
from models.metrics import qcol

DEFAULT_HORIZON = 28
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
JSON_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/json")
_BACK = "_periods_before_end"  # CSV rows: position before the line's end date, resolved in predict_fn
_END = "_end_date"


class InferenceError(ValueError):
    """Bad request body: SageMaker reports it as a client error for the record."""


def model_fn(model_dir: str) -> Forecaster:
    return load_model(Path(model_dir))


def input_fn(body: str | bytes, content_type: str) -> pd.DataFrame:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind in JSON_TYPES:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        if kind == "application/json" and len(records) == 1 and isinstance(records[0], list):
            records = records[0]
        frame = _explode(records)
    elif kind == "text/csv":
        frame = _csv_series(text)
    else:
        raise InferenceError(
            f"unsupported content type {content_type!r}; use application/jsonlines or text/csv"
        )
    missing = {"store_id", "sku", "units"} - set(frame.columns)
    if missing or ("date" not in frame.columns and _BACK not in frame.columns):
        raise InferenceError(f"records lack required fields: {sorted(missing or {'date'})}")
    frame["store_id"] = frame["store_id"].astype(str)
    frame["sku"] = frame["sku"].astype(str)
    if "date" in frame.columns:
        frame["date"] = pd.to_datetime(frame["date"])
    frame["units"] = pd.to_numeric(frame["units"], errors="raise").astype(float)
    return frame


def _explode(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-series records (``history`` holding column arrays) become one row per series x period."""
    flat, series = [], []
    for record in records:
        history = record.get("history")
        if history is None:
            flat.append(record)
            continue
        part = pd.DataFrame(history)
        part.insert(0, "sku", record.get("sku"))
        part.insert(0, "store_id", record.get("store_id"))
        series.append(part)
    frames = ([pd.DataFrame.from_records(flat)] if flat else []) + series
    if not frames:
        raise InferenceError("the request holds no records")
    return pd.concat(frames, ignore_index=True)


def _csv_series(text: str) -> pd.DataFrame:
    """``store_id,sku,end_date,u_1..u_n`` lines as rows counted back from each line's end date."""
    parts = []
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not cells or (number == 1 and cells[0].strip().lower() == "store_id"):
            continue
        if len(cells) < 4:
            raise InferenceError(
                f"CSV line {number}: expected store_id,sku,end_date,u_1,...,u_n, got {len(cells)} value(s)"
            )
        try:
            end = pd.Timestamp(cells[2])
            units = np.array([float(c) if c.strip() else np.nan for c in cells[3:]])
        except ValueError as exc:
            raise InferenceError(f"CSV line {number}: {exc}") from None
        parts.append(pd.DataFrame({"store_id": cells[0], "sku": cells[1], _END: end,
                                   _BACK: np.arange(len(units) - 1, -1, -1), "units": units}))  # fmt: skip
    if not parts:
        raise InferenceError("the request holds no records")
    return pd.concat(parts, ignore_index=True)


def _resolve_dates(data: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Dates of CSV rows: ``end_date`` minus the row's position, in periods of the model's frequency."""
    from features.frequency import pandas_alias

    step = pd.tseries.frequencies.to_offset(pandas_alias(freq))
    days = 7 if freq.startswith("W") else 1
    if days == 7 and not all(step.is_on_offset(d) for d in data[_END].drop_duplicates()):
        raise InferenceError(f"end_date must fall on the model's weekly anchor ({freq})")
    dates = data[_END] - pd.to_timedelta(data[_BACK] * days, unit="D")
    resolved = data.drop(columns=[_END, _BACK]).assign(date=dates)
    return resolved.dropna(subset=["units"]).reset_index(drop=True)


def predict_fn(data: pd.DataFrame, model: Forecaster) -> pd.DataFrame:
    horizon = int(data.attrs.get("horizon") or os.environ.get("ORDERNIMBUS_HORIZON") or DEFAULT_HORIZON)
    quantiles = tuple(data.attrs.get("quantiles") or _env_quantiles() or DEFAULT_QUANTILES)
    if _BACK in data.columns:
        data = _resolve_dates(data, str(getattr(model, "freq", "D")))
    return model.predict(data, horizon, quantiles)


def _env_quantiles() -> tuple[float, ...]:
    """Read per call, not at import: the container's environment is the job's configuration."""
    text = os.environ.get("ORDERNIMBUS_QUANTILES", "")
    return tuple(float(q) for q in text.split(",") if q.strip())


def output_fn(prediction: pd.DataFrame, accept: str) -> str:
    frame = prediction.copy()
    frame["target_date"] = pd.to_datetime(frame["target_date"]).dt.strftime("%Y-%m-%d")
    if accept.split(";", maxsplit=1)[0].strip().lower() == "text/csv":
        quantiles = sorted(float(c[1:]) / 100 for c in frame.columns if c[:1] == "p" and c[1:].isdigit())
        return str(frame[forecast_columns(tuple(quantiles))].to_csv(index=False, header=False))
    return str(frame.to_json(orient="records", lines=True)) + "\n"


def forecast_columns(quantiles: tuple[float, ...]) -> list[str]:
    return ["store_id", "sku", "target_date", "horizon_day", *(qcol(q) for q in quantiles), "mean"]


def transform(model: Forecaster, body: bytes, content_type: str, accept: str, **attrs: Any) -> str:
    """One mini-batch through the four functions, as the SageMaker inference toolkit chains them."""
    data = input_fn(body, content_type)
    data.attrs.update(attrs)
    return output_fn(predict_fn(data, model), accept)
