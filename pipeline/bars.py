"""OHLCV bars as mergeable partial aggregates, in Arrow (no Spark, no pandas).

Gold's bars are built in two steps that use one function, :func:`combine_bars`:

1. On each executor, a task's Silver ticks become one *partial bar* per (interval, ticker,
   window) (:func:`partial_bars`): each tick is a bar of its own (open = high = low = close =
   its price), and the task's bars of one key are combined.
2. On the driver, the tasks' partial bars of one key are combined again (a few rows per key),
   then MERGEd into the stored bars with the same rules (:data:`pipeline.gold.BAR_MERGE`).

The rules, which make the result independent of how ticks are split into tasks and
micro-batches: open = price of the first tick by (event time, ``seq``, ``tick_id``), close =
of the last; high = max, low = min; volume, exact volume, notional (Σ price x exact volume),
Σ price and trade count are summed. ``tests/unit/test_bars.py`` checks that any split gives
the bars of the whole.

Windows: intraday windows are aligned on the UTC epoch (as Spark's ``window()``); a ``1d``
bar is the ticker's trade date (:func:`config.instruments.trading_date`: exchange-local date
for equities and indices, FX rolling at 17:00 New York, futures at 18:00 New York, crypto the
UTC date), stored from 00:00 UTC of that date to the next.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from config.instruments import trading_day_rule
from config.tables import DAY_S, GOLD_BARS_1M, UTC_TS, VOLUME_DECIMAL, bar_interval_seconds

KEYS = ["interval", "ticker", "window_start"]
"""A partial bar's key: the bar interval (``1m``, ``1d``, ...), the ticker, the window start."""

PARTIAL_SCHEMA = pa.schema([pa.field("interval", pa.string()), *GOLD_BARS_1M.schema])
"""Columns of a partial bar: ``interval`` and Gold's bar columns (:func:`config.tables.bar_table`,
the same for every interval). Times are UTC, volumes in units of the instrument (shares, coins, base
currency), prices in its quote currency."""

TICK_COLUMNS = ["ticker", "event_time", "seq", "tick_id", "price", "volume", "volume_decimal"]
"""The Silver columns a bar needs (``volume_decimal`` may be missing or null: ticks a v1
release stored, whose ``volume`` is exact)."""

_OPEN = ["open", "open_time", "open_seq", "open_tick_id"]
_CLOSE = ["close", "close_time", "close_seq", "close_tick_id"]
_SUMS = ["volume", "volume_decimal", "notional", "price_sum", "trade_count"]


def trading_dates(tickers: pa.Array[Any] | pa.ChunkedArray[Any],
                  times: pa.Array[Any] | pa.ChunkedArray[Any]) -> pa.Array[Any]:
    """Each row's trade date (``date32``) from its ticker and UTC event time
    (:func:`config.instruments.trading_date`, vectorised per rule: one pass per time zone and
    roll among the tickers present).

    Raises:
        pyarrow.ArrowInvalid: a time zone the system's tz database lacks.
    """
    tickers = pa.chunked_array([tickers]) if isinstance(tickers, pa.Array) else tickers
    times = pa.chunked_array([times]) if isinstance(times, pa.Array) else times
    by_rule: dict[tuple[str, int], list[str]] = defaultdict(list)
    for ticker in pc.unique(tickers).to_pylist():
        by_rule[trading_day_rule(str(ticker))].append(str(ticker))
    dates = pa.nulls(len(times), pa.date32())
    for (zone, roll_hours), members in by_rule.items():
        zoned: Any = times.cast(pa.timestamp("us", tz=zone))
        local = pc.local_timestamp(zoned)
        if roll_hours:
            local = pc.add(local, pa.scalar(timedelta(hours=roll_hours), pa.duration("us")))
        mine = pc.is_in(tickers, pa.array(members, pa.string()))
        dates = pc.if_else(mine, local.cast(pa.date32()), dates)
    return dates.combine_chunks() if isinstance(dates, pa.ChunkedArray) else dates


def window_bounds(ticks: pa.Table, interval: str) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """(window_start, window_end) of each tick for bars of ``interval`` (UTC timestamps).

    Raises:
        ValueError: an unknown interval.
    """
    seconds = bar_interval_seconds(interval)
    if seconds == DAY_S:
        days = trading_dates(ticks.column("ticker"), ticks.column("event_time"))
        start = pa.array(days.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
                         * DAY_S * 1_000_000, pa.int64())
    else:
        step = seconds * 1_000_000
        micros = ticks.column("event_time").cast(pa.int64()).to_numpy()
        start = pa.array(np.floor_divide(micros, step) * step, pa.int64())
    end = pc.add(start, pa.scalar(seconds * 1_000_000, pa.int64()))
    return start.cast(UTC_TS), end.cast(UTC_TS)


def _as_bars(ticks: pa.Table, interval: str, updated_at: datetime) -> pa.Table:
    """Each tick as a bar of its own in ``interval``'s window (not yet combined)."""
    start, end = window_bounds(ticks, interval)
    whole = ticks.column("volume").cast(VOLUME_DECIMAL)
    exact = (pc.coalesce(ticks.column("volume_decimal").cast(VOLUME_DECIMAL), whole)
             if "volume_decimal" in ticks.column_names else whole)
    price = ticks.column("price")
    n = ticks.num_rows
    columns: dict[str, Any] = {
        "interval": pa.array([interval] * n, pa.string()), "ticker": ticks.column("ticker"),
        "window_start": start, "window_end": end,
        "open": price, "high": price, "low": price, "close": price,
        "volume": ticks.column("volume"), "trade_count": pa.array(np.ones(n, np.int64)),
        "open_time": ticks.column("event_time"), "open_seq": ticks.column("seq"),
        "open_tick_id": ticks.column("tick_id"),
        "close_time": ticks.column("event_time"), "close_seq": ticks.column("seq"),
        "close_tick_id": ticks.column("tick_id"),
        "notional": pc.multiply(price, exact.cast(pa.float64())), "price_sum": price,
        "volume_decimal": exact, "updated_at": pa.array([updated_at] * n, UTC_TS),
    }
    columns["vwap"] = columns["avg_price"] = pa.nulls(n, pa.float64())  # set by combine_bars
    return pa.table({name: columns[name] for name in PARTIAL_SCHEMA.names}).cast(PARTIAL_SCHEMA)


def partial_bars(ticks: pa.Table, intervals: tuple[str, ...], updated_at: datetime) -> pa.Table:
    """Silver ticks -> their partial bars of every interval of ``intervals``.

    Args:
        ticks: rows with :data:`TICK_COLUMNS` (``event_time`` a UTC timestamp; other columns
            are ignored).
        intervals: bar intervals (:func:`config.tables.bar_interval_seconds`).
        updated_at: stamped on every bar (UTC).

    Returns:
        :data:`PARTIAL_SCHEMA` rows, one per (interval, ticker, window) the ticks touch.

    Raises:
        ValueError: an unknown interval.
    """
    if not ticks.num_rows:
        return PARTIAL_SCHEMA.empty_table()
    return combine_bars(pa.concat_tables([_as_bars(ticks, i, updated_at) for i in intervals]))


def _ascending(names: list[str]) -> list[tuple[str, Literal["ascending", "descending"]]]:
    return [(name, "ascending") for name in names]


def combine_bars(parts: pa.Table) -> pa.Table:
    """Partial bars of the same (interval, ticker, window_start) -> one, by the rules in the
    module docstring; ``vwap`` (Σ notional / Σ exact volume, null when that is 0) and
    ``avg_price`` (Σ price / trade count) are derived from the sums, ``updated_at`` is the
    latest.

    Args:
        parts: :data:`PARTIAL_SCHEMA` rows, in any order.

    Returns:
        :data:`PARTIAL_SCHEMA` rows, one per key, sorted by key.
    """
    if not parts.num_rows:
        return PARTIAL_SCHEMA.empty_table()
    order = _ascending(KEYS)
    opens = (parts.select([*KEYS, *_OPEN])
             .sort_by(order + _ascending(_OPEN[1:]))
             .group_by(KEYS, use_threads=False).aggregate([(c, "first") for c in _OPEN]))
    closes = (parts.select([*KEYS, *_CLOSE])
              .sort_by(order + _ascending(_CLOSE[1:]))
              .group_by(KEYS, use_threads=False).aggregate([(c, "last") for c in _CLOSE]))
    totals = parts.group_by(KEYS, use_threads=False).aggregate(
        [("high", "max"), ("low", "min"), ("window_end", "max"), ("updated_at", "max"),
         *[(c, "sum") for c in _SUMS]])
    # the three group_bys see the same keys in the same sorted order (the first two sort
    # explicitly; totals is sorted below), so their rows line up one to one
    totals = totals.sort_by(order)
    opens, closes = opens.sort_by(order), closes.sort_by(order)
    column = {f"{c}_first": opens.column(f"{c}_first") for c in _OPEN}
    column |= {f"{c}_last": closes.column(f"{c}_last") for c in _CLOSE}
    exact = totals.column("volume_decimal_sum").cast(VOLUME_DECIMAL)
    positive = pc.greater(exact, pa.scalar(0, VOLUME_DECIMAL))
    notional = totals.column("notional_sum")
    out: dict[str, Any] = {
        **{k: totals.column(k) for k in KEYS},
        "window_end": totals.column("window_end_max"),
        **{c: column[f"{c}_first"] for c in _OPEN},
        **{c: column[f"{c}_last"] for c in _CLOSE},
        "high": totals.column("high_max"), "low": totals.column("low_min"),
        **{c: totals.column(f"{c}_sum") for c in _SUMS},
        "vwap": pc.if_else(positive, pc.divide(notional, exact.cast(pa.float64())), None),
        "avg_price": pc.divide(totals.column("price_sum_sum"),
                               totals.column("trade_count_sum").cast(pa.float64())),
        "updated_at": totals.column("updated_at_max"),
    }
    return pa.table([out[f.name].cast(f.type) for f in PARTIAL_SCHEMA], schema=PARTIAL_SCHEMA)


def daily_metrics(daily_bars: pa.Table) -> pa.Table:
    """Gold's daily metrics from (partial) ``1d`` bars: per ticker and trade date, avg_price
    (mean tick price), total_volume (whole units), trades (ticks), updated_at, price_sum.

    Args:
        daily_bars: :data:`PARTIAL_SCHEMA` rows of interval ``1d``.

    Returns:
        ``gold/daily_metrics`` rows (``trading_date`` a ``date32``).
    """
    columns: dict[str, Any] = {
        "trading_date": daily_bars.column("window_start").cast(pa.timestamp("us"))
        .cast(pa.date32()),
        "ticker": daily_bars.column("ticker"),
        "avg_price": daily_bars.column("avg_price"),
        "total_volume": daily_bars.column("volume"),
        "trades": daily_bars.column("trade_count"),
        "updated_at": daily_bars.column("updated_at"),
        "price_sum": daily_bars.column("price_sum"),
    }
    return pa.table(columns)
