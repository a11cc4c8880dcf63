"""Train, evaluate and register one Keras LSTM per ticker on ``gold/daily_metrics``.

For each ticker: windows of ``window_days`` days (:mod:`analytics.features`), a chronological
hold-out of the last ``holdout_fraction`` of windows, the scaler fitted on the training part
only, an LSTM(32) -> Dense(1) trained on relative changes, and metrics on the hold-out next to
the naive last-value forecast ("tomorrow's avg_price = today's"). The model goes to
``models/<ticker>/<version>/`` and its next-day forecast to ``gold/predictions``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from analytics.features import FEATURES, Scaler, make_windows
from config.settings import Settings
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS, MODELS_DIR
from pipeline.connectors.delta_sink import DeltaSink
from ticklake.status import open_table, read_table

log = logging.getLogger(__name__)
MIN_TRAIN_WINDOWS = 30


def regression_metrics(actual: np.ndarray, predicted: np.ndarray, last: np.ndarray) -> dict:
    """RMSE and MAE (price units) and directional accuracy of price forecasts.

    Directional accuracy is the share of days, among those whose actual price changed, where
    ``sign(predicted - last) == sign(actual - last)``; None when the forecast never moves
    (the naive forecast) or no day changed.
    """
    err = predicted - actual
    moved = actual != last
    pred_move = np.sign(predicted - last)
    direction = None
    if moved.any() and (pred_move != 0).any():
        direction = float((pred_move[moved] == np.sign(actual - last)[moved]).mean())
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "directional_accuracy": direction,
        "n": int(len(actual)),
    }


def build_model(window_days: int, seed: int) -> Any:
    """LSTM(32) -> Dense(1) on inputs of shape (window_days, 2); Adam, MSE loss."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((window_days, len(FEATURES))),
            keras.layers.LSTM(32),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def _predict(model: Any, X: np.ndarray) -> np.ndarray:
    """Model output, shape (n,), in one eager call (no tf.function retracing per ticker)."""
    return np.asarray(model(X, training=False))[:, 0]


@dataclass
class TrainResult:
    """Outcome of one ticker's training (``skipped`` says why when there is no model)."""

    ticker: str
    version: str | None = None
    metrics: dict[str, Any] | None = None
    skipped: str | None = None


def _epoch_bar(ticker: str, epochs: int) -> Any:
    import keras

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = tqdm(total=epochs, desc=f"train {ticker}", unit="epoch", leave=True)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}")
            self.bar.update(1)

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.total = self.bar.n  # early stopping may end before `epochs`
            self.bar.refresh()
            self.bar.close()

    return EpochBar()


def train_ticker(
    series: pd.DataFrame, ticker: str, settings: Settings, gold_version: int, now: datetime
) -> TrainResult:
    """Train, evaluate, save and forecast one ticker.

    Args:
        series: this ticker's daily metrics (trading_date, avg_price, total_volume), any order.
        ticker: the symbol.
        settings: window, epochs, hold-out fraction, seed, lake directory.
        gold_version: Delta version of ``gold/daily_metrics`` the data came from.
        now: UTC time used for the version name and ``created_at``.
    """
    series = series.sort_values("trading_date").reset_index(drop=True)
    w = make_windows(series["avg_price"].to_numpy(), series["total_volume"].to_numpy(),
                     settings.window_days)
    n_test = max(1, int(round(len(w.y) * settings.holdout_fraction)))
    n_train = len(w.y) - n_test
    if n_train < MIN_TRAIN_WINDOWS:
        return TrainResult(ticker, skipped=f"{len(series)} days: too few for window "
                           f"{settings.window_days} + {MIN_TRAIN_WINDOWS} training windows")
    import keras

    scaler = Scaler.fit(w.X[:n_train], w.y[:n_train])
    model = build_model(settings.window_days, settings.seed)
    model.fit(
        scaler.transform(w.X[:n_train]), w.y[:n_train] / scaler.target_std,
        epochs=settings.epochs, batch_size=64, shuffle=True, verbose=0,
        validation_split=0.1,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
            _epoch_bar(ticker, settings.epochs),
        ],
    )
    test = slice(n_train, None)
    pred_rel = _predict(model, scaler.transform(w.X[test])) * scaler.target_std
    last, actual = w.last_price[test], w.next_price[test]
    metrics = {
        "model": regression_metrics(actual, last * (1 + pred_rel), last),
        "naive": regression_metrics(actual, last.copy(), last),
    }
    metrics["rmse_ratio_vs_naive"] = metrics["model"]["rmse"] / metrics["naive"]["rmse"]

    version = now.strftime("%Y%m%dT%H%M%S%fZ")
    out = Path(settings.lake_dir) / MODELS_DIR / ticker / version
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    scaler.save(out / "scaler.json")
    dates = series["trading_date"]
    metadata = {
        "ticker": ticker,
        "version": version,
        "features": list(FEATURES),
        "window_days": settings.window_days,
        "target": "next day's avg_price, as avg_price / last avg_price - 1",
        "epochs": settings.epochs,
        "seed": settings.seed,
        "holdout_fraction": settings.holdout_fraction,
        "train_windows": n_train,
        "test_windows": n_test,
        "train_period": [str(dates.iloc[0]), str(dates.iloc[int(w.end_index[n_train - 1])])],
        "test_period": [str(dates.iloc[int(w.end_index[n_train]) + 1]), str(dates.iloc[-1])],
        "gold_table": GOLD_DAILY_METRICS.name,
        "gold_version": gold_version,
        "metrics": metrics,
        "created_at": now.isoformat(),
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2))

    full = make_windows(series["avg_price"].to_numpy(), series["total_volume"].to_numpy(),
                        settings.window_days, include_last=True)
    forecast_rel = float(_predict(model, scaler.transform(full.X[-1:]))[0] * scaler.target_std)
    as_of = dates.iloc[-1]
    prediction = {
        "ticker": ticker,
        "as_of": as_of,
        "target_date": (pd.Timestamp(as_of) + pd.offsets.BDay(1)).date(),
        "predicted_avg_price": float(full.last_price[-1] * (1 + forecast_rel)),
        "naive_avg_price": float(full.last_price[-1]),
        "model_version": version,
        "created_at": now,
    }
    sink = DeltaSink(GOLD_PREDICTIONS, settings.lake_dir, "train")
    sink.upsert(pa.Table.from_pylist([prediction], schema=GOLD_PREDICTIONS.schema), None)
    return TrainResult(ticker, version, metrics)


def train_all(settings: Settings, tickers: list[str] | None = None) -> list[TrainResult]:
    """Train every ticker of ``gold/daily_metrics`` (or only ``tickers``), one after another.

    Raises:
        FileNotFoundError: ``gold/daily_metrics`` does not exist yet (run the pipeline first).
    """
    delta = open_table(GOLD_DAILY_METRICS, settings.lake_dir)
    if delta is None:
        raise FileNotFoundError(
            f"{GOLD_DAILY_METRICS.path(settings.lake_dir)} does not exist: run the pipeline "
            "first (ticklake up, or ticklake job gold)"
        )
    gold_version = delta.version()
    frame = read_table(GOLD_DAILY_METRICS, settings.lake_dir).to_pandas()
    names = sorted(frame["ticker"].unique()) if not tickers else list(tickers)
    results = []
    for ticker in names:
        series = frame[frame["ticker"] == ticker]
        if series.empty:
            results.append(TrainResult(ticker, skipped="no rows in gold/daily_metrics"))
            continue
        result = train_ticker(series, ticker, settings, gold_version, datetime.now(UTC))
        if result.skipped:
            log.warning("%s skipped: %s", ticker, result.skipped)
        results.append(result)
    return results


def latest_model_metadata(lake_dir: Path) -> dict[str, dict[str, Any]]:
    """Per ticker, the metadata.json of its newest model version."""
    root = Path(lake_dir) / MODELS_DIR
    found: dict[str, dict[str, Any]] = {}
    if not root.exists():
        return found
    for ticker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        versions = sorted(p for p in ticker_dir.iterdir() if (p / "metadata.json").exists())
        if versions:
            found[ticker_dir.name] = json.loads((versions[-1] / "metadata.json").read_text())
    return found
