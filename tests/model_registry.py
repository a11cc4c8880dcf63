"""Registry versions with a known output, written without training (for registry/API tests)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from analytics.features import Scaler
from analytics.lstm import build_model
from config.tables import GOLD_DAILY_METRICS, MODELS_DIR
from storage.sink import DeltaSink

TARGET_STD = 0.02
BIAS = 0.5
RESIDUAL_QUANTILES = (-0.01, 0.01)
FORECAST_REL = BIAS * TARGET_STD
"""Every window's relative forecast: the LSTM's weights are zero, so the output is the bias
(0.5 in scaled units) times target_std: +1%."""


def register_constant_model(lake: Path, ticker: str, version: str, skill: float) -> Path:
    """Write ``models/<ticker>/<version>/`` with a model forecasting last x 1.01, interval
    [last x 1.00, last x 1.02]; no champion pointer."""
    model = build_model(7, 0)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    dense = model.layers[-1]
    dense.set_weights([dense.get_weights()[0], np.full(1, BIAS, np.float32)])
    folder = lake / MODELS_DIR / ticker / version
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    Scaler(log_volume_mean=8.0, log_volume_std=1.0, target_std=TARGET_STD).save(
        folder / "scaler.json")
    overall = {m: {"rmse": 1.0, "mae": 0.8, "mape": 1.5, "directional_accuracy": 0.5,
                   "skill": skill if m == "lstm" else 0.0}
               for m in ("lstm", "naive", "sma", "linear")}
    metadata = {
        "ticker": ticker, "version": version, "window_days": 7,
        "validation_skill": skill,
        "interval": {"residual_quantiles": list(RESIDUAL_QUANTILES)},
        "backtest": {"models": ["lstm", "naive", "sma", "linear"],
                     "overall": {**overall, "coverage_80": 0.8}},
        "data": {"gold_table": "gold.daily_metrics", "gold_version": 1, "sha256": "x"},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
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
