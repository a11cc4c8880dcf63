"""Walk-forward backtest of the per-ticker LSTM against the baselines, at one horizon, with
calibrated 80% intervals and a significance test against naive.

Folds are expanding-window and chronological (Tashman 2000, "Out-of-sample tests of forecasting
accuracy"; Hyndman & Athanasopoulos, *FPP* 3rd ed., 5.10 "time series cross-validation"): the
last ``holdout_fraction`` of the windows is cut into ``folds`` consecutive test blocks; fold k
trains on every window before its block. Nothing is shuffled across time. Within a fold's
training part, the last ``validation_fraction`` of windows is the validation set (early
stopping, and the first calibration scores of the intervals); the scaler is fitted on the rest
only (the "fit" part), so neither validation nor test data reach it. For a horizon of ``h``
days the ``h - 1`` windows before a test block are left out (:mod:`analytics.folds`).

Metrics per model and fold, on prices (not relative changes): RMSE and MAE (the ticker's price
unit), MAPE (percent), directional accuracy (share of days whose actual price moved on which
the forecast moved the same way; None for a forecast that never moves), the skill score
``1 - RMSE_model / RMSE_naive`` (FPP 5.8), the coverage of the model's 80% interval (share of
test days whose actual avg_price falls inside) and the Diebold-Mariano test against naive
(:mod:`analytics.significance`). ``overall`` pools the test windows of all folds.

Every model's 80% interval is calibrated by adaptive conformal inference on its own
volatility-normalised residuals, realised day by day through the pooled test folds
(:mod:`analytics.conformal`), seeded with its residuals on the first fold's validation windows.
"""

from __future__ import annotations

import dataclasses
import logging
import math
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
from analytics.conformal import GAMMA, LEVEL, ConformalState, adaptive_intervals, nonconformity
from analytics.features import Scaler, Windows, window_volatility
from analytics.folds import Fold
from analytics.lstm import LSTM_SPEC, FittedLSTM, ModelSpec, fit_lstm
from analytics.significance import diebold_mariano

log = logging.getLogger(__name__)

MODELS = ("lstm", "naive", "sma", "linear")
"""Model names in every metrics table: the LSTM and the baselines of :mod:`analytics.baselines`."""


def relative_forecasts(X: np.ndarray, lstm: FittedLSTM, linear: LinearBaseline
                       ) -> dict[str, np.ndarray]:
    """Every model's relative forecast (``target / last - 1``) for windows ``X``: shape (n,)
    per name in :data:`MODELS`."""
    return {name: relative_forecast(name, X, lstm, linear) for name in MODELS}


def relative_forecast(name: str, X: np.ndarray, lstm: FittedLSTM | None,
                      linear: LinearBaseline) -> np.ndarray:
    """Model ``name``'s relative forecast for windows ``X``, shape (n,); the LSTM may be None
    when another model is asked for.

    Raises:
        ValueError: ``name`` is not in :data:`MODELS`, or is ``"lstm"`` and ``lstm`` is None.
    """
    if name == "lstm" and lstm is not None:
        return lstm.predict(X)
    if name == "naive":
        return naive_forecast(X)
    if name == "sma":
        return sma_forecast(X)
    if name == "linear":
        return linear.predict(X)
    raise ValueError(f"no model {name!r} to forecast with; one of {MODELS}")


def forecast_scale(X: np.ndarray, horizon: int) -> np.ndarray:
    """The conformal scale of each window: its volatility times ``sqrt(horizon)``, shape (n,)."""
    return window_volatility(X) * math.sqrt(horizon)


def forecast_metrics(
    actual: np.ndarray, predicted: np.ndarray, last: np.ndarray
) -> dict[str, Any]:
    """RMSE, MAE (price units), MAPE (%), directional accuracy of price forecasts.

    RMSE, MAE and MAPE are scikit-learn's (``root_mean_squared_error``,
    ``mean_absolute_error``, ``mean_absolute_percentage_error`` x 100).

    Args:
        actual, predicted, last: shape (n,), the target day's actual avg_price, its forecast
            and the window's last avg_price.

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


def score(frame: pd.DataFrame, horizon: int = 1) -> dict[str, Any]:
    """Metrics of every model in :data:`MODELS` on ``frame``.

    Args:
        frame: columns ``actual``, ``last``, one per model (prices) and, per model,
            ``<model>_lower`` / ``<model>_upper`` (its 80% interval), in date order.
        horizon: the forecasts' horizon in days (for the Diebold-Mariano test).

    Returns:
        Per model :func:`forecast_metrics` plus ``skill`` (vs naive; None if naive is exact),
        ``coverage_80`` (None for an empty frame) and ``dm``: the Diebold-Mariano test against
        naive as a dict (``statistic``, ``p_value``, ``p_value_better``, ``n``, ``variance``),
        None for naive itself or where the test is undefined.
    """
    actual, last = frame["actual"].to_numpy(), frame["last"].to_numpy()
    out: dict[str, Any] = {m: forecast_metrics(actual, frame[m].to_numpy(), last) for m in MODELS}
    naive_rmse = out["naive"]["rmse"]
    for m in MODELS:
        out[m]["skill"] = 1.0 - out[m]["rmse"] / naive_rmse if naive_rmse > 0 else None
        inside = (frame[f"{m}_lower"] <= frame["actual"]) & (frame["actual"] <= frame[f"{m}_upper"])
        out[m]["coverage_80"] = float(inside.mean()) if len(frame) else None
        test = None if m == "naive" else diebold_mariano(actual, frame[m].to_numpy(),
                                                        frame["naive"].to_numpy(), horizon)
        out[m]["dm"] = dataclasses.asdict(test) if test else None
    return out


@dataclass
class BacktestResult:
    """Walk-forward outcome of one ticker at one horizon.

    Attributes:
        horizon: trading days from a forecast's origin to its target.
        folds: per fold ``{"fold", "fit_windows", "validation_windows", "test_windows",
            "test_period", "epochs_run", "metrics": score(...)}``.
        overall: :func:`score` over the pooled test windows of all folds.
        frame: one row per test window, in date order: fold, origin (day index), as_of (the
            window's last trading date), date (the target trading date), last, actual, scale,
            one column per model (prices) and ``<model>_lower`` / ``<model>_upper``.
        conformal: per model the calibration state after the last test day (what a new
            forecast's interval uses).
        scalers: the scaler of each fold (for audit: fitted on the fit part only).
    """

    horizon: int
    folds: list[dict[str, Any]]
    overall: dict[str, Any]
    frame: pd.DataFrame
    conformal: dict[str, ConformalState]
    scalers: list[Scaler] = field(default_factory=list)


def fold_frame(w: Windows, fold: Fold, forecasts: dict[str, np.ndarray],
               dates: pd.Series) -> pd.DataFrame:
    """Test windows of ``fold`` with every model's price forecast (intervals come later)."""
    idx = np.asarray(list(fold.test), dtype=np.int64)
    last, end = w.last_price[idx], w.end_index[idx]
    return pd.DataFrame({
        "fold": fold.number,
        "origin": end,
        "as_of": dates.iloc[end].to_numpy(),
        "date": dates.iloc[end + w.horizon].to_numpy(),
        "last": last,
        "actual": w.target_price[idx],
        "scale": forecast_scale(w.X[idx], w.horizon),
        **{m: last * (1 + forecasts[m]) for m in MODELS},
    })


def walk_forward(
    w: Windows, dates: pd.Series, folds: list[Fold], epochs: int, seed: int,
    progress: Callable[[int, int, int], None] | None = None, spec: ModelSpec = LSTM_SPEC,
    level: float = LEVEL, gamma: float = GAMMA,
) -> BacktestResult:
    """Run the backtest over ``folds`` of windows ``w`` (at ``w.horizon``).

    Args:
        w: the ticker's windows (targets known).
        dates: the ticker's trading dates, in the order the windows were built from.
        folds: from :func:`~analytics.folds.walk_forward_folds` with the same horizon.
        epochs: maximum epochs per LSTM fit.
        seed: Keras seed, the same for every fold.
        progress: ``progress(fold_number, epoch_done, epochs)`` after each epoch.
        spec: the LSTM's architecture and training hyper-parameters.
        level: nominal coverage of the intervals.
        gamma: ACI step size (:mod:`analytics.conformal`).
    """
    frames: list[pd.DataFrame] = []
    scalers: list[Scaler] = []
    epochs_run: list[int] = []
    seed_target: np.ndarray | None = None
    seed_scores: dict[str, np.ndarray] = {}
    for fold in folds:
        def on_epoch(done: int, total: int, number: int = fold.number) -> None:
            if progress:
                progress(number, done, total)

        fitted = fit_lstm(w, fold, epochs, seed, on_epoch, spec)
        train = list(fold.fit) + list(fold.validation)
        linear = LinearBaseline(fitted.scaler).fit(w.X[train], w.y[train])
        if seed_target is None:  # the first fold's validation residuals seed the calibration
            val = np.asarray(list(fold.validation), dtype=np.int64)
            seed_target = w.end_index[val] + w.horizon
            scale = forecast_scale(w.X[val], w.horizon)
            seed_scores = {m: nonconformity(w.y[val], f, scale)
                           for m, f in relative_forecasts(w.X[val], fitted, linear).items()}
        frames.append(fold_frame(w, fold, relative_forecasts(w.X[list(fold.test)], fitted, linear),
                                 dates))
        scalers.append(fitted.scaler)
        epochs_run.append(fitted.epochs_run)
    pooled = pd.concat(frames, ignore_index=True)
    assert seed_target is not None  # folds is never empty
    conformal: dict[str, ConformalState] = {}
    last = pooled["last"].to_numpy()
    actual_rel = pooled["actual"].to_numpy() / last - 1
    for m in MODELS:
        intervals = adaptive_intervals(
            pooled["origin"].to_numpy(), pooled[m].to_numpy() / last - 1, actual_rel,
            pooled["scale"].to_numpy(), w.horizon, seed_target, seed_scores[m], level, gamma)
        pooled[f"{m}_lower"] = last * (1 + intervals.lower)
        pooled[f"{m}_upper"] = last * (1 + intervals.upper)
        conformal[m] = intervals.state
    per_fold: list[dict[str, Any]] = []
    for fold, runs in zip(folds, epochs_run, strict=True):
        rows = pooled[pooled["fold"] == fold.number]
        per_fold.append({
            "fold": fold.number,
            "fit_windows": len(fold.fit),
            "validation_windows": len(fold.validation),
            "test_windows": len(fold.test),
            "test_period": [str(rows["date"].iloc[0]), str(rows["date"].iloc[-1])],
            "epochs_run": runs,
            "metrics": score(rows, w.horizon),
        })
        log.debug("h=%d fold %d: %s", w.horizon, fold.number, per_fold[-1]["metrics"]["lstm"])
    return BacktestResult(w.horizon, per_fold, score(pooled, w.horizon), pooled, conformal,
                          scalers)
