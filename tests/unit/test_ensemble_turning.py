"""Series whose season turns within the horizon (``models.ensemble.turning_rows``) get their own weights.

Found by a hunt with odd tenants: a Christmas product, silent from January to November, was forecast at
AutoETS's flat zero in December, because the low-volume cluster's backtest windows (August to November)
preferred the member that cannot see the year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.ensemble import TURNING, Weighting, horizon_frame, series_profile, turning_rows

HORIZON = 28


def _tenant() -> pd.DataFrame:
    """Three years to the end of November: 20 steady products and 14 that sell only in December."""
    rng = np.random.default_rng(5)
    dates = pd.date_range("2021-11-01", "2024-11-30", freq="D")
    december = (dates.month == 12) & (dates.day <= 24)
    frames = []
    for i in range(34):
        christmas = i >= 20
        units = rng.poisson(np.where(december, 25.0, 0.0)) if christmas else rng.poisson(12.0, len(dates))
        frames.append(
            pd.DataFrame(
                {
                    "store_id": "S",
                    "sku": f"{'XMAS' if christmas else 'ITEM'}{i}",
                    "date": dates,
                    "units": units,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype({"units": float})


def _backtests(sales: pd.DataFrame, cutoffs: list[str]) -> dict[str, pd.DataFrame]:
    """Two members' backtests: 'yearly' copies last year's sales (sees the season, noisy), 'flat'
    forecasts the last 28 days' mean (blind to the year, less noisy on steady products)."""
    by_series = sales.set_index(["store_id", "sku", "date"])["units"].sort_index()
    out: dict[str, list[pd.DataFrame]] = {"yearly": [], "flat": []}
    for cutoff in map(pd.Timestamp, cutoffs):
        targets = pd.date_range(cutoff + pd.Timedelta(days=1), periods=HORIZON, freq="D")
        recent = sales[(sales["date"] > cutoff - pd.Timedelta(days=28)) & (sales["date"] <= cutoff)]
        level = recent.groupby(["store_id", "sku"])["units"].mean()
        for store, sku, mean in zip(
            level.index.get_level_values(0), level.index.get_level_values(1), level.to_numpy(), strict=True
        ):
            actual = by_series.loc[(store, sku)].reindex(targets).to_numpy()
            year = by_series.loc[(store, sku)].reindex(targets - pd.Timedelta(days=364)).to_numpy()
            base = pd.DataFrame(
                {"store_id": store, "sku": sku, "target_date": targets, "window": cutoff, "actual": actual}
            ).assign(horizon_day=np.arange(1, HORIZON + 1))
            for name, p50 in (("yearly", year), ("flat", np.full(HORIZON, mean))):
                out[name].append(base.assign(mean=p50, p50=p50))
    return {n: pd.concat(f, ignore_index=True) for n, f in out.items()}


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return _tenant()


def test_a_season_arriving_is_turning_and_a_steady_product_is_not(sales: pd.DataFrame) -> None:
    frame = _backtests(sales, ["2023-11-30", "2024-08-31"])["flat"]
    turning = pd.Series(turning_rows(frame, sales, 28), index=frame.index)
    xmas = frame["sku"].str.startswith("XMAS")
    december = frame["window"] == pd.Timestamp("2023-11-30")
    assert turning[xmas & december].all()
    assert not turning[~xmas].any()
    assert not turning[xmas & ~december].any()  # August to September: silent last year and now


def test_last_year_is_read_only_up_to_the_cutoff(sales: pd.DataFrame) -> None:
    """A year back from a target more than a year ahead lands after the cutoff: an actual of the
    window, not history. Reading it would let the backtest see its own answers."""
    cutoff = pd.Timestamp("2022-11-15")
    far = pd.DataFrame(
        {
            "store_id": "S",
            "sku": "XMAS25",
            "target_date": pd.date_range(cutoff + pd.Timedelta(days=380), periods=HORIZON, freq="D"),
            "window": cutoff,
        }
    )
    assert not turning_rows(far, sales, 28).any()  # December 2023's targets: December 2022 unread
    near = far.assign(target_date=far["target_date"] - pd.Timedelta(days=364))
    assert turning_rows(near, sales, 28).all()  # December 2022's targets: December 2021 is history


def test_turning_series_take_equal_weights_when_no_backtest_window_saw_a_season_turn(
    sales: pd.DataFrame,
) -> None:
    history = sales[sales["date"] <= "2024-11-30"]
    backtests = _backtests(history, ["2024-07-04", "2024-08-01", "2024-09-01", "2024-10-01"])
    weighting = Weighting.fit(backtests, history, 28, 0)
    assert weighting.turning
    assert not weighting.turn_learned
    assert weighting.clusters[TURNING] == {"flat": 0.5, "yearly": 0.5}
    labels = weighting.labels(history, horizon=HORIZON)
    assert (labels[labels.index.get_level_values("sku").str.startswith("XMAS")] == TURNING).all()
    assert not (labels[labels.index.get_level_values("sku").str.startswith("ITEM")] == TURNING).any()
    # Without a horizon (the model card's table) nothing is turning; the steady products lean on 'flat'.
    assert not (weighting.labels(history) == TURNING).any()
    assert weighting.clusters[labels[("S", "ITEM0")]] == {"flat": 1.0, "yearly": 0.0}


def test_turning_weights_are_learnt_from_windows_where_seasons_turned(sales: pd.DataFrame) -> None:
    history = sales[sales["date"] <= "2024-11-30"]
    backtests = _backtests(history, ["2023-11-30", "2024-08-01", "2024-09-01"])
    weighting = Weighting.fit(backtests, history, 28, 0)
    assert weighting.turn_learned
    assert weighting.clusters[TURNING] == {"flat": 0.0, "yearly": 1.0}
    rows = weighting.backtest_rows(backtests["flat"], history, (0.5,))["p50"]
    december = (backtests["flat"]["window"] == pd.Timestamp("2023-11-30")) & backtests["flat"][
        "sku"
    ].str.startswith("XMAS")
    assert (rows[december.to_numpy()] == [0.0, 1.0]).all()  # members sorted: flat, yearly


def test_a_version_saved_before_the_rule_forecasts_as_it_was_approved(sales: pd.DataFrame) -> None:
    history = sales[sales["date"] <= "2024-11-30"]
    weighting = Weighting.fit(_backtests(history, ["2024-08-01", "2024-09-01"]), history, 28, 0)
    state = weighting.to_json()
    assert Weighting.from_json(state).labels(history, horizon=HORIZON).eq(TURNING).sum() == 14
    old = {k: v for k, v in state.items() if k not in ("turning", "turn_learned")}
    assert not Weighting.from_json(old).labels(history, horizon=HORIZON).eq(TURNING).any()


def test_a_sparse_export_is_profiled_and_turned_as_its_dense_form(sales: pd.DataFrame) -> None:
    """An export with no row for a day without sales is the same tenant: judged over its last rows, a
    Christmas product had December's level in August, was never intermittent, and never turned."""
    history = sales[sales["date"] <= "2024-11-30"]
    sparse = history[history["units"] != 0]
    dense_profile = series_profile(history, 28)
    judged = ["level", "zero_share"]  # the length runs from the first sale, a first row in the dense form
    pd.testing.assert_frame_equal(series_profile(sparse, 28)[judged], dense_profile[judged])
    assert (dense_profile.loc[("S", "XMAS20"), ["level", "zero_share"]] == [0.0, 1.0]).all()
    frame = horizon_frame(history, HORIZON)
    assert (turning_rows(frame, sparse, 28) == turning_rows(frame, history, 28)).all()
    assert turning_rows(frame, sparse, 28)[frame["sku"].str.startswith("XMAS").to_numpy()].all()


def _changed_products(sales: pd.DataFrame) -> pd.DataFrame:
    """The tenant plus a product delisted at the end of July (no row since, a sparse export's
    silence) and one that sold 4 a day until June and 20 since: turns in the series, not in the
    calendar."""
    rng = np.random.default_rng(6)
    dates = pd.date_range("2021-11-01", "2024-11-30", freq="D")
    units = rng.poisson(12.0, len(dates))
    delisted = pd.DataFrame({"store_id": "S", "sku": "GONE", "date": dates, "units": units})
    delisted = delisted[delisted["date"] <= "2024-07-31"]
    grown = pd.DataFrame(
        {
            "store_id": "S",
            "sku": "GROWN",
            "date": dates,
            "units": rng.poisson(np.where(dates > pd.Timestamp("2024-06-30"), 20.0, 4.0)),
        }
    )
    return pd.concat([sales, delisted, grown], ignore_index=True).astype({"units": float})


def test_a_product_that_changed_is_not_turning_unless_last_year_turned_too(sales: pd.DataFrame) -> None:
    """A delisted product, silent for four months, sold all last year: with the first rule it was
    turning, and blended the p90 of members that forecast its old level into a product that is gone."""
    history = _changed_products(sales)
    frame = horizon_frame(history, HORIZON)
    sku = frame["sku"].to_numpy()
    seasonal = turning_rows(frame, history, 28)
    first = turning_rows(frame, history, 28, seasonal=False)
    assert first[np.isin(sku, ["GONE", "GROWN"])].all()  # what the first rule saw
    assert not seasonal[np.isin(sku, ["GONE", "GROWN"])].any()
    assert (seasonal == first)[~np.isin(sku, ["GONE", "GROWN"])].all()  # Christmas still turns
    assert seasonal[np.char.startswith(sku.astype(str), "XMAS")].all()


def test_a_product_without_a_year_ago_level_is_judged_as_before(sales: pd.DataFrame) -> None:
    """Launched in December a year ago and silent since: no level a year before the cutoff to say
    whether last year turned, so the first ratio alone decides, and it turns."""
    dates = pd.date_range("2023-12-01", "2023-12-24", freq="D")
    launch = pd.DataFrame({"store_id": "S", "sku": "NEW", "date": dates, "units": 30.0})
    history = pd.concat([sales, launch], ignore_index=True)
    frame = horizon_frame(history, HORIZON)
    assert turning_rows(frame, history, 28)[frame["sku"].to_numpy() == "NEW"].all()


def test_a_version_saved_before_the_seasonal_rule_keeps_the_first(sales: pd.DataFrame) -> None:
    history = _changed_products(sales)
    weighting = Weighting.fit(_backtests(history, ["2024-08-01", "2024-09-01"]), history, 28, 0)
    assert weighting.seasonal_turns
    state = weighting.to_json()
    labels = Weighting.from_json(state).labels(history, horizon=HORIZON)
    assert labels[("S", "GONE")] != TURNING
    old = {k: v for k, v in state.items() if k != "seasonal_turns"}
    assert Weighting.from_json(old).labels(history, horizon=HORIZON)[("S", "GONE")] == TURNING
