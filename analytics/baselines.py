"""Baseline forecasts of the next day's avg_price, on exactly the LSTM's windows and targets.

Every model in :mod:`analytics.backtest` is scored next to these, so a forecast is never shown
without what a trivial model achieves on the same days:

- ``naive``: tomorrow's avg_price = today's (the random-walk forecast; the reference of the
  skill score, Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 5.2).
- ``sma``: tomorrow's avg_price = the simple moving average of the window's ``window_days``
  avg_prices (SMA(7) with the default window).
- ``linear``: ordinary least squares (scikit-learn ``LinearRegression``) from the window's
  scaled inputs (the LSTM's inputs, flattened) to the relative next-day change, fitted on the
  same training windows as the LSTM.

All functions take windows from :func:`analytics.features.make_windows` and return relative
forecasts ``predicted_avg_price / last_avg_price - 1``, shape (n,), float64.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression

from analytics.features import Scaler


def naive_forecast(X: np.ndarray) -> np.ndarray:
    """Relative forecast 0 for each window: shape (n,)."""
    return np.zeros(len(X))


def sma_forecast(X: np.ndarray) -> np.ndarray:
    """Relative forecast of the SMA of the window's avg_price.

    Feature 0 of ``X`` is ``avg_price / last - 1``, so the SMA relative to the last price is
    the mean of feature 0 over the window. Shape (n,).
    """
    relative: np.ndarray = np.asarray(X[:, :, 0], dtype=np.float64).mean(axis=1)
    return relative


class LinearBaseline:
    """OLS on the flattened scaled window (``window_days`` x 2 inputs) -> relative change.

    Args:
        scaler: the scaler fitted on this fold's training windows (shared with the LSTM).
    """

    def __init__(self, scaler: Scaler) -> None:
        self.scaler = scaler
        self.model = LinearRegression()

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearBaseline:
        """Fit on training windows ``X`` (n, w, 2) and relative targets ``y`` (n,)."""
        self.model.fit(self._design(X), np.asarray(y, dtype=np.float64))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Relative forecasts, shape (n,)."""
        if not len(X):
            return np.zeros(0)
        return np.asarray(self.model.predict(self._design(X)), dtype=np.float64)

    def _design(self, X: np.ndarray) -> np.ndarray:
        return self.scaler.transform(X).reshape(len(X), -1).astype(np.float64)
