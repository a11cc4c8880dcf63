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

from analytics.baselines import LinearBaseline, naive_forecast, sma_forecast
from analytics.features import FEATURES, Scaler, Windows

log = logging.getLogger(__name__)

MODELS = ("lstm", "naive", "sma", "linear")
"""Model names in every metrics table: the LSTM and the baselines of :mod:`analytics.baselines`."""
INTERVAL = (0.10, 0.90)
"""Residual quantiles of the 80% prediction interval."""
MIN_FIT_WINDOWS = 30
"""Fewest windows a fold may fit on (below this the backtest raises)."""

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(epoch_done, epochs)`` after each training epoch."""


@dataclass(frozen=True)
class Fold:
    """Window index ranges of one fold (indices into :class:`~analytics.features.Windows`).

    ``fit`` + ``validation`` is the training part, all before ``test``. ``number`` 0 is the
    first backtest fold; the final model (no test block) uses ``number`` -1.
    """

    number: int
    fit: range
    validation: range
    test: range


def walk_forward_folds(
    n_windows: int, holdout_fraction: float, folds: int, validation_fraction: float
) -> list[Fold]:
    """Expanding-window folds over ``n_windows`` chronologically ordered windows.

    Args:
        n_windows: windows with a known target.
        holdout_fraction: share of windows in the test blocks, in (0, 1).
        folds: number of consecutive test blocks (>= 1).
        validation_fraction: share of each training part kept for validation, in (0, 1).

    Returns:
        ``folds`` folds; test blocks are contiguous, cover the last
        ``max(folds, round(n_windows * holdout_fraction))`` windows and differ in size by at
        most one.

    Raises:
        ValueError: a fold would fit on fewer than :data:`MIN_FIT_WINDOWS` windows; the
            message gives the counts.
    """
    n_test = max(folds, int(round(n_windows * holdout_fraction)))
    blocks = np.array_split(np.arange(n_windows - n_test, n_windows), folds)
    out = []
    for number, block in enumerate(blocks):
        start = int(block[0])
        fit, validation = _split_training(start, validation_fraction)
        if len(fit) < MIN_FIT_WINDOWS:
            raise ValueError(
                f"{n_windows} windows are too few for {folds} folds holding out "
                f"{holdout_fraction:.0%}: fold {number} would fit on {len(fit)} windows "
                f"(at least {MIN_FIT_WINDOWS})"
            )
        out.append(Fold(number, fit, validation, range(start, int(block[-1]) + 1)))
    return out


def final_fold(n_windows: int, validation_fraction: float) -> Fold:
    """The final model's split: every window, the last ``validation_fraction`` for validation.

    Raises:
        ValueError: fewer than :data:`MIN_FIT_WINDOWS` windows would remain to fit on.
    """
    fit, validation = _split_training(n_windows, validation_fraction)
    if len(fit) < MIN_FIT_WINDOWS:
        raise ValueError(f"{n_windows} windows are too few to fit on (at least "
                         f"{MIN_FIT_WINDOWS} after validation)")
    return Fold(-1, fit, validation, range(n_windows, n_windows))


def _split_training(n_train: int, validation_fraction: float) -> tuple[range, range]:
    n_val = max(1, int(round(n_train * validation_fraction)))
    return range(0, n_train - n_val), range(n_train - n_val, n_train)


def forecast_metrics(actual: np.ndarray, predicted: np.ndarray, last: np.ndarray) -> dict:
    """RMSE, MAE (price units), MAPE (%), directional accuracy of price forecasts.

    Args:
        actual, predicted, last: shape (n,), the next day's actual avg_price, its forecast and
            the window's last avg_price.

    Returns:
        ``{"rmse", "mae", "mape", "directional_accuracy", "n"}``; directional accuracy is None
        when the forecast never moves from ``last`` (the naive forecast) or no day moved.
    """
    actual, predicted, last = (np.asarray(a, dtype=np.float64) for a in (actual, predicted, last))
    err = predicted - actual
    moved = actual != last
    pred_move = np.sign(predicted - last)
    direction = None
    if moved.any() and (pred_move != 0).any():
        direction = float((pred_move[moved] == np.sign(actual - last)[moved]).mean())
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "mape": float(np.mean(np.abs(err) / np.abs(actual)) * 100.0),
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
class FittedLSTM:
    """An LSTM trained on one fold, with its scaler and interval quantiles.

    Attributes:
        model: the Keras model (input (window_days, 2) scaled, output scaled relative change).
        scaler: fitted on the fold's ``fit`` windows only.
        residual_quantiles: (q10, q90) of relative validation residuals.
        epochs_run: epochs actually trained (early stopping may end sooner).
    """

    model: Any
    scaler: Scaler
    residual_quantiles: tuple[float, float]
    epochs_run: int

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Relative forecasts ``next / last - 1``, shape (n,), float64."""
        if not len(X):
            return np.zeros(0)
        scaled = self.scaler.transform(X)
        return np.asarray(self.model(scaled, training=False), dtype=np.float64)[:, 0] * \
            self.scaler.target_std

    def interval(self, forecast_rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relative (lower, upper) bounds of the 80% interval around ``forecast_rel``."""
        return forecast_rel + self.residual_quantiles[0], forecast_rel + self.residual_quantiles[1]


def build_model(window_days: int, seed: int) -> Any:
    """LSTM(32) -> Dense(1) on inputs of shape (window_days, 2); Adam(1e-3), MSE loss."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((window_days, len(FEATURES))),
        keras.layers.LSTM(32),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def fit_lstm(
    w: Windows, fold: Fold, epochs: int, seed: int, progress: ProgressFn | None = None
) -> FittedLSTM:
    """Train the LSTM on ``fold.fit``, early-stopping and calibrating on ``fold.validation``.

    Early stopping: patience 5 on validation loss, best weights restored. Seeded with
    ``keras.utils.set_random_seed(seed)``: on the same data, one thread, the same metrics.
    """
    import keras

    fit, val = list(fold.fit), list(fold.validation)
    scaler = Scaler.fit(w.X[fit], w.y[fit])
    model = build_model(w.X.shape[1], seed)

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs_run = epoch + 1
            if progress:
                progress(epoch + 1, epochs)

    counter = Progress()
    model.fit(
        scaler.transform(w.X[fit]), w.y[fit] / scaler.target_std,
        validation_data=(scaler.transform(w.X[val]), w.y[val] / scaler.target_std),
        epochs=epochs, batch_size=64, shuffle=True, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
                   counter],
    )
    fitted = FittedLSTM(model, scaler, (0.0, 0.0), getattr(counter, "epochs_run", 0))
    residuals = w.y[val].astype(np.float64) - fitted.predict(w.X[val])
    q_lo, q_hi = np.quantile(residuals, INTERVAL)
    fitted.residual_quantiles = (float(q_lo), float(q_hi))
    return fitted


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
    progress: Callable[[int, int, int], None] | None = None,
) -> BacktestResult:
    """Run the backtest over ``folds`` of windows ``w``.

    Args:
        w: the ticker's windows (targets known).
        dates: the ticker's trading dates, in the order the windows were built from.
        folds: from :func:`walk_forward_folds`.
        epochs: maximum epochs per LSTM fit.
        seed: Keras seed, the same for every fold.
        progress: ``progress(fold_number, epoch_done, epochs)`` after each epoch.
    """
    frames, per_fold, scalers = [], [], []
    for fold in folds:
        def on_epoch(done: int, total: int, number: int = fold.number) -> None:
            if progress:
                progress(number, done, total)

        fitted = fit_lstm(w, fold, epochs, seed, on_epoch)
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
