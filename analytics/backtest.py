"""Walk-forward backtest of the per-ticker LSTM against the baselines, with an 80% interval.

Folds are expanding-window and chronological (Tashman 2000, "Out-of-sample tests of forecasting
accuracy"; Hyndman & Athanasopoulos, *FPP* 3rd ed., 5.10 "time series cross-validation"): the
last ``holdout_fraction`` of the windows is cut into ``folds`` consecutive test blocks; fold k
trains on every window before its block. Nothing is shuffled across time. Within a fold's
training part, the last ``validation_fraction`` of windows is the validation set (early
stopping and interval calibration); the scaler is fitted on the rest only (the "fit" part), so
neither validation nor test data reach it.

Metrics per model and fold, on prices (not relative changes): RMSE and MAE (the ticker's price
unit), MAPE (percent), directional accuracy (share of days whose actual price moved on which
the forecast moved the same way; None for a forecast that never moves), and the skill score
``1 - RMSE_model / RMSE_naive`` (FPP 5.8). ``overall`` pools the test windows of all folds.

The LSTM's 80% prediction interval is ``forecast x (1 + q)`` for the 10% and 90% quantiles
``q`` of its relative residuals (``actual / last - 1 - forecast_rel``) on the fold's
validation windows (an empirical-residual interval, FPP 5.5); its coverage is the share of
test days whose actual avg_price falls inside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    root_mean_squared_error,
)

from analytics.baselines import LinearBaseline, naive_forecast, sma_forecast
from analytics.features import Scaler, Windows
from analytics.folds import Fold
from analytics.lstm import LSTM_SPEC, FittedLSTM, ModelSpec, fit_lstm

log = logging.getLogger(__name__)

MODELS = ("lstm", "naive", "sma", "linear")
"""Model names in every metrics table: the LSTM and the baselines of :mod:`analytics.baselines`."""



def forecast_metrics(
    actual: np.ndarray, predicted: np.ndarray, last: np.ndarray
) -> dict[str, Any]:
    """RMSE, MAE (price units), MAPE (%), directional accuracy of price forecasts.

    RMSE, MAE and MAPE are scikit-learn's (``root_mean_squared_error``,
    ``mean_absolute_error``, ``mean_absolute_percentage_error`` x 100).

    Args:
        actual, predicted, last: shape (n,), the next day's actual avg_price, its forecast and
            the window's last avg_price.

    Returns:
        ``{"rmse", "mae", "mape", "directional_accuracy", "n"}``; directional accuracy is None
        when the forecast never moves from ``last`` (the naive forecast) or no day moved.
    """
    actual, predicted, last = (np.asarray(a, dtype=np.float64) for a in (actual, predicted, last))
    moved = actual != last
    pred_move = np.sign(predicted - last)
    direction = None
    if moved.any() and (pred_move != 0).any():
        direction = float((pred_move[moved] == np.sign(actual - last)[moved]).mean())
    return {
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "mae": float(mean_absolute_error(actual, predicted)),
        "mape": float(mean_absolute_percentage_error(actual, predicted)) * 100.0,
        "directional_accuracy": direction,
        "n": int(len(actual)),
    }


def score(frame: pd.DataFrame) -> dict[str, Any]:
    """Metrics of every model in :data:`MODELS` on ``frame`` (columns ``actual``, ``last`` and
    one per model, prices), each with ``skill`` vs naive, plus ``coverage_80`` of the LSTM's
    interval (columns ``lower``, ``upper``)."""
    actual, last = frame["actual"].to_numpy(), frame["last"].to_numpy()
    out: dict[str, Any] = {m: forecast_metrics(actual, frame[m].to_numpy(), last) for m in MODELS}
    naive_rmse = out["naive"]["rmse"]
    for m in MODELS:
        out[m]["skill"] = 1.0 - out[m]["rmse"] / naive_rmse if naive_rmse > 0 else None
    inside = (frame["lower"] <= frame["actual"]) & (frame["actual"] <= frame["upper"])
    out["coverage_80"] = float(inside.mean()) if len(frame) else None
    return out


@dataclass
class BacktestResult:
    """Walk-forward outcome of one ticker.

    Attributes:
        folds: per fold ``{"fold", "fit_windows", "validation_windows", "test_windows",
            "test_period", "metrics": score(...)}``.
        overall: :func:`score` over the pooled test windows of all folds.
        frame: one row per test window: fold, date (of the target day), last, actual, one
            column per model (prices), lower, upper.
        scalers: the scaler of each fold (for audit: fitted on the fit part only).
    """

    folds: list[dict[str, Any]]
    overall: dict[str, Any]
    frame: pd.DataFrame
    scalers: list[Scaler] = field(default_factory=list)


def fold_frame(w: Windows, fold: Fold, fitted: FittedLSTM, linear: LinearBaseline,
               dates: pd.Series) -> pd.DataFrame:
    """Test-window prices of every model and the LSTM's interval for ``fold``."""
    idx = list(fold.test)
    X, last = w.X[idx], w.last_price[idx]
    lstm_rel = fitted.predict(X)
    lower_rel, upper_rel = fitted.interval(lstm_rel)
    return pd.DataFrame({
        "fold": fold.number,
        "date": dates.iloc[w.end_index[idx] + 1].to_numpy(),
        "last": last,
        "actual": w.next_price[idx],
        "lstm": last * (1 + lstm_rel),
        "naive": last * (1 + naive_forecast(X)),
        "sma": last * (1 + sma_forecast(X)),
        "linear": last * (1 + linear.predict(X)),
        "lower": last * (1 + lower_rel),
        "upper": last * (1 + upper_rel),
    })


def walk_forward(
    w: Windows, dates: pd.Series, folds: list[Fold], epochs: int, seed: int,
    progress: Callable[[int, int, int], None] | None = None, spec: ModelSpec = LSTM_SPEC,
) -> BacktestResult:
    """Run the backtest over ``folds`` of windows ``w``.

    Args:
        w: the ticker's windows (targets known).
        dates: the ticker's trading dates, in the order the windows were built from.
        folds: from :func:`walk_forward_folds`.
        epochs: maximum epochs per LSTM fit.
        seed: Keras seed, the same for every fold.
        progress: ``progress(fold_number, epoch_done, epochs)`` after each epoch.
        spec: the LSTM's architecture and training hyper-parameters.
    """
    frames: list[pd.DataFrame] = []
    per_fold: list[dict[str, Any]] = []
    scalers: list[Scaler] = []
    for fold in folds:
        def on_epoch(done: int, total: int, number: int = fold.number) -> None:
            if progress:
                progress(number, done, total)

        fitted = fit_lstm(w, fold, epochs, seed, on_epoch, spec)
        train = list(fold.fit) + list(fold.validation)
        linear = LinearBaseline(fitted.scaler).fit(w.X[train], w.y[train])
        frame = fold_frame(w, fold, fitted, linear, dates)
        frames.append(frame)
        scalers.append(fitted.scaler)
        per_fold.append({
            "fold": fold.number,
            "fit_windows": len(fold.fit),
            "validation_windows": len(fold.validation),
            "test_windows": len(fold.test),
            "test_period": [str(frame["date"].iloc[0]), str(frame["date"].iloc[-1])],
            "epochs_run": fitted.epochs_run,
            "metrics": score(frame),
        })
        log.debug("fold %d: %s", fold.number, per_fold[-1]["metrics"]["lstm"])
    pooled = pd.concat(frames, ignore_index=True)
    return BacktestResult(per_fold, score(pooled), pooled, scalers)
