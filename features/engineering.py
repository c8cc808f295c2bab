"""Pure, vectorised feature transforms for daily and weekly retail series.

The sales are laid out once as a dense (period x series) matrix, so every lag and window statistic
is one numpy pass over all series at once (``features.rolling``), then the cells of each series are
gathered into a long frame, series-major. A target feature at period ``t`` only uses the target up
to ``t - 1`` (everything is shifted by one period first), so a feature row is exactly what was
knowable the morning of its own date: the point-in-time rule that makes the offline store safe for
training. Calendar, promotion and numeric covariates are *known-future* (AutoGluon's term): they
describe the target period itself. Prices observed with sales are not known ahead (a price on a
day exists because something sold), so by default the price of a period is the last one seen
*before* it.

Every feature of a period depends on at most ``spec.lookback`` earlier periods (counts such as
periods-since-sale are capped there), which is what lets :func:`build_features` recompute only
the tail of the history after an upload (``since=``) and get exactly the values a full run gives.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.calendar import calendar_columns, calendar_frame, country_code
from features.frequency import base, pandas_alias, season_length, year_length
from features.rolling import forward_fill, last_index, rolling_extreme, rolling_mean, rolling_mean_std, shift

# Bump when a transform changes what it computes: the version of every spec changes with it, so the
# feature store recomputes everything instead of mixing old and new values.
REVISION = 2
KEYS = ("store_id", "sku")
HIERARCHY = ("category", "department")  # string columns of the series turned into categorical codes
PRICE = "unit_price"
PRICE_FEATURES = ("relative_price", "price_change", "promo_price_cut")
PROMO_CUT = 0.9  # a price at most 90 % of its recent mean is treated as a promotion
_NOT_COVARIATES = {"tenant_id", "store_id", "sku", "date", "units", "revenue", "channel"}


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute; its ``version`` tags feature records and model artifacts."""

    freq: str = "D"
    lags: tuple[int, ...] = (*range(1, 29), 364)
    windows: tuple[int, ...] = (7, 28, 91)
    stats: tuple[str, ...] = ("mean", "std", "min", "max")
    country: str | None = "US"
    covariates: tuple[str, ...] = field(default=())
    price_known_ahead: bool = False  # True for a price list known in advance (not derived from sales)
    store_countries: tuple[tuple[str, str], ...] = ()  # store_id -> ISO country, when ids don't say

    @classmethod
    def for_freq(cls, freq: str, country: str | None = "US") -> FeatureSpec:
        """Lags of the last four seasons plus the seasonal-year lag; windows of 1, 4 and 13 seasons.

        Daily: lags 1-28 and 364 (so 7/14/28/364 are all there), windows 7/28/91 days. Weekly: lags
        1-13, 26 and 52 (the same quarter, half year and year), windows 4/13/52 weeks.
        """
        season, year = season_length(freq), year_length(freq)
        if base(freq) == "W":
            return cls(
                freq=freq, lags=(*range(1, 14), year // 2, year), windows=(4, 13, year), country=country
            )
        return cls(
            freq=freq,
            lags=(*range(1, 4 * season + 1), year),
            windows=(season, 4 * season, 13 * season),
            country=country,
        )

    @property
    def version(self) -> str:
        """Parameters plus ``REVISION``: stored features of another version are recomputed, not mixed."""
        text = repr(
            (
                REVISION,
                self.freq,
                self.lags,
                self.windows,
                self.stats,
                self.country,
                self.covariates,
                self.price_known_ahead,
                self.store_countries,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def lookback(self) -> int:
        """Periods of history any feature of a period may depend on (counts are capped here)."""
        return max(*self.lags, *self.windows)

    @property
    def target_features(self) -> list[str]:
        cols = [f"lag_{k}" for k in self.lags]
        cols += [f"roll_{s}_{w}" for w in self.windows for s in self.stats]
        return [*cols, "periods_since_sale", "zero_run", "zero_share"]

    @property
    def calendar_features(self) -> list[str]:
        return list(calendar_columns(self.freq))

    def store_country(self, store_id: str) -> str | None:
        explicit = dict(self.store_countries)
        if store_id in explicit:
            return explicit[store_id]
        return country_code(store_id) or self.country


def to_wide(sales: pd.DataFrame, freq: str, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Units as a dense (period x series) matrix: NaN before a series starts, 0 for a missing period after.

    Missing periods after a series' first sale are no-sale periods (retail exports omit zero rows).
    """
    end = pd.Timestamp(end) if end is not None else sales["date"].max()
    index = pd.date_range(sales["date"].min(), end, freq=pandas_alias(freq))
    wide = sales.pivot_table(index="date", columns=["store_id", "sku"], values="units", aggfunc="sum")
    wide = wide.reindex(index)
    started = wide.notna().cumsum() > 0
    return wide.fillna(0.0).where(started).astype("float32")


@dataclass(frozen=True)
class _Grid:
    """The dense layout: series, the periods computed (a window of them with ``since``), cell positions."""

    series: pd.MultiIndex  # sorted (store_id, sku)
    dates: pd.DatetimeIndex  # periods of the computed window, future periods included
    observed: int  # number of leading periods in ``dates`` that are history (the rest are the horizon)
    start: np.ndarray  # per series: first row of ``dates`` in which the series exists
    out_from: int  # first row of ``dates`` that is returned

    @classmethod
    def build(
        cls,
        sales: pd.DataFrame,
        spec: FeatureSpec,
        horizon: int,
        since: pd.Timestamp | None,
        end: pd.Timestamp | None = None,
    ) -> _Grid:
        alias = pandas_alias(spec.freq)
        full = pd.date_range(sales["date"].min(), end if end is not None else sales["date"].max(), freq=alias)
        first = sales.groupby(list(KEYS), sort=True)["date"].min()
        skip = 0
        if since is not None:
            out = int(full.searchsorted(pd.Timestamp(since)))
            skip = max(0, out - spec.lookback)
        dates = pd.DatetimeIndex(full[skip:])
        if horizon:
            dates = pd.DatetimeIndex(
                dates.append(pd.date_range(full[-1], periods=horizon + 1, freq=alias)[1:])
            )
        start = np.maximum(full.searchsorted(first.to_numpy()) - skip, 0)
        out_from = 0 if since is None else int(dates.searchsorted(pd.Timestamp(since)))
        keys = first.index
        series = pd.MultiIndex.from_arrays(
            [keys.get_level_values(0), keys.get_level_values(1)], names=list(KEYS)
        )
        return cls(series, dates, len(full) - skip, start, out_from)

    @property
    def origin(self) -> int:
        """Absolute number of the first period (periods since 1970-01-01 in this frequency)."""
        days = int(self.dates[0].value // 86_400_000_000_000)
        return days if len(self.dates) < 2 or (self.dates[1] - self.dates[0]).days == 1 else days // 7

    def dense(self, sales: pd.DataFrame, column: str) -> np.ndarray:
        """``column`` as a (series x period) float64 matrix, NaN where the frame has no row."""
        out = np.full((len(self.series), len(self.dates)), np.nan)
        periods = self.dates.get_indexer(pd.DatetimeIndex(sales["date"]))
        series = self.series.get_indexer(pd.MultiIndex.from_arrays([sales["store_id"], sales["sku"]]))
        ok = periods >= 0
        out[series[ok], periods[ok]] = pd.to_numeric(sales[column], errors="coerce").to_numpy(dtype=float)[ok]
        return out

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mask of the returned cells, and their (series, period); series-major, periods ascending."""
        idx = np.arange(len(self.dates))[None, :]
        mask = idx >= np.maximum(self.start, self.out_from)[:, None]
        series, period = np.nonzero(mask)
        return mask, series, period


def build_features(
    sales: pd.DataFrame,
    spec: FeatureSpec,
    horizon: int = 0,
    end: pd.Timestamp | None = None,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Long feature frame: one row per series x period (plus ``horizon`` future periods with NaN units).

    Columns: store_id, sku, date, units, target features, calendar features, known-future covariates
    (price features, promotion, numeric extras: carried forward into the future periods), and the
    hierarchy as categorical codes. Rows are series-major and contiguous per series.

    ``end`` extends (or cuts) the history to that period: series without sales up to it get zeros,
    as when the frame holds other series that sold later (a chunk of a tenant's series).

    ``since`` returns only periods from ``since`` on, computed from the ``spec.lookback`` periods
    before it: the values equal those of a full run (``sales`` must still hold every series' first
    row, which is how a series' start is known; older rows are not read past that).
    """
    if end is not None:
        sales = sales[sales["date"] <= pd.Timestamp(end)]
    grid = _Grid.build(sales, spec, horizon, since, end)
    if since is not None:
        sales = sales[sales["date"] >= grid.dates[0]]
    units = grid.dense(sales, "units")
    idx = np.arange(len(grid.dates))[None, :]
    started = idx >= grid.start[:, None]
    units = np.where(started & (idx < grid.observed) & np.isnan(units), 0.0, units)
    mask, series, period = grid.cells()
    out: dict[str, np.ndarray] = {
        "store_id": grid.series.get_level_values(0).to_numpy()[series],
        "sku": grid.series.get_level_values(1).to_numpy()[series],
        "date": grid.dates.to_numpy()[period],
        "units": units[mask].astype("float32"),
    }
    flat = series * len(grid.dates) + period
    for k in spec.lags:  # gathered straight from the matrix: no shifted copy per lag
        out[f"lag_{k}"] = np.where(period >= k, units.ravel()[np.maximum(flat - k, 0)], np.nan).astype(
            "float32"
        )
    for name, matrix in target_matrices(units, spec, grid.origin, lags=False):
        out[name] = matrix[mask].astype("float32")
    out.update(_calendar(grid, spec, series, period))
    out.update(_covariates(grid, sales, spec, mask))
    out.update(_hierarchy(grid, sales, series))
    return pd.DataFrame(out, copy=False)


def target_matrices(
    units: np.ndarray, spec: FeatureSpec, origin: int = 0, lags: bool = True
) -> Iterator[tuple[str, np.ndarray]]:
    """Lags, window statistics and intermittency features, each a matrix shaped like ``units``.

    ``origin`` is the absolute period number of row 0 (see :func:`features.rolling.window_sum`).
    A generator, so a caller that gathers each matrix into its long column holds one at a time.
    """
    for k in spec.lags if lags else ():
        yield f"lag_{k}", shift(units, k)
    past = shift(units, 1)
    for w in spec.windows:
        mean, std = rolling_mean_std(past, w, origin)
        for stat in spec.stats:
            value = {"mean": mean, "std": std}.get(stat)
            yield f"roll_{stat}_{w}", value if value is not None else rolling_extreme(past, w, stat)
        del mean, std
    known = ~np.isnan(past)
    idx = np.arange(units.shape[1])[None, :]
    first = np.argmax(~np.isnan(units), axis=1)[:, None]
    last_sale = last_index(known & (past > 0))
    since_sale = idx - np.where(last_sale >= 0, last_sale, first)
    yield "periods_since_sale", np.where(known, np.minimum(since_sale, spec.lookback), np.nan)
    zero_run = idx - last_index(~(known & (past == 0)))
    yield "zero_run", np.where(known, np.minimum(zero_run, spec.lookback), np.nan)
    zero = np.where(known, (past == 0).astype(float), np.nan)
    yield "zero_share", rolling_mean(zero, spec.windows[1], origin)


def calendar_features(dates: pd.DatetimeIndex, spec: FeatureSpec, country: str | None = None) -> pd.DataFrame:
    """Known-future calendar covariates of each period for a store in ``country`` (default: the spec's)."""
    return calendar_frame(pd.DatetimeIndex(dates), spec.freq, country or spec.country)


def _calendar(
    grid: _Grid, spec: FeatureSpec, series: np.ndarray, period: np.ndarray
) -> dict[str, np.ndarray]:
    stores = pd.Series(grid.series.get_level_values(0).astype(str))
    by_store = {store: spec.store_country(store) for store in stores.unique()}
    codes, uniques = pd.factorize(stores.map(by_store).astype(object), use_na_sentinel=False)
    frames = [calendar_frame(grid.dates, spec.freq, c) for c in uniques]
    flat = codes[series] * len(grid.dates) + period  # row of the (country, period) table
    table = np.concatenate([f.to_numpy() for f in frames])
    return {name: table[flat, j] for j, name in enumerate(frames[0].columns)}


def _covariates(
    grid: _Grid, sales: pd.DataFrame, spec: FeatureSpec, mask: np.ndarray
) -> dict[str, np.ndarray]:
    """Known-future numeric columns carried forward ``lookback`` periods, and the price features."""
    out: dict[str, np.ndarray] = {}
    for name in covariate_columns(sales):
        if name == PRICE:
            out.update(_price(grid, grid.dense(sales, name), spec, mask))
            continue
        filled = forward_fill(grid.dense(sales, name), spec.lookback)
        out[covariate_outputs([name], spec)[0]] = filled[mask].astype("float32")
    return out


def covariate_outputs(names: Sequence[str], spec: FeatureSpec) -> list[str]:
    """The feature columns that sales covariates ``names`` become (a price becomes the price features)."""
    taken = {*spec.target_features, *spec.calendar_features, *PRICE_FEATURES, "store_code", "sku_code"}
    out: list[str] = []
    for name in names:
        out += [PRICE, *PRICE_FEATURES] if name == PRICE else [f"cov_{name}" if name in taken else name]
    return out


def _price(grid: _Grid, price: np.ndarray, spec: FeatureSpec, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Price in effect, its ratio to the mean of the previous ``windows[1]`` periods, change, cut flag."""
    seen = price if spec.price_known_ahead else shift(price, 1)
    current = forward_fill(seen, price_carry_limit(spec))
    reference = rolling_mean(shift(current, 1), spec.windows[1], grid.origin)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = current / reference
        change = current / shift(current, 1) - 1.0
    cut = np.where(np.isnan(relative), np.nan, (relative <= PROMO_CUT).astype(float))
    values = {PRICE: current, "relative_price": relative, "price_change": change, "promo_price_cut": cut}
    return {name: np.where(np.isfinite(m), m, np.nan)[mask].astype("float32") for name, m in values.items()}


def price_carry_limit(spec: FeatureSpec) -> int:
    """How many periods a price is carried forward: as far as keeps every price feature in ``lookback``.

    The relative price of ``t`` averages the prices of the ``windows[1]`` periods before it, each
    carried from at most this far back, so the sum stays within the lookback.
    """
    return spec.lookback - spec.windows[1] - 1


def _hierarchy(grid: _Grid, sales: pd.DataFrame, series: np.ndarray) -> dict[str, np.ndarray]:
    out = {
        "store_code": stable_code(pd.Series(grid.series.get_level_values(0)))[series],
        "sku_code": stable_code(pd.Series(grid.series.get_level_values(1)))[series],
    }
    for name in HIERARCHY:
        if name in sales.columns:
            per_series = sales.groupby(list(KEYS), sort=True)[name].first().reindex(grid.series)
            out[f"{name}_code"] = stable_code(per_series.fillna("").astype(str).reset_index(drop=True))[
                series
            ]
    return out


def covariate_columns(sales: pd.DataFrame) -> list[str]:
    """Numeric columns of the sales frame other than the key and the target (booleans included)."""
    return [
        c
        for c in sales.columns
        if c not in _NOT_COVARIATES and not str(c).startswith("_") and pd.api.types.is_numeric_dtype(sales[c])
    ]


def stable_code(ids: pd.Series) -> np.ndarray:
    """A per-id integer that is the same in every process and every chunk of series (CRC32)."""
    uniques = pd.unique(ids)
    codes = {u: zlib.crc32(str(u).encode()) % (1 << 24) for u in uniques}
    return ids.map(codes).to_numpy(dtype="int32")


def horizon_dates(last: pd.Timestamp, horizon: int, freq: str) -> pd.DatetimeIndex:
    """The ``horizon`` periods after ``last``."""
    return pd.date_range(last, periods=horizon + 1, freq=pandas_alias(freq))[1:]


def feature_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    skip = {"store_id", "sku", "date", "units", "tenant_id", *exclude}
    return [c for c in frame.columns if c not in skip]
