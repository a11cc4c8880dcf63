"""Gold: OHLCV bars (``TICKLAKE_BAR_INTERVALS``, default 1m, 5m, 1h, 1d), daily metrics,
indicators and anomalies from Silver ticks.

Runnable as ``spark-submit pipeline/gold.py [--lake DIR] [--until-caught-up]``.

The work of a micro-batch depends on the batch, not on the history the lake holds:

1. **Bars and daily metrics** are aggregated from the batch's own ticks, in Arrow on the
   executors (:func:`batch_partial_bars`, :mod:`pipeline.bars`), into partial bars that carry
   what a merge needs (the open and close ticks' (event time, seq, tick_id), Σ price x volume,
   Σ price), then MERGEd into the stored bars (:data:`BAR_MERGE`): earlier open, later close,
   larger high, smaller low, summed volume/notional/prices/trades. The daily metrics are the
   ``1d`` partial bars' sums (:func:`pipeline.bars.daily_metrics`). Silver is never re-read,
   and a bar is always the bar of every tick seen so far, whatever the micro-batch
   boundaries.
2. **Indicators and anomalies** of each touched ticker are recomputed from its first touched
   bar on, from a bounded tail (:mod:`pipeline.gold_indicators`): the 40 bars before it and the
   recursive state stored with the first of them, equal to a recomputation over the whole
   history.

Each table records the micro-batch id in its commit, so a replayed batch changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from config.settings import Settings
from config.tables import (
    GOLD_ANOMALIES,
    GOLD_DAILY_METRICS,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    SILVER_TICKS,
    bar_tables,
)
from pipeline import gold_indicators
from pipeline.bars import PARTIAL_SCHEMA, TICK_COLUMNS, combine_bars, daily_metrics, partial_bars
from pipeline.runner import Job, main
from pipeline.schemas import table_stream
from pipeline.workers import freeze_imports
from pipeline.writes import job_sink

log = logging.getLogger(__name__)

_OPEN_EARLIER = ("(s.open_time < t.open_time OR (s.open_time = t.open_time AND "
                 "(s.open_seq < t.open_seq OR (s.open_seq = t.open_seq AND "
                 "s.open_tick_id < t.open_tick_id))))")
_CLOSE_LATER = ("(s.close_time > t.close_time OR (s.close_time = t.close_time AND "
                "(s.close_seq > t.close_seq OR (s.close_seq = t.close_seq AND "
                "s.close_tick_id > t.close_tick_id))))")


_STORED_EXACT = "COALESCE(t.volume_decimal, CAST(t.volume AS DECIMAL(38, 8)))"
"""A stored bar's exact volume: a bar a v1 release wrote has no ``volume_decimal``, and all its
ticks had whole volumes, so its ``volume`` is exact."""


def _pick(condition: str, columns: tuple[str, ...]) -> dict[str, str]:
    return {c: f"CASE WHEN {condition} THEN s.{c} ELSE t.{c} END" for c in columns}


BAR_MERGE: dict[str, str] = {
    **_pick(_OPEN_EARLIER, ("open", "open_time", "open_seq", "open_tick_id")),
    **_pick(_CLOSE_LATER, ("close", "close_time", "close_seq", "close_tick_id")),
    "high": "CASE WHEN s.high > t.high THEN s.high ELSE t.high END",
    "low": "CASE WHEN s.low < t.low THEN s.low ELSE t.low END",
    "volume": "t.volume + s.volume",
    "volume_decimal": f"{_STORED_EXACT} + s.volume_decimal",
    "notional": "t.notional + s.notional",
    "price_sum": "t.price_sum + s.price_sum",
    "trade_count": "t.trade_count + s.trade_count",
    "vwap": f"CASE WHEN {_STORED_EXACT} + s.volume_decimal > 0 THEN (t.notional + s.notional) / "
            f"CAST({_STORED_EXACT} + s.volume_decimal AS DOUBLE) ELSE NULL END",
    "avg_price": "(t.price_sum + s.price_sum) / (t.trade_count + s.trade_count)",
    "window_end": "s.window_end",
    "updated_at": "s.updated_at",
}
"""How a stored bar (``t``) and a micro-batch's partial bar of the same key (``s``) combine."""

METRICS_MERGE: dict[str, str] = {
    "total_volume": "t.total_volume + s.total_volume",
    "trades": "t.trades + s.trades",
    "price_sum": "t.price_sum + s.price_sum",
    "avg_price": "(t.price_sum + s.price_sum) / (t.trades + s.trades)",
    "updated_at": "s.updated_at",
}
"""How stored daily metrics and a micro-batch's partial metrics of the same key combine."""


def _first_touched(daily_bars: pa.Table) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Per ticker, from the batch's partial daily bars: the earliest ``open_time`` (its first
    tick, UTC) and the earliest ``window_start`` (its first touched trade date, which can be
    a day before the first tick's UTC date: a tick at 21:00 New York belongs to that day)."""
    rows = daily_bars.group_by("ticker").aggregate(
        [("open_time", "min"), ("window_start", "min")]).to_pylist()
    return ({str(r["ticker"]): r["open_time_min"] for r in rows},
            {str(r["ticker"]): r["window_start_min"] for r in rows})


def _task_partial_bars(
    batches: Iterator[pa.RecordBatch], intervals: tuple[str, ...], updated_at: datetime,
) -> Iterator[pa.RecordBatch]:
    """mapInArrow function: one task's ticks -> its partial bars (:func:`pipeline.bars.partial_bars`),
    Arrow batch by Arrow batch, so a task holds its partial bars, never all its ticks."""
    freeze_imports()  # once per Python worker: pipeline.workers
    parts = [partial_bars(pa.Table.from_batches([b]), intervals, updated_at)
             for b in batches if b.num_rows]
    if parts:
        yield from combine_bars(pa.concat_tables(parts)).to_batches()


def batch_partial_bars(ticks: DataFrame, intervals: tuple[str, ...],
                       updated_at: datetime) -> pa.Table:
    """The partial bars of ``ticks`` (Silver rows) for ``intervals``, in one Spark job: each
    task aggregates its ticks in Arrow on the executor, and only those aggregates (at most
    one row per task and key) come to the driver, where they are combined
    (:func:`pipeline.bars.combine_bars`).

    Returns:
        :data:`pipeline.bars.PARTIAL_SCHEMA` rows, one per (interval, ticker, window).
    """
    slim = ticks.select(*[c for c in TICK_COLUMNS if c in ticks.columns])
    per_task = slim.mapInArrow(partial(_task_partial_bars, intervals=intervals,
                                       updated_at=updated_at),
                               from_arrow_schema(PARTIAL_SCHEMA)).toArrow()
    return combine_bars(per_task.cast(PARTIAL_SCHEMA))


def ticks_to_partial_bars(intervals: tuple[str, ...], updated_at: datetime) -> tuple[
        Callable[[pa.Table], pa.Table], Callable[[pa.Table], pa.Table]]:
    """``(function, combine)`` of a :class:`pipeline.writes.TaskAggregate` that turns the
    Silver ticks a task writes into their partial bars (live mode: the ticks are aggregated
    in the task that writes them, not read back).

    ``function``: Silver rows (at least :data:`pipeline.bars.TICK_COLUMNS`) -> partial bars;
    ``combine``: the tasks' partial bars -> the batch's (one per interval, ticker, window).
    """
    def function(ticks: pa.Table) -> pa.Table:
        return partial_bars(ticks.select(TICK_COLUMNS), intervals, updated_at)

    def combine(parts: pa.Table) -> pa.Table:
        return combine_bars(parts.cast(PARTIAL_SCHEMA))

    return function, combine


def gold_batch_writer(
    settings: Settings, app_id: str
) -> Callable[[Callable[[datetime], pa.Table], int], None]:
    """:func:`gold_writer`'s function, given how to get the batch's partial bars.

    The returned function takes (``partials``: ``updated_at`` (UTC) -> the batch's
    :data:`pipeline.bars.PARTIAL_SCHEMA` rows, called only if some Gold table has not
    committed the batch yet; batch id).
    """
    lake = settings.lake_dir
    bars = {name: job_sink(table, settings, app_id)
            for name, table in bar_tables(settings.bar_intervals).items()}
    metrics = job_sink(GOLD_DAILY_METRICS, settings, app_id)
    derived = {table.name: job_sink(table, settings, app_id)
               for table in (GOLD_INDICATORS_1D, GOLD_INDICATORS_1H, GOLD_ANOMALIES)}
    sinks = [*bars.values(), metrics, *derived.values()]

    def write(partials_of: Callable[[datetime], pa.Table], batch_id: int) -> None:
        if all(sink.committed(batch_id) for sink in sinks):
            return
        started = time.monotonic()
        partials = partials_of(datetime.now(UTC))
        aggregated = time.monotonic()
        by_interval = {interval: partials.filter(pc.equal(partials.column("interval"),
                                                          pa.scalar(interval)))
                       .drop_columns(["interval"]) for interval in bars}
        for interval, sink in bars.items():  # the finest first: the freshest view soonest
            sink.upsert(by_interval[interval], batch_id, updates=BAR_MERGE)
        metrics.upsert(daily_metrics(by_interval["1d"]), batch_id, updates=METRICS_MERGE)
        merged = time.monotonic()
        first_touched, first_day = _first_touched(by_interval["1d"])
        if first_touched:
            gold_indicators.refresh(lake, first_touched, derived, batch_id, first_day,
                                        {sink.table.name: sink for sink in bars.values()})
        done = time.monotonic()
        log.info("gold micro-batch %d: %d partial bars aggregated in %.1f s, merged in %.1f s; "
                 "indicators of %d tickers refreshed in %.1f s", batch_id, partials.num_rows,
                 aggregated - started, merged - aggregated, len(first_touched), done - merged)

    return write


def gold_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: merge the batch's partial bars and metrics, then recompute the
    touched tickers' indicators and anomalies from a bounded tail (see the module docstring).

    Only aggregates reach the driver: each task's partial bars per touched (interval, ticker,
    window), never the batch's ticks.
    """
    write = gold_batch_writer(settings, app_id)
    intervals = tuple(bar_tables(settings.bar_intervals))

    def run(batch: DataFrame, batch_id: int) -> None:
        write(lambda updated_at: batch_partial_bars(batch, intervals, updated_at), batch_id)

    return run


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the ticks each Silver commit added."""
    return table_stream(spark, SILVER_TICKS, settings, JOB.name)


JOB = Job("gold", stream, gold_writer, excludes=("live",))
"""The gold job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/gold.py: import this file as its module
    from pipeline import gold as this_job

    main([this_job.JOB])
