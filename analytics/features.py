"""Windowing of daily metrics into LSTM inputs, relative to each window's last value.

DESIGN.md: an LSTM fed min-max-scaled raw prices is 4.5x worse than the naive forecast on real
data, because test prices lie outside the training range. Inputs here are relative instead:
``avg_price / last_avg_price - 1`` and standardised ``log1p(total_volume)``; the target is the
next day's relative change ``next_avg_price / last_avg_price - 1``.
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
        y: float32, shape (n_windows,): next day's relative price change (NaN for the last
            window when built with ``include_last=True``).
        last_price: float64, shape (n_windows,): avg_price of each window's last day.
        next_price: float64, shape (n_windows,): the next day's avg_price (NaN if unknown).
        end_index: int, shape (n_windows,): index of each window's last day in the series.
    """

    X: np.ndarray
    y: np.ndarray
    last_price: np.ndarray
    next_price: np.ndarray
    end_index: np.ndarray


def make_windows(
    avg_price: np.ndarray, total_volume: np.ndarray, window_days: int, include_last: bool = False
) -> Windows:
    """Build windows of ``window_days`` consecutive days.

    Args:
        avg_price: shape (n,), > 0, in date order.
        total_volume: shape (n,), >= 0 shares.
        window_days: days per window (>= 2).
        include_last: also return the final window, whose target is unknown (for forecasting).

    Returns:
        :class:`Windows` with ``n - window_days`` windows (+1 with ``include_last``).

    Raises:
        ValueError: shapes differ, ``window_days < 2`` or a price is not > 0.
    """
    price = np.asarray(avg_price, dtype=np.float64)
    volume = np.asarray(total_volume, dtype=np.float64)
    if price.shape != volume.shape or price.ndim != 1:
        raise ValueError(f"avg_price {price.shape} and total_volume {volume.shape} must be (n,)")
    if window_days < 2:
        raise ValueError(f"window_days={window_days} must be >= 2")
    if (price <= 0).any():
        raise ValueError("avg_price must be > 0")
    n_windows = len(price) - window_days + (1 if include_last else 0)
    if n_windows <= 0:
        empty = np.empty((0,))
        return Windows(np.empty((0, window_days, N_FEATURES), np.float32),
                       empty.astype(np.float32), empty, empty, empty.astype(int))
    idx = np.arange(window_days)[None, :] + np.arange(n_windows)[:, None]
    end = idx[:, -1]
    last = price[end]
    X = np.stack([price[idx] / last[:, None] - 1.0, np.log1p(volume[idx])], axis=-1)
    nxt = np.full(n_windows, np.nan)
    has_next = end + 1 < len(price)
    nxt[has_next] = price[end[has_next] + 1]
    y = nxt / last - 1.0
    return Windows(X.astype(np.float32), y.astype(np.float32), last, nxt, end)


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
