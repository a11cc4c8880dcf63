"""Gold's indicators and anomalies, recomputed per micro-batch from a bounded tail of bars.

For each ticker a micro-batch touched, from its first touched bar on (``day0`` for daily,
``hour0`` for hourly bars):

* ``gold/indicators_1d``: the :data:`~pipeline.indicators.TAIL_BARS` daily bars before
  ``day0`` plus every bar from ``day0``, continued from the recursive state stored with the
  tail's first bar (:data:`~pipeline.indicators.CARRY_COLUMNS`); equal to a recomputation
  over the whole history (``tests/unit/test_indicators.py``). A ticker with fewer bars before
  ``day0`` in the look-back is recomputed from its first bar (its history is that short).
* ``gold/anomalies``: the flags from ``day0`` on, replacing the ticker's stored ones there;
  their 30-day windows lie inside the tail.
* ``gold/indicators_1h``: the 4 hourly bars before ``hour0`` plus every bar from it (no
  recursion: windows of 3 returns).

Reads are pruned by ``window_start`` (file statistics), so their cost follows the touched
range, not the history.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from config.tables import (
    GOLD_ANOMALIES,
    GOLD_BARS_1D,
    GOLD_BARS_1H,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    UTC_TS,
    Table,
)
from pipeline.indicators import (
    CARRY_COLUMNS,
    TAIL_BARS,
    anomalies,
    indicators_1d,
    indicators_1h,
)
from storage.delta import read_table
from storage.sink import DeltaSink

log = logging.getLogger(__name__)

DAILY_LOOKBACK = timedelta(days=120)
"""Calendar days read before ``day0`` to find :data:`TAIL_BARS` trading days."""
HOURLY_TAIL_BARS = 4
HOURLY_LOOKBACK = timedelta(days=10)


Handles = dict[str, DeltaSink]
"""Sinks by table name (Gold's), whose open handles are read instead of loading the tables."""


def _since(table: Table, lake_dir: Path, start: datetime, tickers: list[str],
           handles: Handles) -> pd.DataFrame:
    """Rows of ``tickers`` with ``window_start >= start`` (the time filter prunes files)."""
    sink = handles.get(table.name)
    data = read_table(table, lake_dir, where=pc.field("window_start") >= pa.scalar(start, UTC_TS),
                      delta=sink.snapshot() if sink is not None else None)
    data = data.filter(pc.is_in(data.column("ticker"), pa.array(tickers, pa.string())))
    return data.to_pandas()


def _whole(table: Table, lake_dir: Path, tickers: list[str], handles: Handles) -> pd.DataFrame:
    """Every row of ``tickers`` (short histories), in one read (the filter is pushed into the
    scan), sorted by ticker and ``window_start``."""
    sink = handles.get(table.name)
    wanted = pa.array(tickers, pa.string())
    data = read_table(table, lake_dir, where=pc.field("ticker").isin(wanted),
                      delta=sink.snapshot() if sink is not None else None)
    data = data.filter(pc.is_in(data.column("ticker"), wanted))
    return data.sort_by([("ticker", "ascending"), ("window_start", "ascending")]).to_pandas()


def _histories(table: Table, lake_dir: Path, tails: dict[str, pd.DataFrame | None],
               handles: Handles) -> dict[str, pd.DataFrame]:
    """``tails`` with each None (a ticker whose tail is not enough) replaced by the ticker's
    whole history: one read of ``table`` for all of them (:func:`_whole`)."""
    short = sorted(t for t, tail in tails.items() if tail is None)
    whole = _whole(table, lake_dir, short, handles) if short else None
    out = {}
    for ticker, tail in tails.items():
        if tail is None:
            assert whole is not None
            tail = whole[whole["ticker"] == ticker].reset_index(drop=True)
        out[ticker] = tail
    return out


def _floor(moment: datetime, unit: str) -> datetime:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.floor(unit).to_pydatetime()


def daily_update(
    lake_dir: Path, day0: dict[str, datetime], handles: Handles | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Indicator rows and anomaly flags of each ticker from its ``day0`` on (``handles``: see
    :data:`Handles`; default: load each table).

    Returns:
        ``(indicators, flags)`` with the columns of ``gold/indicators_1d`` and
        ``gold/anomalies``.
    """
    handles = handles or {}
    tickers = sorted(day0)
    start = min(day0.values()) - DAILY_LOOKBACK
    bars = _since(GOLD_BARS_1D, lake_dir, start, tickers, handles)
    stored = _since(GOLD_INDICATORS_1D, lake_dir, start, tickers, handles)
    tails: dict[str, pd.DataFrame | None] = {}
    carries: dict[str, dict[str, Any] | None] = {}
    for ticker in tickers:
        mine = bars[bars["ticker"] == ticker].sort_values("window_start").reset_index(drop=True)
        before = mine[mine["window_start"] < day0[ticker]]
        carries[ticker], tails[ticker] = None, None  # a short history: from the first bar
        if len(before) >= TAIL_BARS:
            first = before["window_start"].iloc[-TAIL_BARS]
            state = stored[(stored["ticker"] == ticker) & (stored["window_start"] == first)]
            if len(state) == 1 and int(state["bar_index"].iloc[0]) >= TAIL_BARS:
                carries[ticker] = {c: state[c].iloc[0] for c in CARRY_COLUMNS}
                tails[ticker] = mine[mine["window_start"] >= first]
    rows, flags = [], []
    for ticker, mine in _histories(GOLD_BARS_1D, lake_dir, tails, handles).items():
        computed = indicators_1d(mine, carries[ticker])
        rows.append(computed[computed["window_start"] >= day0[ticker]])
        found = anomalies(computed)
        flags.append(found[found["window_start"] >= day0[ticker]])
    return pd.concat(rows, ignore_index=True), pd.concat(flags, ignore_index=True)


def hourly_update(lake_dir: Path, hour0: dict[str, datetime],
                  handles: Handles | None = None) -> pd.DataFrame:
    """``gold/indicators_1h`` rows of each ticker from its ``hour0`` on (``handles``: see
    :data:`Handles`)."""
    handles = handles or {}
    tickers = sorted(hour0)
    bars = _since(GOLD_BARS_1H, lake_dir, min(hour0.values()) - HOURLY_LOOKBACK, tickers,
                  handles)
    tails: dict[str, pd.DataFrame | None] = {}
    for ticker in tickers:
        mine = bars[bars["ticker"] == ticker].sort_values("window_start").reset_index(drop=True)
        before = mine[mine["window_start"] < hour0[ticker]]
        tails[ticker] = (mine.iloc[len(before) - HOURLY_TAIL_BARS:]
                         if len(before) >= HOURLY_TAIL_BARS else None)
    rows = []
    for ticker, mine in _histories(GOLD_BARS_1H, lake_dir, tails, handles).items():
        computed = indicators_1h(mine)
        rows.append(computed[computed["window_start"] >= hour0[ticker]])
    return pd.concat(rows, ignore_index=True)


def _scope(day0: dict[str, datetime]) -> str:
    """SQL predicate (alias ``t``) of the anomaly rows a refresh replaces."""
    parts = []
    for ticker, start in sorted(day0.items()):
        quoted = ticker.replace("'", "''")
        parts.append(f"(t.ticker = '{quoted}' AND t.window_start >= "
                     f"'{start.strftime('%Y-%m-%d %H:%M:%S')}')")
    return " OR ".join(parts)


def refresh(lake_dir: Path, first_touched: dict[str, Any], sinks: dict[str, DeltaSink],
            batch_id: int, first_day: dict[str, Any] | None = None,
            sources: dict[str, DeltaSink] | None = None) -> None:
    """Recompute and MERGE the indicators and anomalies of the touched tickers.

    Args:
        lake_dir: the lake.
        first_touched: ticker -> earliest event time (UTC) of its ticks in the micro-batch.
        first_day: ticker -> ``window_start`` of its first touched daily bar (its trade date,
            :func:`pipeline.bars.trading_dates`); default the UTC day of
            ``first_touched``.
        sinks: the sinks of ``gold.indicators_1d``, ``gold.indicators_1h``, ``gold.anomalies``.
        batch_id: the micro-batch id recorded with each commit.
        sources: sinks of the bar tables by table name (Gold's), whose handles are read
            instead of loading the tables again.
    """
    handles = {**(sources or {}), **sinks}
    day0 = {t: _floor((first_day or {}).get(t, v), "D") for t, v in first_touched.items()}
    hour0 = {t: _floor(v, "h") for t, v in first_touched.items()}
    daily_sink = sinks[GOLD_INDICATORS_1D.name]
    flag_sink = sinks[GOLD_ANOMALIES.name]
    hourly_sink = sinks[GOLD_INDICATORS_1H.name]
    if not (daily_sink.committed(batch_id) and flag_sink.committed(batch_id)):
        daily, flags = daily_update(lake_dir, day0, handles)
        daily_sink.upsert(pa.Table.from_pandas(daily, preserve_index=False), batch_id)
        flag_sink.upsert(pa.Table.from_pandas(flags, preserve_index=False), batch_id,
                         delete_unmatched_where=_scope(day0))
    if not hourly_sink.committed(batch_id):
        hourly = hourly_update(lake_dir, hour0, handles)
        hourly_sink.upsert(pa.Table.from_pandas(hourly, preserve_index=False), batch_id)
