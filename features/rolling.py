"""Window kernels over a dense (series x period) matrix, vectorised across all series at once.

pandas' ``DataFrame.rolling`` loops over columns in Python, which for 20,000 series costs seconds
per statistic; these kernels do each statistic in a handful of whole-matrix numpy passes along the
last (contiguous) axis: sums by short block-wise cumulative sums, minima and maxima by the van
Herk/Gil-Werman block algorithm (O(n) for any window). Semantics follow
``rolling(w, min_periods=1)``: NaN cells (a series before it started) are skipped, a window with
no value is NaN, and the standard deviation uses ddof=1.
"""

from __future__ import annotations

import numpy as np


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` moved ``k`` periods later (each cell holds the value ``k`` periods earlier), NaN if none."""
    out = np.full_like(x, np.nan)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out


def _blocks(x: np.ndarray, w: int, origin: int, fill: float) -> tuple[np.ndarray, int]:
    """``x`` padded in front (and behind) so that blocks of ``w`` periods start at multiples of ``w``."""
    m, n = x.shape
    lead = w + origin % w
    blocks = -(-(n + lead) // w)
    padded = np.full((m, blocks * w), fill, dtype=x.dtype)
    padded[:, lead : lead + n] = x
    return padded.reshape(m, blocks, w), lead


def window_sum(x: np.ndarray, w: int, origin: int = 0) -> np.ndarray:
    """Trailing-window sums along the periods (NaN-free input), blocks aligned to absolute periods.

    The window ``[t-w+1, t]`` is a suffix of one block of ``w`` periods plus a prefix of the next,
    each a short cumulative sum. Blocks start at multiples of ``w`` counted from ``origin`` (the
    absolute number of period 0), so a run over the tail of a history adds exactly the same
    numbers in the same order as a run over all of it: incremental and full results agree to the
    bit. Sums over at most ``w`` values also keep more precision than differences of long cumsums.
    """
    m, n = x.shape
    cube, lead = _blocks(x.astype(np.float64, copy=False), w, origin, 0.0)
    prefix = np.cumsum(cube, axis=2).reshape(m, -1)
    # Sum from each period to its block's end, added in that order (not total - prefix, whose rounding
    # would depend on values before the period and so differ between a tail run and a full run).
    suffix = np.cumsum(cube[:, :, ::-1], axis=2)[:, :, ::-1].reshape(m, -1)
    out = prefix[:, lead : lead + n] + suffix[:, lead - w + 1 : lead - w + 1 + n]
    whole = np.nonzero((np.arange(lead, lead + n) + 1) % w == 0)[0]  # windows that are exactly one block
    out[:, whole] = prefix[:, lead + whole]
    return out


def window_count(valid: np.ndarray, w: int) -> np.ndarray:
    """Trailing-window counts of True cells: integers, so plain cumsum differences are exact."""
    cum = np.cumsum(valid, axis=1, dtype=np.int32)
    out = cum.copy()
    out[:, w:] -= cum[:, :-w]
    return out


def rolling_mean(x: np.ndarray, w: int, origin: int = 0) -> np.ndarray:
    valid = ~np.isnan(x)
    n = window_count(valid, w)
    s1 = window_sum(np.where(valid, x, 0.0), w, origin)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s1 / n, np.nan)


def rolling_mean_std(x: np.ndarray, w: int, origin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Trailing-window mean and sample standard deviation (ddof=1)."""
    valid = ~np.isnan(x)
    values = np.where(valid, x, 0.0).astype(np.float64)
    n = window_count(valid, w).astype(np.float64)
    s1 = window_sum(values, w, origin)
    s2 = window_sum(values * values, w, origin)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s1 / n, np.nan)
        var = (n * s2 - s1 * s1) / (n * (n - 1))
    std = np.where(n > 1, np.sqrt(np.clip(var, 0.0, None)), np.nan)
    return mean, std


def rolling_extreme(x: np.ndarray, w: int, op: str) -> np.ndarray:
    """Trailing-window minimum (``op='min'``) or maximum, NaN-skipping."""
    fold = np.minimum if op == "min" else np.maximum
    neutral = np.inf if op == "min" else -np.inf
    m, n = x.shape
    # Minima and maxima are exact in any precision that holds the values; float32 halves the traffic
    # (callers store float32, and rounding is monotone, so min(float32(x)) == float32(min(x))).
    cube, lead = _blocks(np.where(np.isnan(x), neutral, x).astype(np.float32), w, 0, neutral)
    prefix = fold.accumulate(cube, axis=2).reshape(m, -1)
    suffix = fold.accumulate(cube[:, :, ::-1], axis=2)[:, :, ::-1].reshape(m, -1)
    out = fold(suffix[:, lead - w + 1 : lead - w + 1 + n], prefix[:, lead : lead + n])
    return np.where(np.isinf(out), np.nan, out)


def last_index(flag: np.ndarray) -> np.ndarray:
    """Period index of the last period at or before each cell where ``flag`` holds (-1 if none)."""
    idx = np.arange(flag.shape[1])[None, :]
    return np.maximum.accumulate(np.where(flag, idx, -1), axis=1)


def forward_fill(x: np.ndarray, limit: int) -> np.ndarray:
    """NaN cells take the last value at most ``limit`` periods before them in their series."""
    last = last_index(~np.isnan(x))
    idx = np.arange(x.shape[1])[None, :]
    ok = (last >= 0) & (idx - last <= limit)
    filled = np.take_along_axis(x, np.maximum(last, 0), axis=1)
    return np.where(ok, filled, np.nan)
