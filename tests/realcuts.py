"""Small real data cuts for tests (bundled with the package, so nothing downloads at run time)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BUNDLED = Path(__file__).resolve().parents[1] / "ordernimbus" / "data" / "store_item_demand_cut.parquet"


def store_item_cut(stores: int = 2, items: int = 3, since: str = "2016-01-01") -> pd.DataFrame:
    """A small real cut of Store Item Demand in the canonical shape (bundled, so it never downloads)."""
    raw = pd.read_parquet(BUNDLED)
    raw["date"] = pd.to_datetime(raw["date"])
    raw = raw[(raw["store_id"] <= stores) & (raw["item_id"] <= items) & (raw["date"] >= since)]
    return pd.DataFrame(
        {
            "store_id": raw["store_id"].astype(str),
            "sku": raw["item_id"].astype(str),
            "date": raw["date"],
            "units": raw["units"].astype(float),
        }
    ).reset_index(drop=True)
