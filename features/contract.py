"""The canonical daily sales contract (DESIGN.md §4), declared once and checked at the edge.

Every source maps onto this long format: one row per tenant x store x sku x day (or week). Nothing
downstream re-validates; it relies on frames that passed :func:`validate_sales`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.errors import ContractError, Problem

REQUIRED = ("tenant_id", "store_id", "sku", "date", "units")
OPTIONAL = ("unit_price", "revenue", "channel", "on_promotion")
SERIES_KEY = ("store_id", "sku")
RECORD_KEY = ("store_id", "sku", "date")
# A day's units beyond this are not a retail sale but a data error (a barcode in the quantity field).
MAX_UNITS = 1e7

SALES_SCHEMA = pa.DataFrameSchema(
    {
        "tenant_id": pa.Column(str, pa.Check.str_matches(r"^[a-z0-9][a-z0-9-]{1,62}$")),
        "store_id": pa.Column(str, pa.Check.str_length(1, 128)),
        "sku": pa.Column(str, pa.Check.str_length(1, 128)),
        "date": pa.Column("datetime64[ns]"),
        "units": pa.Column(
            float,
            [
                pa.Check(np.isfinite, element_wise=False, error="units must be finite"),
                pa.Check.le(MAX_UNITS),
            ],
        ),
        "unit_price": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
        "revenue": pa.Column(float, nullable=True, required=False),
        "channel": pa.Column(str, nullable=True, required=False),
        "on_promotion": pa.Column(float, pa.Check.isin([0.0, 1.0]), nullable=True, required=False),
    },
    unique=list(RECORD_KEY),
    strict=False,
    coerce=False,
    ordered=False,
)


def validate_sales(frame: pd.DataFrame, source: str, max_problems: int = 20) -> pd.DataFrame:
    """Check ``frame`` against the contract; raise a :class:`ContractError` listing the failures.

    Rows in the problems are 1-based positions in the frame (sources map them back to file rows
    before calling this, via a ``_row`` column when they have it).
    """
    try:
        return SALES_SCHEMA.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        problems: list[Problem] = []
        for case in cases.head(max_problems).itertuples(index=False):
            index = getattr(case, "index", None)
            row = _file_row(frame, index)
            column = getattr(case, "column", None)
            check = getattr(case, "check", "")
            value = getattr(case, "failure_case", "")
            problems.append(
                Problem(
                    source,
                    row,
                    str(column) if column is not None else None,
                    f"failed {check} (value {value!r})",
                )
            )
        raise ContractError(problems, total=len(cases)) from None


def _file_row(frame: pd.DataFrame, index: object) -> int | None:
    if index is None or (isinstance(index, float) and np.isnan(index)):
        return None
    if "_row" in frame.columns and index in frame.index:
        return int(frame.at[index, "_row"])  # type: ignore[arg-type]
    try:
        return int(index) + 1  # type: ignore[arg-type, call-overload]
    except (TypeError, ValueError):
        return None
