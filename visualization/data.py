"""Data access and derived figures for the dashboard (pure functions, testable without Streamlit)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from config.tables import (
    BRONZE_TICKS,
    GOLD_ANOMALIES,
    GOLD_BARS_1D,
    GOLD_PREDICTIONS,
    SILVER_QUARANTINE,
)
from storage.delta import read_table


def ingestion_health(
    last_ingest: datetime | None, now: datetime, healthy_s: float, stalled_s: float
) -> str:
    """Classify ingestion by the age of the newest Bronze row.

    Returns:
        ``"healthy"`` if age <= ``healthy_s``, ``"late"`` if age <= ``stalled_s``,
        ``"stalled"`` beyond, ``"no data"`` when nothing was ingested.

    Raises:
        ValueError: a naive datetime (everything here is UTC, timezone-aware).
    """
    if last_ingest is None:
        return "no data"
    if last_ingest.tzinfo is None or now.tzinfo is None:
        raise ValueError("ingestion_health needs timezone-aware UTC datetimes")
    age_s = (now - last_ingest).total_seconds()
    if age_s <= healthy_s:
        return "healthy"
    return "late" if age_s <= stalled_s else "stalled"


def ingestion_per_day(ingest_time: pd.Series) -> pd.DataFrame:
    """Bronze rows per UTC ingest day: columns ``day`` (date) and ``records``."""
    if ingest_time.empty:
        return pd.DataFrame({"day": [], "records": []})
    days = pd.to_datetime(ingest_time, utc=True).dt.date
    counts = days.value_counts().sort_index()
    return pd.DataFrame({"day": counts.index, "records": counts.to_numpy()})


def latest_bronze(lake_dir: Path, n: int = 20) -> pd.DataFrame:
    """The ``n`` most recently ingested Bronze rows, with the value decoded as text."""
    frame = read_table(BRONZE_TICKS, lake_dir).to_pandas()
    frame = frame.sort_values(["ingest_time", "partition", "offset"], ascending=False).head(n)
    frame["value"] = [v.decode("utf-8", "replace") if v is not None else None
                      for v in frame["value"]]
    return frame.drop(columns=["key"])


def quarantine_log(lake_dir: Path, n: int = 200) -> pd.DataFrame:
    """The ``n`` newest quarantine rows, raw value shown as text."""
    frame = read_table(SILVER_QUARANTINE, lake_dir).to_pandas()
    frame = frame.sort_values(["quarantined_at", "partition", "offset"], ascending=False).head(n)
    frame["raw_value"] = [v.decode("utf-8", "replace")[:200] if v is not None else None
                          for v in frame["raw_value"]]
    return frame


def bars(lake_dir: Path) -> pd.DataFrame:
    """``gold/bars_1d`` sorted by ticker and window_start."""
    return read_table(GOLD_BARS_1D, lake_dir).to_pandas().sort_values(["ticker", "window_start"])


def predictions(lake_dir: Path) -> pd.DataFrame:
    """``gold/predictions``, newest first."""
    return read_table(GOLD_PREDICTIONS, lake_dir).to_pandas().sort_values(
        "created_at", ascending=False
    )


def price_chart_frame(bars_1d: pd.DataFrame, preds: pd.DataFrame, ticker: str,
                      days: int = 120) -> pd.DataFrame:
    """Long-format frame for one ticker's chart: close of the last ``days`` bars, then, for
    each horizon, the newest forecast, its 80% interval bounds and the naive forecast at the
    target date, each as a segment from the last close.

    Args:
        bars_1d: ``gold/bars_1d`` rows (ticker, window_start UTC, close).
        preds: ``gold/predictions`` rows, newest first (rows of older lakes have no
            ``horizon``/``model``: next-day LSTM forecasts).
        ticker: the symbol.
        days: bars shown.

    Returns:
        Columns ``date`` (UTC date), ``price``, ``series`` (``close``, then per horizon ``h``
        ``h=<h> <model>``, ``h=<h> 80% lower``, ``h=<h> 80% upper``, ``h=<h> naive``).
    """
    own = bars_1d[bars_1d["ticker"] == ticker].tail(days)
    frame = pd.DataFrame({
        "date": pd.to_datetime(own["window_start"], utc=True).dt.tz_localize(None),
        "price": own["close"], "series": "close",
    })
    mine = preds[preds["ticker"] == ticker].copy()
    if mine.empty or own.empty:
        return frame
    mine["horizon"] = mine["horizon"].fillna(1) if "horizon" in mine else 1
    mine["model"] = mine["model"].fillna("lstm") if "model" in mine else "lstm"
    last = frame.iloc[-1]
    for horizon, rows in mine.groupby("horizon", sort=True):
        row = rows.iloc[0]
        target = pd.Timestamp(row["target_date"])
        segments = [(f"h={horizon} {row['model']}", row["predicted_avg_price"]),
                    (f"h={horizon} 80% lower", row["lower_80"]),
                    (f"h={horizon} 80% upper", row["upper_80"])]
        if row["model"] != "naive":  # else the forecast is the naive one already
            segments.append((f"h={horizon} naive", row["naive_avg_price"]))
        for series, value in segments:
            if pd.isna(value):
                continue
            frame = pd.concat([frame, pd.DataFrame({
                "date": [last["date"], target], "price": [last["price"], value],
                "series": [series, series]})], ignore_index=True)
    return frame


def backtest_table(meta: dict[str, Any], horizon: str) -> pd.DataFrame:
    """One row per model of a registry version's walk-forward backtest at ``horizon``:
    RMSE, MAE, MAPE, directional accuracy, skill vs naive, 80% interval coverage, two-sided
    Diebold-Mariano p-value vs naive (None for naive) and whether it is the champion."""
    entry = meta["horizons"][horizon]
    overall = entry["backtest"]["overall"]
    return pd.DataFrame([
        {"model": m, **{k: overall[m][k] for k in ("rmse", "mae", "mape",
                                                   "directional_accuracy", "skill",
                                                   "coverage_80")},
         "dm_p_value": overall[m]["dm"]["p_value"] if overall[m]["dm"] else None,
         "champion": m == entry["champion"]["model"]}
        for m in entry["backtest"]["models"]
    ])


def anomalies(lake_dir: Path, ticker: str) -> pd.DataFrame:
    """``gold/anomalies`` rows of ``ticker``, newest first."""
    frame = read_table(GOLD_ANOMALIES, lake_dir).to_pandas()
    return frame[frame["ticker"] == ticker].sort_values("window_start", ascending=False)
