"""Outages: lost periods filled from the weeks before them, and left out of every score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from backtests import scaled_backtest

from features.lake import SalesLake
from features.outages import LOOKBACK, Outage, OutageError, covered, dumps, fill, loads
from models.evaluation import evaluate
from ordernimbus.errors import OrderNimbusError

Q = (0.1, 0.5, 0.9)
GAP = Outage(pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-30"))


def _daily(days: int = 150, seed: int = 3) -> pd.DataFrame:
    """Two stores x two SKUs with a weekday pattern, April missing from every series (an outage)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = []
    for store in ("A", "B"):
        for sku in ("x", "y"):
            level = 10 + 5 * (dates.dayofweek.to_numpy() >= 5)  # weekends sell half as much again
            frames.append(
                pd.DataFrame(
                    {
                        "tenant_id": "shop",
                        "store_id": store,
                        "sku": sku,
                        "date": dates,
                        "units": rng.poisson(level).astype(float),
                    }
                )
            )
    sales = pd.concat(frames, ignore_index=True)
    return sales[~covered(sales, [GAP])].reset_index(drop=True)


def _expected(sales: pd.DataFrame, store: str, sku: str, outage: Outage) -> pd.Series:
    """Per weekday: the mean of the series' last 28 days before the outage (missing days are zero)."""
    days = pd.date_range(outage.first - pd.Timedelta(days=LOOKBACK["D"]), outage.first - pd.Timedelta(days=1))
    one = sales[(sales["store_id"] == store) & (sales["sku"] == sku)].set_index("date")["units"]
    before = one.reindex(days).fillna(0.0)
    return before.groupby(before.index.dayofweek).mean()


def test_an_outage_is_filled_per_weekday_from_the_four_weeks_before() -> None:
    sales = _daily()
    filled, added = fill(sales, [GAP], "D")
    assert added == 4 * 30
    inside = filled[covered(filled, [GAP])]
    assert len(inside) == 4 * 30
    for (store, sku), rows in inside.groupby(["store_id", "sku"]):
        profile = _expected(sales, str(store), str(sku), GAP)
        want = profile.reindex(rows["date"].dt.dayofweek).to_numpy()
        np.testing.assert_allclose(rows["units"].to_numpy(), want)
    # weekends were filled higher than weekdays, as the series sold
    assert (
        inside.loc[inside["date"].dt.dayofweek >= 5, "units"].mean()
        > 12.5
        > inside.loc[inside["date"].dt.dayofweek < 5, "units"].mean()
    )
    # everything outside the outage is untouched, and the frame keeps its columns and types
    outside = filled[~covered(filled, [GAP])].reset_index(drop=True)
    pd.testing.assert_frame_equal(outside, sales.sort_values(["store_id", "sku", "date"], ignore_index=True))
    assert list(filled.columns) == list(sales.columns)
    assert (filled["tenant_id"] == "shop").all()


def test_the_fill_never_reads_the_data_after_the_outage() -> None:
    """A backtest whose cutoff lies after the outage must not learn its future through the fill."""
    sales = _daily()
    later = sales.copy()
    later.loc[later["date"] > GAP.last, "units"] *= 7  # a different future
    a, _ = fill(sales, [GAP], "D")
    b, _ = fill(later, [GAP], "D")
    pd.testing.assert_frame_equal(a[covered(a, [GAP])], b[covered(b, [GAP])])


def test_records_inside_an_outage_are_kept_and_young_series_are_not_filled() -> None:
    sales = _daily()
    real = pd.DataFrame(
        {
            "tenant_id": "shop",
            "store_id": "A",
            "sku": "x",
            "date": [pd.Timestamp("2024-04-10")],
            "units": [99.0],
        }
    )
    newcomer = pd.DataFrame(
        {
            "tenant_id": "shop",
            "store_id": "A",
            "sku": "new",
            "date": pd.date_range("2024-05-01", periods=20, freq="D"),
            "units": 3.0,
        }
    )
    filled, added = fill(pd.concat([sales, real, newcomer], ignore_index=True), [GAP], "D")
    assert added == 4 * 30 - 1  # the real record's day is not filled
    day = filled[(filled["sku"] == "x") & (filled["store_id"] == "A") & (filled["date"] == "2024-04-10")]
    assert day["units"].tolist() == [99.0]
    assert not covered(filled[filled["sku"] == "new"], [GAP]).any()  # it had not started


def test_a_store_outage_fills_only_that_store_and_covers_only_its_rows() -> None:
    sales = _daily()
    only_b = Outage(GAP.first, GAP.last, "B")
    filled, added = fill(sales, [only_b], "D")
    assert added == 2 * 30
    assert set(filled.loc[covered(filled, [GAP]), "store_id"]) == {"B"}
    rows = pd.DataFrame({"store_id": ["A", "B"], "target_date": pd.to_datetime(["2024-04-05"] * 2)})
    assert covered(rows, [only_b]).tolist() == [False, True]
    assert covered(rows, [GAP]).tolist() == [True, True]


def test_an_outage_past_the_last_sale_does_not_extend_the_history() -> None:
    """Forecasts start after the last real sale; a build --until a date inside an outage stops there."""
    sales = _daily()
    filled, added = fill(sales[sales["date"] <= "2024-04-20"], [GAP], "D")
    assert added == 0
    assert filled["date"].max() == pd.Timestamp("2024-03-31")
    # store B lost April while store A kept selling: B is filled up to A's last day, no further
    only_b = Outage(GAP.first, GAP.last, "B")
    a_kept = _daily(seed=4)
    a_kept = a_kept[a_kept["store_id"] == "A"]
    full = pd.concat([sales[sales["store_id"] == "B"], _with_april(a_kept)], ignore_index=True)
    cut = full[full["date"] <= "2024-04-15"]
    filled, added = fill(cut, [only_b], "D")
    assert added == 2 * 15
    assert filled["date"].max() == pd.Timestamp("2024-04-15")


def _with_april(sales: pd.DataFrame) -> pd.DataFrame:
    april = pd.date_range(GAP.first, GAP.last, freq="D")
    extra = [
        pd.DataFrame({"tenant_id": "shop", "store_id": "A", "sku": sku, "date": april, "units": 10.0})
        for sku in ("x", "y")
    ]
    return pd.concat([sales, *extra], ignore_index=True)


def test_weekly_outages_take_the_eight_weeks_before() -> None:
    dates = pd.date_range("2023-01-06", periods=60, freq="W-FRI")
    units = np.arange(60, dtype=float)
    sales = pd.DataFrame({"store_id": "1", "sku": "k", "date": dates, "units": units})
    outage = Outage(dates[30], dates[35])
    filled, added = fill(sales[~covered(sales, [outage])], [outage], "W-FRI")
    assert added == 6
    np.testing.assert_allclose(filled.loc[covered(filled, [outage]), "units"], units[22:30].mean())


def test_outages_parse_refuse_and_round_trip() -> None:
    outages = [GAP, Outage.parse("2024-06-01", "2024-06-03", "B")]
    assert loads(dumps(outages)) == outages
    assert loads(dumps([*outages, GAP])) == outages  # duplicates collapse
    assert loads(None) == []
    with pytest.raises(OutageError, match="last date is before the first"):
        Outage.parse("2024-05-02", "2024-05-01")
    with pytest.raises(OutageError, match="expected YYYY-MM-DD"):
        Outage.parse("yesterday", "2024-05-01")
    with pytest.raises(OutageError, match="not times"):
        Outage.parse("2024-05-01T10:00", "2024-05-02")
    for first, last in (("01/03/2025", "01/05/2025"), ("2025", "2025"), ("20250301", "20250302")):
        with pytest.raises(OutageError, match="expected YYYY-MM-DD"):
            Outage.parse(first, last)
    for first, last in (
        ("2262-04-11", "2262-04-12"),
        ("1677-09-21", "1677-09-22"),
        ("1899-12-31", "1900-01-01"),
    ):
        with pytest.raises(OutageError, match="between 1900-01-01 and 2199-12-31"):
            Outage.parse(first, last)


def test_the_lake_keeps_outages_through_uploads_and_per_tenant(tmp_path: Path) -> None:
    lake = SalesLake(tmp_path)
    sales = _daily()
    for tenant in ("shop", "other"):
        lake.upsert(tenant, sales.drop(columns="tenant_id"), "upload.csv")
    assert lake.update_outages("shop", lambda _: [GAP]) == []
    assert lake.outages("shop") == [GAP]
    assert lake.outages("other") == []  # another tenant's file is not touched
    pd.testing.assert_frame_equal(lake.read("shop"), lake.read("other").assign(tenant_id="shop"))
    more = sales[sales["date"] > "2024-05-20"].drop(columns="tenant_id").assign(units=1.0)
    lake.upsert("shop", more, "later.csv")
    assert lake.outages("shop") == [GAP]  # an upload rewrites the file and keeps the list
    assert lake.frequency("shop") == "D"
    # a change that raises, or changes nothing, leaves the file as it was
    stamp = lake.path("shop").stat().st_mtime_ns

    def refuse(_: list[Outage]) -> list[Outage]:
        raise OutageError("refused")

    with pytest.raises(OutageError):
        lake.update_outages("shop", refuse)
    assert lake.update_outages("shop", lambda marked: marked) == [GAP]
    assert lake.path("shop").stat().st_mtime_ns == stamp
    assert lake.outages("shop") == [GAP]
    lake.update_outages("shop", lambda _: [])
    assert lake.outages("shop") == []


def test_evaluation_leaves_the_outage_out_of_every_score() -> None:
    """A member scored against made-up zeros would look bad for what it could not know."""
    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    sales = pd.DataFrame({"store_id": "A", "sku": "x", "date": dates, "units": 20.0})
    cutoffs = [pd.Timestamp("2024-03-31"), pd.Timestamp("2024-04-14")]
    a = scaled_backtest(sales, dict.fromkeys(cutoffs, 1.1), "a", 14)
    lost = Outage(pd.Timestamp("2024-04-03"), pd.Timestamp("2024-04-09"))
    a.loc[covered(a, [lost]), "actual"] = 0.0  # what the zero-filled truth held in the outage
    blind = evaluate(sales, "D", 14, Q, {"a": a}, max_wape_ratio=1.0)
    seen = evaluate(sales, "D", 14, Q, {"a": a}, max_wape_ratio=1.0, outages=[lost])
    assert blind.metrics["ensemble"]["wape"] > 0.4
    assert seen.metrics["ensemble"]["wape"] == pytest.approx(0.1, abs=1e-4)
    assert not covered(seen.backtest, [lost]).any()
    everything = Outage(pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-28"))
    with pytest.raises(OrderNimbusError, match="every backtest period falls inside a marked outage"):
        evaluate(sales, "D", 14, Q, {"a": a}, max_wape_ratio=1.0, outages=[everything])


@pytest.mark.parametrize("model", ["seasonal_naive", "autoets"])
def test_an_unmarked_gap_across_a_cutoff_keeps_its_backtest_window(model: str) -> None:
    """Forecasts start at the cutoff, not after the last record before it; the window used to vanish."""
    from models.backtest import backtest, cutoffs
    from models.naive import SeasonalNaive
    from models.statistical import AutoETSForecaster

    sales = _daily()  # April missing from every series, and nobody marked it
    end = sales["date"].max()
    windows = cutoffs(end, 14, 3, "D", first=sales["date"].min())
    assert GAP.first <= windows[0] <= GAP.last  # the earliest cutoff falls in the gap
    make = (
        (lambda: SeasonalNaive(lag=7)) if model == "seasonal_naive" else (lambda: AutoETSForecaster(n_jobs=1))
    )
    frame = backtest(make, sales, "D", 14, 3, Q)
    assert sorted(frame["window"].unique()) == windows
    first = frame[frame["window"] == windows[0]]
    assert len(first) == 4 * 14
    assert first["target_date"].min() == windows[0] + pd.Timedelta(days=1)
