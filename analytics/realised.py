"""Realised forecast error: ``gold/predictions`` joined with the actual that arrived in Gold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from storage.delta import read_table

COLUMNS = ["ticker", "as_of", "model_version", "actual_date", "actual_avg_price",
           "predicted_avg_price", "lower_80", "upper_80", "naive_avg_price", "error",
           "naive_error", "inside_80"]


def realised_errors(predictions: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Each forecast whose actual has arrived, with its error.

    The actual of a forecast made ``as_of`` a trading date is the ticker's avg_price on the
    first trading date after it in ``gold/daily_metrics`` (so weekends and holidays need no
    calendar).

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
    preds = predictions.assign(as_of=pd.to_datetime(predictions["as_of"])).sort_values("as_of")
    actual = (daily[["ticker", "trading_date", "avg_price"]]
              .rename(columns={"avg_price": "actual_avg_price"})
              .assign(actual_date=lambda f: pd.to_datetime(f["trading_date"]))
              .drop(columns="trading_date").sort_values("actual_date"))
    joined = pd.merge_asof(preds, actual, left_on="as_of", right_on="actual_date", by="ticker",
                           direction="forward", allow_exact_matches=False)
    joined = joined.dropna(subset=["actual_avg_price"]).copy()
    joined["error"] = joined["predicted_avg_price"] - joined["actual_avg_price"]
    joined["naive_error"] = joined["naive_avg_price"] - joined["actual_avg_price"]
    joined["inside_80"] = ((joined["lower_80"] <= joined["actual_avg_price"])
                           & (joined["actual_avg_price"] <= joined["upper_80"]))
    for column in ("as_of", "actual_date"):
        joined[column] = joined[column].dt.date
    return joined[COLUMNS].sort_values(["ticker", "as_of"]).reset_index(drop=True)


def realised_summary(lake_dir: Path) -> dict[str, Any]:
    """Per ticker: realised forecasts, MAE of the model and of naive, interval coverage.

    Returns:
        ``{ticker: {"forecasts", "mae_model", "mae_naive", "coverage_80"}}`` (price units;
        empty when no forecast has been realised yet).
    """
    errors = realised_errors(read_table(GOLD_PREDICTIONS, lake_dir).to_pandas(),
                             read_table(GOLD_DAILY_METRICS, lake_dir,
                                        ["ticker", "trading_date", "avg_price"]).to_pandas())
    return {
        str(ticker): {
            "forecasts": int(len(rows)),
            "mae_model": float(np.abs(rows["error"]).mean()),
            "mae_naive": float(np.abs(rows["naive_error"]).mean()),
            "coverage_80": float(rows["inside_80"].mean()),
        }
        for ticker, rows in errors.groupby("ticker")
    }
