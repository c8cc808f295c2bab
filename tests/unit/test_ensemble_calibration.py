"""The evaluate step's blend on backtests: late-starting series, and the window that calibrates intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.evaluation import evaluate

Q = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004  # standard normal 0.9 quantile
HORIZON = 14


def _sales(series: int, days: int, late: int) -> pd.DataFrame:
    """Daily sales of ``series`` series; the last ``late`` of them start 20 days before the end."""
    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = []
    for i in range(series):
        start = days - 20 if i >= series - late else 0
        frames.append(
            pd.DataFrame(
                {
                    "store_id": "1",
                    "sku": f"s{i:02d}",
                    "date": dates[start:],
                    "units": rng.poisson(20, days - start),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype({"units": float})


def _member(sales: pd.DataFrame, cutoffs: dict[pd.Timestamp, float], seed: int) -> pd.DataFrame:
    """A backtest whose p10/p90 are N(20, 5) quantiles; actuals drawn with each window's spread."""
    rng = np.random.default_rng(seed)
    rows = []
    for cutoff, spread in cutoffs.items():
        started = sales.loc[sales["date"] <= cutoff, ["store_id", "sku"]]
        for store, sku in started.drop_duplicates().itertuples(index=False):
            for h in range(1, HORIZON + 1):
                rows.append(
                    {
                        "store_id": store,
                        "sku": sku,
                        "target_date": cutoff + pd.Timedelta(days=h),
                        "window": cutoff,
                        "horizon_day": h,
                        "actual": max(0.0, 20 + spread * rng.standard_normal()),
                        "mean": 20.0,
                        "p10": 20 - Z90 * 5,
                        "p50": 20.0,
                        "p90": 20 + Z90 * 5,
                    }
                )
    return pd.DataFrame(rows)


def test_late_series_blend_with_pooled_weights_and_the_newest_window_sets_the_interval_scale() -> None:
    sales = _sales(series=40, days=200, late=4)
    end = sales["date"].max()
    older, newest = end - pd.Timedelta(days=2 * HORIZON), end - pd.Timedelta(days=HORIZON)
    # the older window's model was over-confident (actuals spread 4x its intervals), the newest one's
    # intervals are right: the scale must follow the newest, not widen every interval
    windows = {older: 20.0, newest: 5.0}
    members = {"a": _member(sales, windows, 1), "b": _member(sales, windows, 2)}
    assert len(members["a"][members["a"]["window"] == newest]) > len(
        members["a"][members["a"]["window"] == older]
    )

    result = evaluate(sales, "D", HORIZON, Q, members, max_wape_ratio=10.0)

    blend = result.backtest[result.backtest["model"] == "ensemble"]
    assert len(blend) == len(members["a"])
    assert not blend[["p10", "p50", "p90"]].isna().any().any()  # late starters are weighted too
    assert np.isfinite(result.metrics["ensemble"]["wape"])
    for side in ("lower", "upper"):
        assert 0.8 <= result.interval_scale[side] <= 1.25, result.interval_scale
    newest_rows = blend[blend["window"] == newest]
    covered = (
        (newest_rows["actual"] >= newest_rows["p10"]) & (newest_rows["actual"] <= newest_rows["p90"])
    ).mean()
    assert 0.74 <= covered <= 0.86


def test_each_quantile_leans_on_the_member_whose_quantile_was_best() -> None:
    """Member a has the sharper median, member b the right tails: p50 follows a, p10/p90 follow b."""
    sales = _sales(series=40, days=200, late=0)
    end = sales["date"].max()
    windows = [end - pd.Timedelta(days=2 * HORIZON), end - pd.Timedelta(days=HORIZON)]
    rng = np.random.default_rng(11)
    base = _member(sales, dict.fromkeys(windows, 5.0), 1)
    noise = rng.standard_normal(len(base))
    a = base.assign(p10=base["p50"] - 0.5, p90=base["p50"] + 0.5)  # right centre, intervals far too tight
    b = base.assign(p50=base["p50"] + 4 * noise, mean=base["mean"] + 4 * noise)  # noisy centre, right tails

    result = evaluate(sales, "D", HORIZON, Q, {"a": a, "b": b}, max_wape_ratio=10.0)

    tails = result.weighting.tails
    for cluster, weights in result.weighting.clusters.items():
        if cluster not in ("short", "turning"):  # equal weights: no evidence either way
            assert weights["a"] > weights["b"], (cluster, weights)
            assert tails[0.1][cluster]["b"] > tails[0.1][cluster]["a"], tails[0.1]
            assert tails[0.9][cluster]["b"] > tails[0.9][cluster]["a"], tails[0.9]
    blend = result.backtest[result.backtest["model"] == "ensemble"]
    best = min(pinball_of(a, 0.1), pinball_of(b, 0.1))
    unscaled = blend["p50"] - (blend["p50"] - blend["p10"]) / result.interval_scale["lower"]
    assert pinball_of(blend.assign(p10=unscaled), 0.1) <= best + 1e-9
    assert (blend["p10"] <= blend["p50"]).all()
    assert (blend["p50"] <= blend["p90"]).all()


def pinball_of(frame: pd.DataFrame, q: float) -> float:
    diff = frame["actual"].to_numpy() - frame[f"p{round(q * 100)}"].to_numpy()
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def test_a_sparse_old_series_is_not_short_and_young_series_learn_their_own_weights() -> None:
    """Lengths count periods since the first sale; series young at their cutoff form the short cluster."""
    from models.ensemble import series_profile

    sales = _sales(series=40, days=200, late=0)
    sparse = sales[(sales["sku"] == "s00") & (sales["date"].dt.day % 10 == 0)]  # one row in ten days
    sales = pd.concat([sales[sales["sku"] != "s00"], sparse], ignore_index=True)
    profile = series_profile(sales, 28)
    assert len(sparse) < 20
    assert profile.loc[("1", "s00"), "length"] == (sales["date"].max() - sparse["date"].min()).days + 1

    # 16 new products launched 10 days before the older window: member b reads them right, a does not
    new = _sales(series=16, days=40, late=0).assign(sku=lambda f: "new" + f["sku"])
    new["date"] += sales["date"].max() - new["date"].max()
    sales = pd.concat([sales, new], ignore_index=True)
    end = sales["date"].max()
    windows = {end - pd.Timedelta(days=2 * HORIZON): 5.0, end - pd.Timedelta(days=HORIZON): 5.0}
    truth = _member(sales, windows, 1)
    rng = np.random.default_rng(5)
    young = truth["sku"].str.startswith("new").to_numpy()
    a_off = np.where(young, 15.0, 1.0) * rng.standard_normal(len(truth))
    b_off = np.where(young, 1.0, 15.0) * rng.standard_normal(len(truth))
    a = truth.assign(p50=truth["actual"] + a_off, mean=truth["actual"] + a_off)
    b = truth.assign(p50=truth["actual"] + b_off, mean=truth["actual"] + b_off)

    result = evaluate(sales, "D", HORIZON, Q, {"a": a, "b": b}, max_wape_ratio=10.0)

    weighting = result.weighting
    assert weighting.short_learned
    assert weighting.clusters["short"]["b"] > weighting.clusters["short"]["a"]
    assert all(w["a"] > w["b"] for c, w in weighting.clusters.items() if c not in ("short", "turning"))
    table = weighting.series_weights(sales[sales["date"] <= end - pd.Timedelta(days=15)])  # new: 25 days
    assert (table.loc[table.index.get_level_values("sku").str.startswith("new"), "cluster"] == "short").all()
    assert (table.loc[~table.index.get_level_values("sku").str.startswith("new"), "cluster"] != "short").all()


def test_the_interval_scale_is_dropped_when_it_would_not_have_paid_one_window_back() -> None:
    """Window-to-window swings: a scale fitted on one window must beat no scale on the next to be kept."""
    from models.ensemble import choose_interval_scale

    sales = _sales(series=40, days=200, late=0)
    end = sales["date"].max()
    w1, w2, w3 = (end - pd.Timedelta(days=k * HORIZON) for k in (3, 2, 1))
    swinging = _member(sales, {w1: 5.0, w2: 15.0, w3: 5.0}, 1)  # w2's spread would widen w3 too much
    scale, check = choose_interval_scale(swinging, Q)
    assert check["checked"]
    assert not check["kept"]
    assert scale == {"lower": 1.0, "upper": 1.0}
    assert check["pinball_scaled"] > check["pinball_unscaled"]

    steady = _member(sales, {w1: 10.0, w2: 10.0, w3: 10.0}, 2)  # intervals half as wide as they should be
    scale, check = choose_interval_scale(steady, Q)
    assert check["kept"]
    assert scale["lower"] > 1.5
    assert scale["upper"] > 1.5


def test_a_blend_that_loses_to_the_best_member_in_any_window_is_not_chosen() -> None:
    """A blend that wins the sum through one window's lucky cancellation but loses the other window."""
    from models.ensemble import best_weights

    actual = np.full(20, 10.0)
    windows = np.repeat(np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]"), 10)
    a = np.r_[np.full(10, 12.0), np.full(10, 10.5)]  # off by 2, then by 0.5
    b = np.r_[np.full(10, 8.0), np.full(10, 14.0)]  # cancels a's error in the first window only
    preds = np.column_stack([a, b])
    blended = best_weights(preds, actual)
    assert 0 < blended[1] < 1  # on the sum, the half-half blend beats a (22.5 against 25)

    guarded = best_weights(preds, actual, windows=windows)
    assert guarded.tolist() == [1.0, 0.0]

    # a blend that wins in every window is kept
    steady = np.column_stack([a, np.r_[np.full(10, 8.0), np.full(10, 9.5)]])
    kept = best_weights(steady, actual, windows=windows)
    assert 0 < kept[1] < 1
    loss = np.abs(actual - steady @ kept)
    assert loss[:10].sum() < np.abs(actual - a)[:10].sum()
    assert loss[10:].sum() <= np.abs(actual - a)[10:].sum()


def test_a_quantile_whose_own_weights_lost_one_window_back_takes_the_medians_weights() -> None:
    """b's tails win the two older windows; its p90 then overshoots the newest by 30 units.

    The full fit still leans p90 on b (b leads the three windows' sum and its blends lose one window
    each), so only the check one window back, weights fitted on the older windows and scored on the
    newest, can see that b's p90 does not carry over. p10, right in every window, keeps its weights.
    """
    from models.ensemble import Weighting
    from models.evaluation import check_tails, fit_ensemble

    sales = _sales(series=40, days=200, late=0)
    end = sales["date"].max()
    w1, w2, w3 = (end - pd.Timedelta(days=k * HORIZON) for k in (3, 2, 1))
    base = _member(sales, {w1: 5.0, w2: 5.0, w3: 5.0}, 1)
    noise = np.random.default_rng(13).standard_normal(len(base))
    a = base.assign(p10=base["p50"] - 0.5, p90=base["p50"] + 0.5)  # right centre, intervals far too tight
    b = base.assign(p50=base["p50"] + 4 * noise, mean=base["mean"] + 4 * noise)
    b.loc[b["window"] == w3, "p90"] += 30.0
    members = {"a": a, "b": b}

    check = check_tails(sales, "D", HORIZON, Q, members)
    assert check[0.1]["kept"]
    assert check[0.1]["own_weights"] < check[0.1]["median_weights"]
    assert not check[0.9]["kept"]
    assert check[0.9]["own_weights"] > check[0.9]["median_weights"]
    assert check[0.9]["window"] == str(w3.date())

    result = evaluate(sales, "D", HORIZON, Q, members, max_wape_ratio=10.0)
    weighting = result.weighting
    assert set(weighting.tails) == {0.1}
    for cluster, weights in weighting.clusters.items():
        assert weighting.table(0.9)[cluster] == weights  # p90 blends with the median's weights
    assert weighting.summary()["tail_check"]["p90"]["kept"] is False
    assert Weighting.from_json(weighting.to_json()).tail_check == weighting.tail_check

    unchecked = fit_ensemble(sales, "D", HORIZON, Q, members, tail_check=False)[0]
    assert 0.9 in unchecked.tails
    assert any(unchecked.tails[0.9][c]["b"] > w["b"] for c, w in unchecked.clusters.items())
