"""Windowing of daily metrics into LSTM inputs, relative to each window's last value.

An LSTM fed min-max-scaled raw prices does far worse than the naive forecast on real data
(docs/architecture.md, "Measured facts"), because test prices lie outside the training range.
Inputs here are relative instead:
``avg_price / last_avg_price - 1`` and standardised ``log1p(total_volume)``; the target is the
relative change ``horizon`` trading days ahead, ``target_avg_price / last_avg_price - 1``
(``horizon`` 1: the next trading day). One model per horizon forecasts it directly (the "direct"
multi-step strategy, Hyndman & Athanasopoulos, *FPP* 3rd ed., 13.6 "Forecasting ... ahead").
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

N_FEATURES = 2
FEATURES = ("avg_price", "total_volume")


@dataclass(frozen=True)
class Windows:
    """Sliding windows over one ticker's daily series.

    Attributes:
        X: float32, shape (n_windows, window_days, 2): relative price, log1p(volume).
        y: float32, shape (n_windows,): relative price change ``horizon`` days after the
            window's last day (NaN where that day is not in the series yet, which only the
            windows added by ``include_last=True`` have).
        last_price: float64, shape (n_windows,): avg_price of each window's last day.
        target_price: float64, shape (n_windows,): the avg_price ``horizon`` days after the
            window's last day (NaN if unknown).
        end_index: int, shape (n_windows,): index of each window's last day in the series
            (the forecast origin); the target's index is ``end_index + horizon``.
        horizon: trading days from a window's last day to its target (>= 1).
    """

    X: np.ndarray
    y: np.ndarray
    last_price: np.ndarray
    target_price: np.ndarray
    end_index: np.ndarray
    horizon: int = 1


def make_windows(
    avg_price: np.ndarray, total_volume: np.ndarray, window_days: int, include_last: bool = False,
    horizon: int = 1,
) -> Windows:
    """Build windows of ``window_days`` consecutive days.

    Args:
        avg_price: shape (n,), > 0, in date order.
        total_volume: shape (n,), >= 0 shares.
        window_days: days per window (>= 2).
        include_last: also return the final ``horizon`` windows, whose targets are unknown
            (the last of them is the one to forecast from).
        horizon: trading days from a window's last day to its target (>= 1).

    Returns:
        :class:`Windows` with ``n - window_days - horizon + 1`` windows (+``horizon`` with
        ``include_last``).

    Raises:
        ValueError: shapes differ, ``window_days < 2``, ``horizon < 1`` or a price is not > 0.
    """
    price = np.asarray(avg_price, dtype=np.float64)
    volume = np.asarray(total_volume, dtype=np.float64)
    if price.shape != volume.shape or price.ndim != 1:
        raise ValueError(f"avg_price {price.shape} and total_volume {volume.shape} must be (n,)")
    if window_days < 2:
        raise ValueError(f"window_days={window_days} must be >= 2")
    if horizon < 1:
        raise ValueError(f"horizon={horizon} must be >= 1")
    if (price <= 0).any():
        raise ValueError("avg_price must be > 0")
    n_windows = len(price) - window_days + 1 - (0 if include_last else horizon)
    if n_windows <= 0:
        empty = np.empty((0,))
        return Windows(np.empty((0, window_days, N_FEATURES), np.float32),
                       empty.astype(np.float32), empty, empty, empty.astype(int), horizon)
    idx = np.arange(window_days)[None, :] + np.arange(n_windows)[:, None]
    end = idx[:, -1]
    last = price[end]
    X = np.stack([price[idx] / last[:, None] - 1.0, np.log1p(volume[idx])], axis=-1)
    target = np.full(n_windows, np.nan)
    known = end + horizon < len(price)
    target[known] = price[end[known] + horizon]
    y = target / last - 1.0
    return Windows(X.astype(np.float32), y.astype(np.float32), last, target, end, horizon)


def window_volatility(X: np.ndarray) -> np.ndarray:
    """Root mean square of the daily relative avg_price changes inside each window.

    The scale of the conformal interval (:mod:`analytics.conformal`): it uses only the
    window's own days, so a forecast served from a window and the same window in the backtest
    get the same interval. Feature 0 is ``avg_price / last - 1``, so day ``i``'s change is
    ``(1 + x_i) / (1 + x_{i-1}) - 1``.

    Args:
        X: windows, shape (n, window_days, 2), as :func:`make_windows` builds them.

    Returns:
        float64, shape (n,): per-day volatility (a fraction, e.g. 0.015 = 1.5% a day); 0 for a
        window whose price never moved.
    """
    price = 1.0 + np.asarray(X[:, :, 0], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf/NaN: caller's 422
        change = price[:, 1:] / price[:, :-1] - 1.0
        volatility: np.ndarray = np.sqrt((change ** 2).mean(axis=1))
    return volatility


@dataclass(frozen=True)
class Scaler:
    """Standardisation fitted on training windows only; saved as JSON (never pickle).

    Attributes:
        log_volume_mean, log_volume_std: of feature 1 (log1p volume) over training windows.
        target_std: standard deviation of the training targets (relative changes).
    """

    log_volume_mean: float
    log_volume_std: float
    target_std: float

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray) -> Scaler:
        """Fit on training windows ``X`` (n, w, 2) and targets ``y`` (n,)."""
        vol = X[:, :, 1]
        return cls(
            float(vol.mean()),
            float(vol.std()) or 1.0,
            float(np.nanstd(y)) or 1.0,
        )

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled copy of ``X``: feature 0 divided by target_std, feature 1 standardised."""
        out = X.copy()
        out[:, :, 0] = out[:, :, 0] / self.target_std
        out[:, :, 1] = (out[:, :, 1] - self.log_volume_mean) / self.log_volume_std
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Scaler:
        data = json.loads(path.read_text())
        if not all(math.isfinite(float(v)) for v in data.values()):
            raise ValueError(f"{path}: non-finite scaler value")
        return cls(**{k: float(v) for k, v in data.items()})
