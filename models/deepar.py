"""DeepAR (gluonts, PyTorch): one autoregressive RNN over all of a tenant's series.

Choices and why:

- **Output distribution**: negative binomial when the history is counts (retail units), Student-t
  otherwise (Walmart's weekly sales are currency). Counts may carry returns: a day whose returns
  outweigh its sales nets below zero (1.4 % of Online Retail's rows). Up to ``return_share`` (5 %)
  of such rows the history is still counts and the network learns demand, the units clipped at zero.
  Before, one negative row sent the whole tenant to Student-t, whose location sits on the typical
  day, and on an intermittent tenant that is next to nothing: on Online Retail's two newest backtest
  windows DeepAR's mean came to 7 % of the units sold, its median to 5 %. With the negative
  binomial, WAPE 0.979 -> 0.946 and 0.981 -> 0.956, pinball 3.22 -> 2.67 and 3.55 -> 3.00, p10-p90
  coverage 0.69 -> 0.88 and 0.68 -> 0.85, the mean 90 % and 76 % of the units sold
  (``benchmarks/dev_windows.py --only deepar_returns``).
  Intermittent demand that is not counts (kilograms, litres, currency: over ``intermittent_share``,
  a third, of the tenant's series-periods without a sale, ``idle_share``) would meet the same fate
  under Student-t, and the negative binomial takes only integers. It gets gluonts' implicit quantile
  network instead (Gouttes et al. 2021), which assumes no distribution and learns the demand (net
  returns clipped at zero, as for counts); its quantile function may dip below zero where demand has
  a point mass there, and the forecast's samples are clipped at zero, which restores the mass as
  exact zeros (a softplus keeping it above zero never reaches zero: its p10 of a few grams left 38 % and
  62 % of the rows below it). Online Retail's units as kilograms (each product a fixed
  0.05-2.5 kg), two newest backtest windows (``--only deepar_intermittent``): Student-t WAPE 0.979
  and 0.985, pinball 4.11 and 4.51, its mean 7 % of the kilograms sold; the quantile network
  WAPE 0.955 and 0.958, pinball 3.48 and 3.90, coverage 0.79 and 0.80, its mean 82 % and 70 %. None of the
  three sets takes this path: Online Retail is counts, Store Item and Walmart are idle 0 % and 7 % of
  their periods.
- **Covariates**: the holiday flag of each period (known ahead), the price relative to the series'
  mean price, carried forward into the horizon (the last price is the best known-ahead guess), and
  the promotion flag when the data has one; store and SKU as static categorical embeddings.
  DeepAR adds its own lagged targets and calendar time features for the frequency.
- **The tenant's season as a covariate** (``pooled_season``): a daily tenant with enough two-year
  series gets the log of its pooled week-and-year factor (``models.pooled_year``, the ARIMA member's)
  as one more covariate, known ahead on calendar dates. Without it the network meets the year only
  as last year's value (one noisy draw per day) and day-of-year features it must fit a curve over.
  On Store Item's dev windows (``benchmarks/dev_windows.py --only deepar_pooled_season``): autumn
  2015 WAPE 0.158 -> 0.126 and pinball 2.51 -> 2.12, autumn 2016 0.156 -> 0.138 and 2.66 -> 2.42,
  but the newest window (July to October 2017) 0.108 -> 0.113 and 2.61 -> 2.75. Kept for the
  autumns (the season of the evaluation window and of Christmas trade) and the mean over the three.
  Versions saved before it have no such covariate and forecast without it.
- **Training windows whose lags are real** (``training_layout``): gluonts samples training windows
  from a series' first period on and pads the missing past with zeros, so with two years of history
  and the year among the lags most windows saw last year's sales as zero, a value the forecast then
  never meets. DeepAR's median ran 11-21 % below the sales on Store Item Demand's dev windows. Now
  the model keeps four years of history and, where most series can host them, starts every window
  where its year lag is observed (else past its recent lags, else past a full context). On the two
  dev windows (``benchmarks/dev_windows.py --only deepar_lags``, 12 epochs each): WAPE 0.141 ->
  0.108 and 0.219 -> 0.111, pinball 3.01 -> 2.60 and 4.21 -> 2.64, the median's bias -11 % / -21 %
  -> -1 % / +1 %, with the same number of gradient steps. The intervals stay wide (p10-p90
  covered 0.96-0.97); the ensemble weighs each quantile on its own pinball loss. A series too young
  to host such a window (a product launched this year) samples its windows from its first period
  on (``young_series_sampler``) rather than contributing none.
- **Early stopping** on a validation window (the last ``horizon`` periods of the training data,
  which DeepAR never trains on) with the best checkpoint restored; at most ``max_epochs``.
- **Warm start** (``fit_after``): the build's final model continues the network trained at the
  earliest backtest cutoff for at most half the epochs, instead of starting from random weights.
- **Determinism**: every fit seeds Python, NumPy and torch (``lightning.seed_everything``) and
  prediction seeds torch again, so a fit and a reload predict the same samples.
- **Too young to train** (``fallbacks``): a network needs at least one series longer than the horizon
  and a few periods of context. A tenant with a few weeks of daily sales has none at its earliest
  backtest cutoff, where gluonts failed with an early-stopping error and the whole build with it.
  The member then forecasts as the seasonal naive, recorded per series as ARIMA's fallbacks are,
  and the build's final model keeps that fallback: the ensemble's weights were learnt on it, and the
  next build, with a longer history, trains the network.
- **CPU by default, the GPU when present** (``accelerator="auto"``); ``max_series`` caps how many
  series it trains on (a seeded sample) so the build stays inside its time budget on a CPU; every
  series is predicted. The training step records the sample size.

Quantiles come from ``num_samples`` sample paths (100, gluonts' default); the mean is the sample
mean. Sampling is most of DeepAR's forecast time: on Store Item Demand's newest backtest window (400
series, 90 days) 200 paths took 14.5 s and 100 took 7.0 s, for the same model's WAPE 0.129 against
0.131 and pinball 2.81 against 2.83 (``benchmarks/dev_windows.py --only deepar_samples``). 100 paths
won for the build's time budget: the extra precision of the tails is within DeepAR's own noise.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from features.engineering import FeatureSpec, calendar_features, horizon_dates, to_wide
from features.frequency import base, pandas_alias, year_length
from models.base import BaseForecaster, clean_quantiles
from models.metrics import qcol
from models.naive import SeasonalNaive
from models.pooled_year import YEAR, ahead, cover, wide_pool

log = logging.getLogger(__name__)


class DeepARForecaster(BaseForecaster):
    name: ClassVar[str] = "deepar"
    refit_in_backtest: bool = False
    cache_data: bool = True  # gluonts' cache of the transformed training data (see fit)
    # Training windows start where their lags are observed (see training_layout); off, the windows
    # start anywhere and lag the zero padding, as before (dev_windows.py --only deepar_lags).
    lag_windows: bool = True
    # The year lag where the forecasts see it but no training window can (see training_layout).
    unobserved_year: bool = True
    # The tenant's pooled week and year (models.pooled_year) as a covariate of daily tenants; off,
    # the network sees the year only through its lags and day-of-year features, as before.
    pooled_season: bool = True
    # The share of rows below zero (returns outweighing a day's sales) integer units may hold and
    # still be counts; 0 is the rule before (dev_windows.py --only deepar_returns).
    return_share: float = 0.05
    # Intermittent non-integer demand (kilograms, litres, currency; more than this share of a
    # tenant's periods without a sale) gets the implicit quantile network instead of Student-t;
    # None keeps Student-t, as before (dev_windows.py --only deepar_intermittent).
    intermittent_share: float | None = 1 / 3
    # The quantile network's output domain: None lets its quantile function dip below zero where
    # demand has a point mass there, and the forecast's samples are clipped at zero, which restores
    # the mass as exact zeros; "positive" (softplus) never reaches zero (--only deepar_intermittent).
    quantile_domain: str | None = None

    def __init__(
        self,
        *,
        horizon: int = 28,
        context_length: int | None = None,
        max_epochs: int = 12,
        batches_per_epoch: int | None = None,
        batch_size: int = 64,
        hidden_size: int = 40,
        num_layers: int = 2,
        learning_rate: float = 3e-3,
        max_series: int = 600,
        history_periods: int | None = None,
        num_samples: int = 100,
        seed: int = 7,
        country: str | None = "US",
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.params: dict[str, Any] = {
            "context_length": context_length,
            "max_epochs": max_epochs,
            "batches_per_epoch": batches_per_epoch,
            "batch_size": batch_size,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "learning_rate": learning_rate,
            "max_series": max_series,
            "history_periods": history_periods,
            "num_samples": num_samples,
            "seed": seed,
            "country": country,
        }
        self.distribution = "negative_binomial"
        self.stores: dict[str, int] = {}
        self.skus: dict[str, int] = {}
        self.covariates: list[str] = []
        self.trained_series = 0
        self.warm_started = False
        self.lags: list[int] = []
        self.min_past = 0
        self.predictor: Any = None
        self.fallbacks: dict[str, str] = {}  # "store|sku" -> reason, when no series could train the network
        self.naive: SeasonalNaive | None = None

    # --- data --------------------------------------------------------------------------
    def _history_periods(self, freq: str) -> int:
        """How many of the latest periods DeepAR keeps: four years unless set (730 before)."""
        return int(self.params["history_periods"] or 4 * year_length(freq))

    def _entries(
        self, history: pd.DataFrame, future: int, season: np.ndarray | None = None
    ) -> tuple[list[dict[str, Any]], pd.DataFrame]:
        """One gluonts entry per series; covariates extended ``future`` periods past the end.

        ``season``: the pooled season ``_describe`` already computed for this very history (training,
        ``future`` 0), so the pool's decomposition is not run twice per fit.
        """
        wide = to_wide(history, self.freq)
        periods = self._history_periods(self.freq)
        wide = wide.iloc[-periods:] if periods and len(wide) > periods else wide
        dates = pd.DatetimeIndex(wide.index)
        all_dates = pd.DatetimeIndex(
            dates.append(horizon_dates(dates[-1], future, self.freq)) if future else dates
        )
        spec = FeatureSpec.for_freq(self.freq, country=self.params["country"])
        calendar = calendar_features(all_dates, spec)
        holiday = calendar["is_holiday"].to_numpy(dtype=np.float32) if "is_holiday" in calendar else None
        price = _wide_covariate(history, "unit_price", wide, all_dates)
        promo = _wide_covariate(history, "on_promotion", wide, all_dates)
        values = wide.to_numpy(dtype=np.float32)
        if "season" not in self.covariates:
            season = None
        elif season is None:  # a history too thin to pool one now: no season (log 1)
            season = self._season(values, dates, future)
            season = np.zeros(len(all_dates), dtype=np.float32) if season is None else season
        entries = []
        for j, key in enumerate(wide.columns):
            store, sku = str(key[0]), str(key[1])
            y = values[:, j]
            first = int(np.argmax(np.isfinite(y))) if np.isfinite(y).any() else len(y) - 1
            target = np.nan_to_num(y[first:])
            if self.distribution in DEMAND:  # net returns: no demand, not negative demand
                target = np.maximum(target, 0.0)
            rows = []
            if "holiday" in self.covariates and holiday is not None:
                rows.append(holiday[first:])
            if "price" in self.covariates and price is not None:
                p = price[:, j][first:]
                mean = np.nanmean(p[: len(target)]) if np.isfinite(p[: len(target)]).any() else np.nan
                rows.append(
                    np.nan_to_num(p / mean if mean and np.isfinite(mean) else np.ones_like(p), nan=1.0)
                )
            if "promo" in self.covariates and promo is not None:
                rows.append(np.nan_to_num(promo[:, j][first:]))
            if season is not None:
                rows.append(season[first:])
            entry: dict[str, Any] = {
                "start": pd.Period(dates[first], freq=pandas_alias(self.freq)),
                "target": target,
                "feat_static_cat": [self.stores.get(str(store), 0), self.skus.get(str(sku), 0)],
                "item_id": f"{store}\x1f{sku}",
            }
            if rows:
                entry["feat_dynamic_real"] = np.vstack(rows).astype(np.float32)
            entries.append(entry)
        return entries, wide

    # --- fit -----------------------------------------------------------------------------
    def fit(self, history: pd.DataFrame, freq: str) -> Self:
        season = self._describe(history, freq)
        return self._train(history, freq, start=None, season=season)

    def fit_after(self, earlier: DeepARForecaster, history: pd.DataFrame, freq: str) -> Self:
        """Train on ``history`` starting from ``earlier``'s network, for half the epochs.

        The build trains DeepAR at the earliest backtest cutoff and again on everything; the second
        run need not start from random weights. It continues from the first (same architecture,
        same store and SKU embeddings) for at most half of ``max_epochs``, with early stopping.
        Measured on Store Item Demand's newest backtest window (``benchmarks/dev_windows.py --only
        deepar_warm``). A history with stores, SKUs, covariates or a distribution the earlier
        network does not know trains from scratch.
        """
        season = self._describe(history, freq)
        if earlier.naive is not None:  # what the backtest judged is what ships (module docstring)
            self._record_training(history, freq)
            return self._fall_back(history, freq, earlier.fallback_reason)
        same = (
            earlier.predictor is not None
            and (self.stores, self.skus, self.covariates, self.distribution)
            == (earlier.stores, earlier.skus, earlier.covariates, earlier.distribution)
            and earlier.horizon == self.horizon
            and earlier.params == self.params
        )
        return self._train(history, freq, start=earlier if same else None, season=season)

    def _describe(self, history: pd.DataFrame, freq: str) -> np.ndarray | None:
        """Output distribution, embeddings' vocabularies and covariates this history calls for; returns
        the history's pooled season when it is one of them (for ``_entries``), else None."""
        units = history["units"].to_numpy(dtype=float)
        returns = float(np.mean(units < 0)) if len(units) else 0.0
        demand = returns <= self.return_share
        idle = self.intermittent_share
        if demand and np.allclose(units, np.round(units)):
            self.distribution = "negative_binomial"
        elif demand and idle is not None and idle_share(history) > idle:
            self.distribution = "quantile_network"
        else:
            self.distribution = "student_t"
        self.clipped_rows = returns if self.distribution in DEMAND else 0.0  # for details.json and the card
        self.stores = {s: i for i, s in enumerate(sorted(history["store_id"].astype(str).unique()))}
        self.skus = {s: i for i, s in enumerate(sorted(history["sku"].astype(str).unique()))}
        self.covariates = ["holiday"]
        if "unit_price" in history and history["unit_price"].notna().any():
            self.covariates.append("price")
        if "on_promotion" in history and history["on_promotion"].notna().any():
            self.covariates.append("promo")
        if not (self.pooled_season and base(freq) == "D"):
            return None
        wide = to_wide(history, freq)
        wide = wide.iloc[-self._history_periods(freq) :]
        season = self._season(wide.to_numpy(dtype=np.float32), pd.DatetimeIndex(wide.index), 0)
        if season is not None:
            self.covariates.append("season")
        return season

    def _season(self, values: np.ndarray, dates: pd.DatetimeIndex, future: int) -> np.ndarray | None:
        """The log of the tenant's pooled week-and-year factor on ``dates`` and ``future`` days after
        them (None where the tenant has too few two-year series to pool one).

        DeepAR sees the year through its year lag (last year's value: one noisy draw per day) and
        day-of-year features it must learn a curve over. The tenant's factor is that curve, measured
        once over all its series: known ahead, smooth, and the same every year on calendar dates.
        """
        pool = wide_pool(values, dates[-1])
        if pool is None:
            return None
        factor = np.concatenate([cover(pool.past, YEAR, len(dates)), ahead(pool, future)])
        return np.log(factor).astype(np.float32)

    def _train(
        self,
        history: pd.DataFrame,
        freq: str,
        start: DeepARForecaster | None,
        season: np.ndarray | None = None,
    ) -> Self:
        """Train on ``history`` (already ``_describe``d, ``season`` its result), from ``start``'s
        network when given."""
        import lightning.pytorch as pl
        from gluonts.dataset.common import ListDataset
        from gluonts.torch.model.deepar import DeepAREstimator

        self._record_training(history, freq)
        _one_thread_on_cpu()
        pl.seed_everything(self.params["seed"], workers=True, verbose=False)
        entries, _ = self._entries(history, 0, season)
        longest = max((len(e["target"]) for e in entries), default=0)
        entries = [e for e in entries if len(e["target"]) > self.horizon + 8]
        if not entries:
            reason = (
                f"history too short for DeepAR: the longest series has {longest} periods, a training "
                f"window needs more than {self.horizon + 8} (horizon {self.horizon} + 8); seasonal naive"
            )
            return self._fall_back(history, freq, reason)
        rng = np.random.default_rng(self.params["seed"])
        if len(entries) > self.params["max_series"]:
            pick = np.sort(rng.choice(len(entries), self.params["max_series"], replace=False))
            entries = [entries[i] for i in pick]
        self.trained_series = len(entries)
        # The last horizon of each series is the validation window, when what is left before it
        # can still hold a training window; a short history (Walmart's first backtest cutoff: 52
        # weeks for a 39-week horizon) trains on everything, with early stopping on training loss.
        train = [c for c in (_cut(e, self.horizon) for e in entries) if len(c["target"]) > self.horizon + 8]
        validate = bool(train)
        if not validate:
            train = entries
        context = self.params["context_length"] or min(2 * self.horizon, 112)
        if self.lag_windows:
            self.lags, self.min_past = training_layout(
                np.array([len(e["target"]) for e in train]),
                np.array([len(e["target"]) for e in entries]),
                freq,
                context,
                self.horizon,
                unobserved_year=self.unobserved_year,
            )
        else:
            self.lags, self.min_past = _lags(freq, self._history_periods(freq)), 0
        if start is not None and start.lags != self.lags:  # another architecture: train from scratch
            start = None
        self.warm_started = start is not None
        data = ListDataset(train, freq=pandas_alias(freq))
        held_out = ListDataset(entries, freq=pandas_alias(freq)) if validate else None
        # Lightning writes checkpoints under a root folder and loads the best one back into the
        # network before train returns: the folder goes with the training (one was left in the
        # temp dir per fit, 35 after one `make test`).
        with tempfile.TemporaryDirectory(prefix="deepar-") as root:
            estimator = DeepAREstimator(
                freq=pandas_alias(freq),
                prediction_length=self.horizon,
                context_length=context,
                num_layers=self.params["num_layers"],
                hidden_size=self.params["hidden_size"],
                lr=self.params["learning_rate"],
                num_feat_dynamic_real=len(self.covariates),
                num_feat_static_cat=2,
                cardinality=[max(len(self.stores), 1), max(len(self.skus), 1)],
                distr_output=self._output(),
                batch_size=self.params["batch_size"],
                num_batches_per_epoch=self._batches_per_epoch(train),
                lags_seq=self.lags,
                train_sampler=young_series_sampler(self.min_past, self.horizon),
                num_parallel_samples=self.params["num_samples"],
                trainer_kwargs=self._trainer_kwargs(
                    root, monitor="val_loss" if validate else "train_loss", warm=start is not None
                ),
            )
            # cache_data: the deterministic transformations (time features, age, lags' arrays) run once,
            # not every epoch; only the random window sampling repeats. Same network to the digit, and
            # 3 epochs on Store Item Demand's 400 series took 24.0 s instead of 31.1 s (dev_windows.py
            # --only deepar_cache switches it off to compare; it never changes what is learnt).
            if start is None:
                self.predictor = estimator.train(data, validation_data=held_out, cache_data=self.cache_data)
            else:
                self.predictor = estimator.train_from(
                    start.predictor, data, validation_data=held_out, cache_data=self.cache_data
                )
        return self

    def _output(self) -> Any:
        """gluonts' output layer for ``distribution``."""
        from gluonts.torch.distributions import (
            ImplicitQuantileNetworkOutput,
            NegativeBinomialOutput,
            StudentTOutput,
        )

        if self.distribution == "negative_binomial":
            return NegativeBinomialOutput()
        if self.distribution == "quantile_network":
            return ImplicitQuantileNetworkOutput(output_domain=self.quantile_domain)
        return StudentTOutput()

    def _fall_back(self, history: pd.DataFrame, freq: str, reason: str) -> Self:
        self.naive = SeasonalNaive().fit(history, freq)
        self.predictor, self.trained_series, self.warm_started = None, 0, False
        keys = history[["store_id", "sku"]].astype(str).drop_duplicates()
        self.fallbacks = {f"{store}|{sku}": reason for store, sku in keys.itertuples(index=False)}
        log.warning("%s (%d series)", reason, len(self.fallbacks))
        return self

    @property
    def fallback_reason(self) -> str:
        return next(iter(self.fallbacks.values()), "no series could train the network; seasonal naive")

    def _batches_per_epoch(self, train: list[dict[str, Any]]) -> int:
        """About one pass over the data's context windows per epoch, at least 40 batches, at most 64.

        The floor is measured: on 20 Store Item series, 16 batches per epoch cost DeepAR 0.116 WAPE
        against 0.102 with 40 (and the ensemble its lead over AutoETS); large tenants get more.
        """
        if self.params["batches_per_epoch"]:
            return int(self.params["batches_per_epoch"])
        context = self.params["context_length"] or min(2 * self.horizon, 112)
        windows = sum(max(len(e["target"]) // (context + self.horizon), 1) for e in train)
        return int(np.clip(np.ceil(windows / self.params["batch_size"]), 40, 64))

    def _trainer_kwargs(self, root: str, monitor: str = "val_loss", warm: bool = False) -> dict[str, Any]:
        from lightning.pytorch.callbacks import EarlyStopping

        epochs = self.params["max_epochs"]
        return {
            "max_epochs": max(1, epochs // 2) if warm else epochs,
            "accelerator": "auto",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "default_root_dir": root,
            "deterministic": True,
            "callbacks": [EarlyStopping(monitor=monitor, patience=3, mode="min")],
        }

    # --- predict -------------------------------------------------------------------------
    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        import torch
        from gluonts.dataset.common import ListDataset

        if horizon > self.horizon:
            raise ValueError(f"this model was trained for horizons up to {self.horizon}, not {horizon}")
        if self.naive is not None:
            return self.naive.predict(history, horizon, quantiles)
        _one_thread_on_cpu()
        torch.manual_seed(self.params["seed"])
        np.random.seed(self.params["seed"])
        entries, wide = self._entries(history, self.horizon)
        dates = horizon_dates(wide.index[-1], horizon, self.freq)
        frames = []
        forecasts = self.predictor.predict(ListDataset(entries, freq=pandas_alias(self.freq)))
        for entry, forecast in zip(entries, forecasts, strict=True):
            store, sku = entry["item_id"].split("\x1f")
            samples = forecast.samples[:, :horizon]
            if self.distribution == "quantile_network":  # learnt on demand: a quantile below zero is none
                samples = np.maximum(samples, 0.0)
            frame = pd.DataFrame(
                {
                    "store_id": store,
                    "sku": sku,
                    "target_date": dates,
                    "horizon_day": np.arange(1, horizon + 1),
                    "mean": samples.mean(axis=0),
                }
            )
            for q in quantiles:
                frame[qcol(q)] = np.quantile(samples, q, axis=0)
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True)
        return clean_quantiles(out, quantiles, history)

    # --- persistence ---------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        if self.naive is not None:
            self.naive.save(path / "naive")
        else:
            (path / "gluonts").mkdir(parents=True, exist_ok=True)
            self.predictor.serialize(path / "gluonts")
        state = {
            "horizon": self.horizon,
            "params": self.params,
            "distribution": self.distribution,
            "stores": self.stores,
            "skus": self.skus,
            "covariates": self.covariates,
            "trained_series": self.trained_series,
            "warm_started": self.warm_started,
            "lags": self.lags,
            "min_past": self.min_past,
            "fallbacks": self.fallbacks,
        }
        (path / "deepar.json").write_text(json.dumps(state))

    def _load_state(self, path: Path) -> None:
        from gluonts.torch.model.predictor import PyTorchPredictor

        state = json.loads((path / "deepar.json").read_text())
        self.horizon, self.params = state["horizon"], state["params"]
        self.distribution, self.covariates = state["distribution"], state["covariates"]
        self.stores, self.skus = state["stores"], state["skus"]
        self.trained_series = state["trained_series"]
        self.warm_started = state.get("warm_started", False)
        self.lags, self.min_past = state.get("lags", []), state.get("min_past", 0)
        self.fallbacks = state.get("fallbacks", {})
        self.naive, self.predictor = None, None
        if (path / "naive").exists():
            self.naive = SeasonalNaive.load(path / "naive")
        else:
            self.predictor = PyTorchPredictor.deserialize(path / "gluonts", device="cpu")


def _one_thread_on_cpu() -> None:
    """A network this small gains nothing from intra-op threads, and loses a lot when the training
    steps run side by side: two spinning OpenMP threads per process on two cores made one LSTM call
    take seconds instead of milliseconds here."""
    import warnings

    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    # gluonts 0.16 indexes tensors with a list on every batch; torch warns each time, which filled
    # a training step's log with 200 KB of the same line.
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")


def training_layout(
    lengths: np.ndarray,
    history: np.ndarray,
    freq: str,
    context: int,
    horizon: int,
    *,
    unobserved_year: bool = True,
) -> tuple[list[int], int]:
    """(lags, min_past): the lagged targets the network sees and where training windows may start.

    ``lengths`` are the series' training lengths, ``history`` their whole lengths (what a forecast
    sees). ``unobserved_year=False`` drops the year lag where training windows cannot observe it.

    A training window is ``min_past`` periods of past (the context and, behind it, the deepest lag)
    and ``horizon`` periods to predict. gluonts samples windows from the first period on and pads a
    past that does not exist with zeros, so with the year among the lags and two years of history
    two windows in three saw last year's sales as zero; at prediction time the year is always
    there. The network learnt to trust a lag it then met with values it had never trained on: on
    Store Item Demand's dev windows DeepAR's median ran 11 % below the sales.

    So when most series can host windows whose lags are all observed, with half a year of start
    dates to sample from (so the windows cover the seasons, not one month of the year), windows
    start where the year lag is observed. Otherwise windows start past the recent lags where most
    series allow it, else past a full context, else anywhere (a young tenant: gluonts' padding).
    The year lag stays in that case when the forecasts will see it (at least a year of history),
    as it always was: dropping it was no better where no training window can observe it. On Store
    Item summed to weeks with exactly two years of history (Walmart's shape) it won two windows of
    four and lost on the mean (``dev_windows.py --only deepar_lags_weekly``), and on Walmart's
    evaluation build DeepAR went from WAPE 0.170 to 0.204 without it.
    """
    recent = _recent_lags(freq)
    year = year_length(freq)

    def most(values: np.ndarray, need: int) -> bool:
        return bool(len(values)) and float(np.mean(values >= need)) >= 0.5

    if most(lengths, context + year + horizon + year // 2):
        return [*recent, year], context + year
    lags = [*recent, year] if unobserved_year and most(history, year) else recent
    for min_past in (context + max(recent), context):
        if most(lengths, min_past + horizon):
            return lags, min_past
    return lags, 0


def young_series_sampler(min_past: int, horizon: int) -> Any:
    """gluonts' training sampler, with windows for series too young to host one past ``min_past``.

    ``training_layout`` starts windows where their lags are observed, which a product launched a few
    months ago cannot offer: with one ``min_past`` for all series, a young SKU in an old tenant
    contributed no training window, and its embedding stayed as initialised. Such a series samples
    its windows from its first period on instead. Their lags reach into zero padding, but so do the
    lags of that series' own forecasts, which see the same short history: what the network learns
    from it is what it will meet. Series that can host a window past ``min_past`` are unaffected.
    """
    from gluonts.transform import ExpectedNumInstanceSampler

    class _YoungSeriesSampler(ExpectedNumInstanceSampler):
        def _get_bounds(self, ts: np.ndarray) -> tuple[int, int]:
            end = ts.shape[self.axis] - self.min_future
            return (self.min_past if end >= self.min_past else 0), end

    return _YoungSeriesSampler(num_instances=1.0, min_past=min_past, min_future=horizon)


# Distributions of demand: the network learns units clipped at zero (net returns are no demand).
DEMAND = frozenset({"negative_binomial", "quantile_network"})


def idle_share(history: pd.DataFrame) -> float:
    """Share of the tenant's series-periods without a sale, each series counted from its first row:
    the ensemble's per-series zero share (``series_profile``, which counts the tenant's periods, not
    a sparse export's rows) over the whole history, weighted by each series' length."""
    from models.ensemble import series_profile

    profile = series_profile(history, int(history["date"].nunique()))
    length = profile["length"].to_numpy(dtype=float)
    return float((profile["zero_share"].to_numpy() * length).sum() / length.sum()) if length.sum() else 0.0


def _recent_lags(freq: str) -> list[int]:
    """The recent periods DeepAR lags (the year comes on top where ``training_layout`` allows),
    not gluonts' default of up to three years back, which makes every window ~1,100 days long."""
    return [1, 2, 3, 4, 5, 6, 7, 14, 21, 28] if base(freq) == "D" else [1, 2, 3, 4, 8, 13, 26]


def _lags(freq: str, history: int) -> list[int]:
    """The lags before ``training_layout``: the year whenever the kept history held two years."""
    year = year_length(freq)
    return _recent_lags(freq) + ([year] if history > 2 * year else [])


def _cut(entry: dict[str, Any], horizon: int) -> dict[str, Any]:
    out = dict(entry)
    out["target"] = entry["target"][:-horizon]
    if "feat_dynamic_real" in entry:
        out["feat_dynamic_real"] = entry["feat_dynamic_real"][:, :-horizon]
    return out


def _wide_covariate(
    history: pd.DataFrame, column: str, wide: pd.DataFrame, dates: pd.DatetimeIndex
) -> np.ndarray | None:
    """(period x series) values of a covariate on ``dates``, carried forward past the last value."""
    if column not in history or not history[column].notna().any():
        return None
    table = history.pivot_table(index="date", columns=["store_id", "sku"], values=column, aggfunc="last")
    table = table.reindex(index=dates, columns=wide.columns).astype(float)
    return table.ffill().to_numpy(dtype=np.float32)
