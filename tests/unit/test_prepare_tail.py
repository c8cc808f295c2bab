"""The Prepare step sends each member as much history as its backtest read: the shipped forecast is
the one the backtest scored.

Found by a hunt: the tail was 500 days, ARIMA's MSTL needs two years to carry the year, and the
served ARIMA forecast a December-peaking tenant at 42 % of what its full history gave."""

from __future__ import annotations

import pandas as pd
import pytest
from realcuts import store_item_cut

from models.statistical import AutoARIMAForecaster, AutoETSForecaster
from models.xgboost import GlobalXGBoost
from pipelines.steps.prepare import tail_periods

Q = (0.1, 0.5, 0.9)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: AutoARIMAForecaster(n_jobs=1),
        lambda: AutoETSForecaster(n_jobs=1),
        lambda: GlobalXGBoost(horizon=28, quantiles=Q, n_estimators=20),
    ],
    ids=["arima", "autoets", "xgboost"],
)
def test_a_forecast_from_the_prepared_tail_is_the_forecast_from_all_the_history(factory) -> None:
    sales = store_item_cut(stores=1, items=2, since="2015-01-01")  # three years of days
    model = factory().fit(sales, "D")
    tail = sales[sales["date"] > sales["date"].max() - pd.Timedelta(days=tail_periods("D"))]
    assert tail["date"].nunique() < sales["date"].nunique()
    pd.testing.assert_frame_equal(model.predict(tail, 28, Q), model.predict(sales, 28, Q))


def test_the_tail_covers_the_longest_window_of_every_local_model() -> None:
    for freq in ("D", "W-SUN"):
        for model in (AutoARIMAForecaster(), AutoETSForecaster()):
            assert tail_periods(freq) >= model.default_window(freq)
    assert tail_periods("D") >= 2 * 364  # MSTL's year
