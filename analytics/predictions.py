"""Champion forecasts of every horizon into ``gold/predictions``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from analytics.registry import Registry
from config.calendar import trading_day_after
from config.errors import ModelError
from config.settings import Settings
from config.tables import GOLD_PREDICTIONS
from storage.sink import DeltaSink

log = logging.getLogger(__name__)


def write_predictions(
    settings: Settings, frame: pd.DataFrame, tickers: list[str], registry: Registry
) -> list[dict[str, Any]]:
    """Forecast every horizon of each ticker's serving version into ``gold/predictions``.

    Each row names the model that made it (the horizon's champion: the LSTM or a baseline,
    :mod:`analytics.champion`). ``as_of`` is the ticker's last trading date in Gold;
    ``target_date`` the ``horizon``-th session after it in the ticker's market calendar
    (:func:`config.calendar.trading_day_after`). Rows are
    upserted on (ticker, as_of, horizon, model_version). A ticker without a serving version
    (never trained, or too short a history) gets no row; a version that cannot be loaded is
    logged and skipped.

    Args:
        settings: the lake directory.
        frame: rows of ``gold/daily_metrics`` (ticker, trading_date, avg_price, total_volume).
        tickers: the tickers to forecast.
        registry: the model registry.

    Returns:
        The rows written (columns of ``gold/predictions``).
    """
    rows = []
    created = datetime.now(UTC)
    for ticker in tickers:
        champion = registry.champion(ticker)
        series = frame[frame["ticker"] == ticker].sort_values("trading_date")
        if champion is None or series.empty:
            continue
        try:
            loaded = registry.load(ticker, champion["version"], lstm="champion")
        except ModelError as err:
            log.error("%s: no forecast: %s", ticker, err)
            continue
        if len(series) < loaded.window_days:
            continue
        as_of = series["trading_date"].iloc[-1]
        price, volume = series["avg_price"].to_numpy(), series["total_volume"].to_numpy()
        for horizon in sorted(loaded.horizons):
            rows.append({
                "ticker": ticker,
                "as_of": as_of,
                "target_date": trading_day_after(as_of, horizon, ticker),
                **loaded.forecast(price, volume, horizon),
                "model_version": champion["version"],
                "created_at": created,
            })
    if rows:
        DeltaSink(GOLD_PREDICTIONS, settings.lake_dir, "train").upsert(
            pa.Table.from_pylist(rows, schema=GOLD_PREDICTIONS.schema), None)
    return rows
