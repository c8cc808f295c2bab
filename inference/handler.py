"""The SageMaker inference contract, so Batch Transform runs the same code as the local runner.

Input: JSON Lines (or CSV with a header) where each record is one day of one series
(``store_id, sku, date, units`` plus covariates) and optionally a ``horizon`` / ``quantiles``
request line; SageMaker splits by line, so a mini-batch may hold several series. Output: JSON
Lines, one forecast record per series x target date.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from models.base import Forecaster, load_model
from models.metrics import qcol

DEFAULT_HORIZON = int(os.environ.get("ORDERNIMBUS_HORIZON", "28"))
DEFAULT_QUANTILES = tuple(float(q) for q in os.environ.get("ORDERNIMBUS_QUANTILES", "0.1,0.5,0.9").split(","))


class InferenceError(ValueError):
    """Bad request body: SageMaker reports it as a client error for the record."""


def model_fn(model_dir: str) -> Forecaster:
    return load_model(Path(model_dir))


def input_fn(body: str | bytes, content_type: str) -> pd.DataFrame:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if content_type in ("application/jsonlines", "application/json"):
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        if content_type == "application/json" and len(records) == 1 and isinstance(records[0], list):
            records = records[0]
        frame = _explode(records)
    elif content_type == "text/csv":
        frame = pd.read_csv(io.StringIO(text), dtype={"store_id": str, "sku": str})
    else:
        raise InferenceError(f"unsupported content type {content_type!r}; use application/jsonlines or text/csv")
    missing = {"store_id", "sku", "date", "units"} - set(frame.columns)
    if missing:
        raise InferenceError(f"records lack required fields: {sorted(missing)}")
    frame["store_id"] = frame["store_id"].astype(str)
    frame["sku"] = frame["sku"].astype(str)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["units"] = pd.to_numeric(frame["units"], errors="raise").astype(float)
    return frame


def _explode(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-series records (``history`` holding column arrays) become one row per series x period.

    Batch Transform splits input by line, so one line per series keeps a series whole in a
    mini-batch; per-period records are accepted too.
    """
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


def predict_fn(data: pd.DataFrame, model: Forecaster) -> pd.DataFrame:
    horizon = int(data.attrs.get("horizon", DEFAULT_HORIZON))
    quantiles = tuple(data.attrs.get("quantiles", DEFAULT_QUANTILES))
    return model.predict(data, horizon, quantiles)


def output_fn(prediction: pd.DataFrame, accept: str) -> str:
    frame = prediction.copy()
    frame["target_date"] = pd.to_datetime(frame["target_date"]).dt.strftime("%Y-%m-%d")
    if accept == "text/csv":
        return str(frame.to_csv(index=False))
    return str(frame.to_json(orient="records", lines=True)) + "\n"


def forecast_columns(quantiles: tuple[float, ...]) -> list[str]:
    return ["store_id", "sku", "target_date", "horizon_day", *(qcol(q) for q in quantiles), "mean"]


def transform(model: Forecaster, body: bytes, content_type: str, accept: str, **attrs: Any) -> str:
    """One mini-batch through the four functions, as the SageMaker inference toolkit chains them."""
    data = input_fn(body, content_type)
    data.attrs.update(attrs)
    return output_fn(predict_fn(data, model), accept)
