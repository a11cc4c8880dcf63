"""Registry versions with known, non-zero weights, written without training (registry, API and
dashboard tests), and an independent NumPy forward pass of the LSTM to check forecasts by."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from analytics.features import Scaler
from analytics.lstm import ModelSpec, build_model
from config.tables import GOLD_DAILY_METRICS, MODELS_DIR
from storage.sink import DeltaSink

SPEC = ModelSpec(units=3)
"""A small LSTM: 3 units, so its forward pass is easy to recompute by hand."""
SCALER = Scaler(log_volume_mean=7.0, log_volume_std=0.5, target_std=0.02)
LINEAR_COEF = [0.01 * (i % 5 - 2) for i in range(14)]
LINEAR_INTERCEPT = 0.003
QUANTILE = {"lstm": 1.5, "naive": 1.2, "sma": 2.0, "linear": 1.4}
"""Each model's conformal score quantile (half-width = quantile x window volatility x sqrt(h))."""
MODELS = ("lstm", "naive", "sma", "linear")


def lstm_weights(seed: int = 7) -> list[np.ndarray]:
    """Known weights in Keras' order: LSTM kernel (2, 12), recurrent kernel (3, 12), bias (12,)
    (gates i, f, c, o), Dense kernel (3, 1) and bias (1,)."""
    rng = np.random.default_rng(seed)
    u = SPEC.units
    return [rng.normal(0, 0.6, (2, 4 * u)).astype(np.float32),
            rng.normal(0, 0.6, (u, 4 * u)).astype(np.float32),
            rng.normal(0, 0.3, 4 * u).astype(np.float32),
            rng.normal(0, 0.8, (u, 1)).astype(np.float32),
            np.array([0.1], np.float32)]


def reference_forecast(prices: np.ndarray, volumes: np.ndarray, weights: list[np.ndarray]
                       ) -> float:
    """The LSTM's relative forecast for one 7-day window, from the equations (Hochreiter &
    Schmidhuber 1997, with the forget gate of Gers et al. 2000, as Keras documents them), not
    from Keras: inputs scaled by :data:`SCALER`, output times ``target_std``."""
    kernel, recurrent, bias, dense, dense_bias = (w.astype(np.float64) for w in weights)
    u = SPEC.units
    x = np.stack([prices / prices[-1] - 1.0, np.log1p(volumes)], axis=-1)
    x[:, 0] /= SCALER.target_std
    x[:, 1] = (x[:, 1] - SCALER.log_volume_mean) / SCALER.log_volume_std
    h, c = np.zeros(u), np.zeros(u)

    def sigmoid(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    for x_t in x:
        z = x_t @ kernel + h @ recurrent + bias
        i, f, g, o = sigmoid(z[:u]), sigmoid(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), sigmoid(z[3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
    return float((h @ dense + dense_bias)[0]) * SCALER.target_std


def window_volatility_by_hand(prices: np.ndarray) -> float:
    """Root mean square of the window's day-on-day relative changes."""
    changes = np.diff(prices) / prices[:-1]
    return math.sqrt(float(np.mean(changes ** 2)))


def register_model(lake: Path, ticker: str, version: str,
                   champions: dict[int, str] | None = None) -> Path:
    """Write ``models/<ticker>/<version>/`` (format 2) with horizons 1 and 5: the LSTM of
    :func:`lstm_weights`, :data:`SCALER`, the linear baseline :data:`LINEAR_COEF`, conformal
    quantiles :data:`QUANTILE`; champions default to lstm at h=1, linear at h=5. No champion
    pointer (``Registry.consider`` writes it)."""
    champions = champions or {1: "lstm", 5: "linear"}
    folder = lake / MODELS_DIR / ticker / version
    horizons = {}
    for h, champion in champions.items():
        sub = folder / f"h{h}"
        sub.mkdir(parents=True)
        model = build_model(7, 0, SPEC)
        model.set_weights(lstm_weights())
        model.save(sub / "model.keras")
        SCALER.save(sub / "scaler.json")
        (sub / "linear.json").write_text(json.dumps({"coef": LINEAR_COEF,
                                                     "intercept": LINEAR_INTERCEPT}))
        overall = {m: {"rmse": 1.0 + 0.1 * i, "mae": 0.8, "mape": 1.5,
                       "directional_accuracy": 0.5, "n": 400,
                       "skill": 0.0 if m == "naive" else 0.01 * (i + 1),
                       "coverage_80": 0.79 + 0.01 * i,
                       "dm": None if m == "naive" else {"statistic": -2.0, "p_value": 0.04 + i / 100,
                                                        "p_value_better": 0.02, "n": 400,
                                                        "variance": "acf"}}
                   for i, m in enumerate(MODELS)}
        horizons[str(h)] = {
            "backtest": {"models": list(MODELS), "overall": overall, "folds": [],
                         "test_days": 400},
            "conformal": {m: {"alpha": 0.2, "quantile": QUANTILE[m], "scores": 500}
                          for m in MODELS},
            "champion": {"model": champion, "reason": f"{champion} chosen for the test"},
        }
    metadata = {
        "format": 2, "ticker": ticker, "version": version, "window_days": 7,
        "data": {"gold_table": "gold.daily_metrics", "gold_version": 1, "sha256": "x"},
        "horizons": horizons,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def register_legacy_model(lake: Path, ticker: str, version: str) -> Path:
    """A version as ticklake wrote it before forecasts had horizons (format 1)."""
    folder = lake / MODELS_DIR / ticker / version
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps({"ticker": ticker, "version": version,
                                                      "window_days": 7,
                                                      "validation_skill": 0.01}))
    return folder


def write_daily_metrics(lake: Path, ticker: str, prices: list[float]) -> list[date]:
    """``gold/daily_metrics`` rows of one ticker on consecutive business days from 2012-01-02;
    volume 1,000 + 10 x day. Returns the dates."""
    days, day = [], date(2012, 1, 2)
    while len(days) < len(prices):
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    table = pa.table({
        "trading_date": pa.array(days, pa.date32()), "ticker": [ticker] * len(days),
        "avg_price": prices, "total_volume": pa.array([1000 + 10 * i for i in range(len(days))],
                                                      pa.int64()),
        "trades": pa.array([4] * len(days), pa.int64()),
        "updated_at": pa.nulls(len(days), GOLD_DAILY_METRICS.schema.field("updated_at").type),
        "price_sum": [4 * p for p in prices],
    })
    DeltaSink(GOLD_DAILY_METRICS, lake, "test").upsert(table, None)
    return days
