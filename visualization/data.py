"""Data access and derived figures for the dashboard (pure functions, testable without Streamlit)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from config.tables import (
    GOLD_ANOMALIES,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    GOLD_PREDICTIONS,
    SILVER_QUARANTINE,
    Table,
    bar_table,
)
from storage.delta import open_table, read_table
from storage.progress import latest_progress, progress_records

INDICATORS = {"1d": GOLD_INDICATORS_1D, "1h": GOLD_INDICATORS_1H}
"""Bar interval -> its indicator table (there is none for 1m bars)."""
BAR_COLUMNS = ["ticker", "window_start", "open", "high", "low", "close", "volume", "vwap",
               "trade_count"]


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


def table_version(table: Table, lake_dir: Path) -> int:
    """The table's current Delta version, -1 if it does not exist (the dashboard's cache key:
    a read is redone only when its table has a new version)."""
    delta = open_table(table, lake_dir)
    return -1 if delta is None else int(delta.version())


def _between(ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pc.Expression:
    where = pc.field("ticker") == ticker
    if start is not None:
        where = where & (pc.field("window_start") >= start.to_pydatetime())
    if end is not None:
        where = where & (pc.field("window_start") < end.to_pydatetime())
    return where


def bar_tickers(lake_dir: Path, interval: str = "1d") -> list[str]:
    """Tickers with bars at ``interval``, sorted."""
    column = read_table(bar_table(interval), lake_dir, ["ticker"]).column("ticker")
    return sorted(str(t) for t in pc.unique(column).to_pylist() if t is not None)


def bar_span(lake_dir: Path, interval: str, ticker: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last ``window_start`` (UTC) of ``ticker``'s bars at ``interval``, or None."""
    column = read_table(bar_table(interval), lake_dir, ["window_start"],
                        where=pc.field("ticker") == ticker).column("window_start")
    if not len(column):
        return None
    bounds = pc.min_max(column)
    return pd.Timestamp(bounds["min"].as_py()), pd.Timestamp(bounds["max"].as_py())


def read_bars(lake_dir: Path, interval: str, ticker: str, start: pd.Timestamp | None = None,
              end: pd.Timestamp | None = None) -> pd.DataFrame:
    """``ticker``'s bars at ``interval`` with ``start <= window_start < end`` (UTC), in time
    order; the filter is pushed into the Delta scan (files whose statistics exclude the range
    are not read)."""
    frame = read_table(bar_table(interval), lake_dir, BAR_COLUMNS,
                       where=_between(ticker, start, end)).to_pandas()
    return frame.sort_values("window_start").reset_index(drop=True)


def read_indicators(lake_dir: Path, interval: str, ticker: str,
                    start: pd.Timestamp | None = None,
                    end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Rows of ``gold/indicators_<interval>`` for ``ticker`` in the range (empty for 1m)."""
    table = INDICATORS.get(interval)
    if table is None:
        return pd.DataFrame()
    frame = read_table(table, lake_dir, where=_between(ticker, start, end)).to_pandas()
    return frame.sort_values("window_start").reset_index(drop=True)


def read_anomalies(lake_dir: Path, ticker: str, start: pd.Timestamp | None = None,
                   end: pd.Timestamp | None = None) -> pd.DataFrame:
    """``gold/anomalies`` rows of ``ticker`` in the range, newest first."""
    frame = read_table(GOLD_ANOMALIES, lake_dir, where=_between(ticker, start, end)).to_pandas()
    return frame.sort_values("window_start", ascending=False).reset_index(drop=True)


def latest_forecasts(lake_dir: Path, ticker: str) -> pd.DataFrame:
    """The newest forecast of each horizon for ``ticker`` (rows of ``gold/predictions``;
    older rows without a horizon count as 1 day ahead)."""
    frame = read_table(GOLD_PREDICTIONS, lake_dir,
                       where=pc.field("ticker") == ticker).to_pandas()
    if frame.empty:
        return frame
    frame["horizon"] = frame["horizon"].fillna(1).astype(int)
    frame = frame.sort_values(["as_of", "created_at"], ascending=False)
    return frame.drop_duplicates("horizon").sort_values("horizon").reset_index(drop=True)


def quarantine_by_day(lake_dir: Path) -> pd.DataFrame:
    """Quarantined records per UTC day and reason: columns day, reason, records."""
    frame = read_table(SILVER_QUARANTINE, lake_dir, ["reason", "quarantined_at"]).to_pandas()
    if frame.empty:
        return pd.DataFrame({"day": [], "reason": [], "records": []})
    frame["day"] = pd.to_datetime(frame["quarantined_at"], utc=True).dt.date
    return (frame.groupby(["day", "reason"]).size().rename("records").reset_index()
            .sort_values(["day", "reason"]).reset_index(drop=True))


def quarantine_samples(lake_dir: Path, per_reason: int = 3) -> pd.DataFrame:
    """The newest ``per_reason`` quarantined records of each reason, raw value decoded as
    UTF-8 text (undecodable bytes shown as U+FFFD): columns reason, detail, raw_value, topic,
    partition, offset, quarantined_at."""
    frame = read_table(SILVER_QUARANTINE, lake_dir).to_pandas()
    if frame.empty:
        return frame
    frame = frame.sort_values("quarantined_at", ascending=False).groupby("reason").head(
        per_reason)
    frame["raw_value"] = [v.decode("utf-8", "replace") if v is not None else None
                          for v in frame["raw_value"]]
    columns = ["reason", "detail", "raw_value", "topic", "partition", "offset",
               "quarantined_at"]
    return frame[columns].sort_values(["reason", "quarantined_at"]).reset_index(drop=True)


def job_table(lake_dir: Path, now: datetime) -> pd.DataFrame:
    """Per streaming job its newest micro-batch: job, batch_id, at (UTC), age_s, rows,
    rows_per_s, duration_s (from ``<lake>/_progress``)."""
    rows = []
    for job, p in latest_progress(lake_dir).items():
        at = pd.Timestamp(p["timestamp"]) if p.get("timestamp") else None
        rows.append({"job": job, "batch_id": p.get("batch_id"), "at": at,
                     "age_s": (now - at).total_seconds() if at is not None else None,
                     "rows": p.get("rows"), "rows_per_s": p.get("processed_rows_per_s"),
                     "duration_s": (p.get("batch_duration_ms") or 0) / 1000})
    return pd.DataFrame(rows, columns=["job", "batch_id", "at", "age_s", "rows", "rows_per_s",
                                       "duration_s"])


def batch_history(lake_dir: Path, jobs: tuple[str, ...] = ("bronze", "silver", "gold", "live"),
                  last: int = 200) -> pd.DataFrame:
    """The newest ``last`` progress records of each job: job, timestamp, batch_id, rows,
    batch_duration_ms."""
    rows = [{"job": job, **{k: r.get(k) for k in ("timestamp", "batch_id", "rows",
                                                  "batch_duration_ms")}}
            for job in jobs for r in progress_records(lake_dir, job)[-last:]]
    return pd.DataFrame(rows, columns=["job", "timestamp", "batch_id", "rows",
                                       "batch_duration_ms"])
