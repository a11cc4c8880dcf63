"""Realised forecast error: ``gold/predictions`` joined with the actual that arrived in Gold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from storage.delta import read_table

COLUMNS = ["ticker", "as_of", "horizon", "model", "model_version", "actual_date",
           "actual_avg_price", "predicted_avg_price", "lower_80", "upper_80", "naive_avg_price",
           "error", "naive_error", "inside_80"]
LEGACY_HORIZON, LEGACY_MODEL = 1, "lstm"
"""What rows written before forecasts had horizons were: next-day forecasts of the LSTM."""


def realised_errors(predictions: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Each forecast whose actual has arrived, with its error.

    The actual of a forecast is the ticker's avg_price on its ``target_date`` in
    ``gold/daily_metrics``; a forecast whose target day is not in Gold (yet) is left out.

    Args:
        predictions: rows of ``gold/predictions``.
        daily: rows of ``gold/daily_metrics`` (ticker, trading_date, avg_price).

    Returns:
        One row per realised forecast, columns :data:`COLUMNS`; ``error`` and
        ``naive_error`` are forecast minus actual (price units); ``inside_80`` whether the
        actual fell inside the 80% interval. Empty when nothing has been realised yet.
    """
    if predictions.empty or daily.empty:
        return pd.DataFrame(columns=COLUMNS)
    preds = predictions.copy()
    for column, legacy in (("horizon", LEGACY_HORIZON), ("model", LEGACY_MODEL)):
        preds[column] = preds[column].fillna(legacy) if column in preds else legacy
    actual = (daily[["ticker", "trading_date", "avg_price"]]
              .rename(columns={"avg_price": "actual_avg_price", "trading_date": "actual_date"}))
    joined = preds.merge(actual, left_on=["ticker", "target_date"],
                         right_on=["ticker", "actual_date"], how="inner")
    joined["horizon"] = joined["horizon"].astype(int)
    joined["error"] = joined["predicted_avg_price"] - joined["actual_avg_price"]
    joined["naive_error"] = joined["naive_avg_price"] - joined["actual_avg_price"]
    joined["inside_80"] = ((joined["lower_80"] <= joined["actual_avg_price"])
                           & (joined["actual_avg_price"] <= joined["upper_80"]))
    return joined[COLUMNS].sort_values(["ticker", "horizon", "as_of"]).reset_index(drop=True)


def realised_summary(lake_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per ticker and horizon: realised forecasts, MAE of the model and of naive, coverage.

    Returns:
        ``{ticker: {"<horizon>": {"forecasts", "mae_model", "mae_naive", "coverage_80"}}}``
        (price units; empty when no forecast has been realised yet).
    """
    errors = realised_errors(read_table(GOLD_PREDICTIONS, lake_dir).to_pandas(),
                             read_table(GOLD_DAILY_METRICS, lake_dir,
                                        ["ticker", "trading_date", "avg_price"]).to_pandas())
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (ticker, horizon), rows in errors.groupby(["ticker", "horizon"]):
        out.setdefault(str(ticker), {})[str(horizon)] = {
            "forecasts": int(len(rows)),
            "mae_model": float(np.abs(rows["error"]).mean()),
            "mae_naive": float(np.abs(rows["naive_error"]).mean()),
            "coverage_80": float(rows["inside_80"].mean()),
        }
    return out
