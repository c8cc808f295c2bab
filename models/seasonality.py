"""Is there a year in a tenant's demand? One pooled test that the weekly members share.

Weekly series short of two years cannot have their year modelled, only copied (the yearly naive, or
XGBoost anchored on last year's week). Copying is right for seasonal retail and wrong for steady
demand, where last year's week is one noisy draw. The ARIMA member and XGBoost ask the same
question of the same data, so they get the same answer from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.engineering import to_wide


def yearly_signal(series: Sequence[np.ndarray], year: int, min_pairs: int = 30) -> dict[str, Any]:
    """Do a tenant's series repeat last year's deviations? The case for copying last year.

    Each series' values a year apart, as deviations from that series' own mean over its standard
    deviation, pooled over all series into one uncentred correlation: positive where the same weeks
    sell above (or below) the series' usual level each year, about 0 for steady demand, negative
    for trends and random walks, where last year's week is the wrong level. Pooling is what gives
    it power: 30 series of 70 weeks give 540 pairs where one series gives 18. Seasonal when it
    exceeds both 0.1 and twice its standard error under no signal (2 / sqrt(pairs)); with fewer
    than ``min_pairs`` pairs it cannot tell and says so (``seasonal`` None). Measured on the first
    53-90 weeks of Walmart: 0.18-0.36; Store Item summed to weeks, 56-90: 0.70-0.92; 30 steady
    Poisson products: -0.07; random walks -0.51; linear trends -0.78 (``benchmarks/dev_windows.py
    --only yearly_signal``).
    """
    num = sx = sz = 0.0
    pairs = 0
    for y in series:
        if len(y) <= year:
            continue
        spread = float(np.std(y))
        if spread == 0:
            continue
        dev = (y - np.mean(y)) / spread
        now, before = dev[year:], dev[:-year]
        num += float(now @ before)
        sx += float(now @ now)
        sz += float(before @ before)
        pairs += len(now)
    if pairs < min_pairs or sx == 0 or sz == 0:
        return {"correlation": None, "pairs": pairs, "seasonal": None}
    r = float(num / np.sqrt(sx * sz))
    return {"correlation": round(r, 4), "pairs": pairs, "seasonal": bool(r > max(0.1, 2 / np.sqrt(pairs)))}


def from_first_observation(y: np.ndarray) -> np.ndarray:
    """A wide column from the series' first observed period on, no-sale periods as 0 (empty if none).

    The periods before a product's launch are not zero demand; the ones after it without a row are.
    """
    observed = np.isfinite(y)
    return np.nan_to_num(y[int(np.argmax(observed)) :]) if observed.any() else y[:0]


def series_values(history: pd.DataFrame, freq: str) -> list[np.ndarray]:
    """Each series' values from its first period on, for ``yearly_signal``."""
    values = to_wide(history, freq).to_numpy(dtype=float)
    columns = (from_first_observation(values[:, j]) for j in range(values.shape[1]))
    return [y for y in columns if len(y)]
