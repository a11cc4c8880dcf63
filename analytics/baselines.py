"""Baseline forecasts of avg_price ``horizon`` days ahead, on exactly the LSTM's windows and
targets.

Every model in :mod:`analytics.backtest` is scored next to these, so a forecast is never shown
without what a trivial model achieves on the same days:

- ``naive``: the target day's avg_price = today's (the random-walk forecast; the reference of
  the skill score, Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
  5.2).
- ``sma``: the target day's avg_price = the simple moving average of the window's
  ``window_days`` avg_prices (SMA(7) with the default window).
- ``linear``: ordinary least squares (scikit-learn ``LinearRegression``) from the window's
  scaled inputs (the LSTM's inputs, flattened) to the relative change at the horizon, fitted on
  the same training windows as the LSTM; saved as JSON (coefficients and intercept).

All functions take windows from :func:`analytics.features.make_windows` and return relative
forecasts ``predicted_avg_price / last_avg_price - 1``, shape (n,), float64.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

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

    def save(self, path: Path) -> None:
        """Write the fitted coefficients and intercept as JSON (the scaler is saved apart)."""
        path.write_text(json.dumps({"coef": [float(c) for c in self.model.coef_],
                                    "intercept": float(self.model.intercept_)}))

    @classmethod
    def load(cls, path: Path, scaler: Scaler) -> LinearBaseline:
        """A fitted baseline from :meth:`save`'s JSON and the scaler it was fitted with.

        Raises:
            ValueError: a coefficient is not finite.
        """
        data = json.loads(path.read_text())
        coef = np.asarray(data["coef"], dtype=np.float64)
        intercept = float(data["intercept"])
        if not (np.isfinite(coef).all() and math.isfinite(intercept)):
            raise ValueError(f"{path}: non-finite coefficient")
        baseline = cls(scaler)
        baseline.model.coef_, baseline.model.intercept_ = coef, intercept
        baseline.model.n_features_in_ = len(coef)
        return baseline

    def _design(self, X: np.ndarray) -> np.ndarray:
        return self.scaler.transform(X).reshape(len(X), -1).astype(np.float64)
