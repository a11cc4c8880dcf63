"""Champion forecasts of the next trading day into ``gold/predictions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from analytics.registry import Registry
from config.calendar import next_trading_day
from config.settings import Settings
from config.tables import GOLD_PREDICTIONS
from storage.sink import DeltaSink


def write_predictions(
    settings: Settings, frame: pd.DataFrame, tickers: list[str], registry: Registry
) -> list[dict[str, Any]]:
    """Forecast the next trading day for each ticker's champion into ``gold/predictions``.

    Tickers without a champion get no row (no version beat the naive forecast). ``as_of`` is
    the last trading date in Gold; ``target_date`` the next NYSE session (``config.calendar``).
    Rows are upserted on (ticker, target_date, model_version).

    Returns:
        The rows written.
    """
    rows = []
    created = datetime.now(UTC)
    for ticker in tickers:
        champion = registry.champion(ticker)
        series = frame[frame["ticker"] == ticker].sort_values("trading_date")
        if champion is None or series.empty:
            continue
        loaded = registry.load(ticker, champion["version"])
        if len(series) < loaded.window_days:
            continue
        as_of = series["trading_date"].iloc[-1]
        rows.append({
            "ticker": ticker,
            "as_of": as_of,
            "target_date": next_trading_day(as_of),
            **loaded.forecast(series["avg_price"].to_numpy(), series["total_volume"].to_numpy()),
            "model_version": champion["version"],
            "created_at": created,
        })
    if rows:
        DeltaSink(GOLD_PREDICTIONS, settings.lake_dir, "train").upsert(
            pa.Table.from_pylist(rows, schema=GOLD_PREDICTIONS.schema), None)
    return rows

