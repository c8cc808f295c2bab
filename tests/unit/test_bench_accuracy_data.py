"""benchmarks/accuracy.py reads the sets' held-back stores: other files, Kaggle's own columns."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "benchmarks" / "accuracy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


accuracy = _load()
needs_data = pytest.mark.skipif(not (DATA / accuracy.STORE_ITEM).exists(), reason="../shared/data absent")


@needs_data
def test_store_item_window_comes_from_the_data_and_kaggle_columns_read_the_same(tmp_path: Path) -> None:
    raw = pd.read_parquet(DATA / accuracy.STORE_ITEM)
    sales, until, horizon, freq = accuracy.store_item()
    assert (until, horizon, freq) == (pd.Timestamp("2017-10-02"), 90, "D")  # the data README's window
    # another store, one year shorter, as Kaggle ships it (train.csv: date, store, item, sales)
    other = raw[(raw["store_id"] == 2) & (pd.to_datetime(raw["date"]) < "2017-01-01")]
    kaggle = other.rename(columns={"store_id": "store", "item_id": "item", "units": "sales"})
    kaggle.to_csv(tmp_path / "train.csv.gz", index=False)
    got, got_until, _, _ = accuracy.store_item(tmp_path / "train.csv.gz")
    assert got_until == pd.Timestamp("2016-10-02")
    expected = sales[(sales["store_id"] == "2") & (sales["date"] < "2017-01-01")].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)


@needs_data
def test_walmart_weeks_keep_the_files_weekday_and_markdowns_are_optional(tmp_path: Path) -> None:
    raw = pd.read_parquet(DATA / accuracy.WALMART)
    sales, until, horizon, freq = accuracy.walmart()
    assert (horizon, freq) == (39, "W-FRI")
    assert (sales["date"] > until).groupby(sales["date"]).first().sum() == 39
    moved = raw[raw["store_id"] == 1].drop(columns=[f"markdown{i}" for i in range(1, 6)])
    moved = moved.assign(date=pd.to_datetime(moved["date"]) + pd.Timedelta(days=2))  # weeks ending Sunday
    moved.rename(columns={"store_id": "Store", "dept_id": "Dept", "weekly_sales": "Weekly_Sales"}).to_csv(
        tmp_path / "walmart.csv", index=False
    )
    got, _, _, got_freq = accuracy.walmart(tmp_path / "walmart.csv")
    assert got_freq == "W-SUN"
    assert got["on_promotion"].eq(0).all()
    assert got["units"].sum() == pytest.approx(raw.loc[raw["store_id"] == 1, "weekly_sales"].sum())


def test_a_file_without_the_sets_columns_is_named_with_what_it_has(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("day,shop,product,qty\n2017-01-01,1,1,3\n")
    with pytest.raises(SystemExit, match=r"x\.csv: no column 'date'.*'day', 'shop'"):
        accuracy.store_item(tmp_path / "x.csv")


def test_the_mean_column_is_scored_on_its_own() -> None:
    """Every other figure reads the quantiles; the mean an API user orders stock by has its RMSE and
    bias (a share of total units), so a mean 29 % off, as XGBoost's once was, shows in the table."""
    joined = pd.DataFrame({"actual": [10.0, 0.0, 30.0, 0.0], "mean": [13.0, 4.0, 30.0, 0.0]})
    scores = accuracy.mean_scores(joined)
    assert scores["mean_rmse"] == pytest.approx(2.5)  # sqrt((9 + 16) / 4)
    assert scores["mean_bias"] == pytest.approx(7 / 40)
    figures = {"wape": 0.1, "mase": 0.9, "pinball": 2.0, "coverage": 0.8, "rmsse_weighted": 0.5}
    table = accuracy.table(
        {"x": {"scores": {"ensemble": {**figures, **scores}}, "build_seconds": 1, "goal_seconds": 2}}
    )
    assert "| 2.5 (+17.5%) |" in table
