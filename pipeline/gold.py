"""Gold: OHLCV bars (``TICKLAKE_BAR_INTERVALS``, default 1m, 5m, 1h, 1d), daily metrics,
indicators and anomalies from Silver ticks.

Runnable as ``spark-submit pipeline/gold.py [--lake DIR] [--until-caught-up]``.

The work of a micro-batch depends on the batch, not on the history the lake holds:

1. **Bars and daily metrics** are aggregated from the batch's own ticks on the executors
   (:func:`gold_bars`, :func:`gold_daily_metrics`) into partial bars that carry what a merge
   needs (the open and close ticks' (event time, seq, tick_id), Σ price x volume, Σ price),
   then MERGEd into the stored bars (:data:`BAR_MERGE`): earlier open, later close, larger
   high, smaller low, summed volume/notional/prices/trades. Silver is never re-read, and a bar
   is always the bar of every tick seen so far, whatever the micro-batch boundaries.
2. **Indicators and anomalies** of each touched ticker are recomputed from its first touched
   bar on, from a bounded tail (:mod:`pipeline.gold_indicators`): the 40 bars before it and the
   recursive state stored with the first of them, equal to a recomputation over the whole
   history.

Each table records the micro-batch id in its commit, so a replayed batch changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import reduce

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from config.instruments import (
    CRYPTO_PATTERN,
    FUTURES_ROLL_HOURS,
    FX_ROLL_HOURS,
    INDEX_MIC,
    MIC_TZ,
    NEW_YORK,
    YAHOO_SUFFIX_MIC,
)
from config.settings import Settings
from config.tables import (
    DAY_S,
    DEFAULT_BAR_INTERVALS,
    GOLD_ANOMALIES,
    GOLD_DAILY_METRICS,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    SILVER_TICKS,
    bar_interval_seconds,
    bar_tables,
)
from pipeline import gold_indicators
from pipeline.runner import Job, main
from pipeline.schemas import table_stream
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


def trading_date_column(ticker: Column, event_time: Column) -> Column:
    """Spark's form of :func:`config.instruments.trading_date`: each row's trade date (a
    ``DateType``) from its ticker and UTC event time, built from the same tables
    (:data:`~config.instruments.MIC_TZ`, the Yahoo suffixes and indices) so it runs in the JVM;
    ``tests/unit/test_spark_transforms.py`` checks the two agree. Needs the session time zone
    UTC (:mod:`pipeline.spark` sets it)."""
    def lookup(table: dict[str, str]) -> Column:
        return F.create_map(*[F.lit(x) for pair in table.items() for x in pair])

    suffix_tz = lookup({s: MIC_TZ[m] for s, m in YAHOO_SUFFIX_MIC.items()})
    index_tz = lookup({i: MIC_TZ[m] for i, m in INDEX_MIC.items()})
    suffix = F.regexp_extract(ticker, r"\.([A-Z]+)$", 1)
    zone = (F.when(ticker.startswith("^"), F.coalesce(index_tz[ticker], F.lit(NEW_YORK)))
            .when(ticker.endswith("=X") | ticker.endswith("=F"), F.lit(NEW_YORK))
            .when(ticker.rlike(f"^{CRYPTO_PATTERN}$"), F.lit("UTC"))
            .otherwise(F.coalesce(suffix_tz[suffix], F.lit(NEW_YORK))))
    roll = (F.when(ticker.startswith("^"), F.lit(0))
            .when(ticker.endswith("=X"), F.lit(FX_ROLL_HOURS))
            .when(ticker.endswith("=F"), F.lit(FUTURES_ROLL_HOURS)).otherwise(F.lit(0)))
    local = F.from_utc_timestamp(event_time, zone) + F.make_dt_interval(F.lit(0), roll)
    return F.to_date(local)


def gold_bars(ticks: DataFrame, interval: str) -> DataFrame:
    """Silver ticks -> OHLCV bars of ``interval`` (``1m``, ``5m``, ``1h``, ``1d``, ...: see
    :func:`config.tables.bar_interval_seconds`) per ticker.

    Intraday windows are aligned on the UTC epoch; a ``1d`` bar is the ticker's trade date
    (:func:`trading_date_column`: the exchange's local date, FX rolling at 17:00 New York,
    futures at 18:00 New York, crypto the UTC date), stored from 00:00 UTC of that date to the
    next. Columns: ticker;
    window_start, window_end (UTC); open (price of the first tick by event time), high, low,
    close (price of the last tick by event time; ties in event time broken by ``seq``, then
    ``tick_id``); volume (Σ of the ticks' whole-unit volumes); vwap (Σ price x exact volume /
    Σ exact volume, null when it is 0); trade_count (ticks); avg_price (mean tick price);
    updated_at; the merge state (open_/close_ time, seq, tick_id; notional; price_sum); and
    volume_decimal (Σ of the ticks' exact volumes, ``decimal(38, 8)``; a Silver row a v1
    release wrote has none, and its ``volume`` is exact). Over a micro-batch's ticks this is
    the batch's partial bar; over all ticks, the bar.

    Raises:
        ValueError: an unknown interval.
    """
    if bar_interval_seconds(interval) == DAY_S:  # the market's trade date, not the UTC day
        start = F.to_timestamp(trading_date_column(F.col("ticker"), F.col("event_time")))
        window = F.struct(start.alias("start"),
                          (start + F.make_dt_interval(F.lit(1))).alias("end"))
    else:
        window = F.window("event_time", f"{bar_interval_seconds(interval)} seconds")
    whole = F.col("volume").cast(DecimalType(38, 8))
    exact = (F.coalesce(F.col("volume_decimal"), whole) if "volume_decimal" in ticks.columns
             else whole)  # ticks shaped as a v1 release stored them
    order = F.struct("event_time", "seq", "tick_id")
    first = F.min_by(F.struct("price", "event_time", "seq", "tick_id"), order)
    last = F.max_by(F.struct("price", "event_time", "seq", "tick_id"), order)
    return (
        ticks.groupBy("ticker", window.alias("w"))
        .agg(
            first.alias("_open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            last.alias("_close"),
            F.sum("volume").cast("long").alias("volume"),
            F.sum(exact).cast(DecimalType(38, 8)).alias("volume_decimal"),
            F.sum(F.col("price") * exact.cast("double")).alias("notional"),
            F.count(F.lit(1)).alias("trade_count"),
            F.sum("price").alias("price_sum"),
        )
        .select(
            "ticker",
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            F.col("_open.price").alias("open"), "high", "low",
            F.col("_close.price").alias("close"), "volume",
            F.when(F.col("volume_decimal") > 0,
                   F.col("notional") / F.col("volume_decimal").cast("double")).alias("vwap"),
            "trade_count",
            (F.col("price_sum") / F.col("trade_count")).alias("avg_price"),
            F.current_timestamp().alias("updated_at"),
            F.col("_open.event_time").alias("open_time"), F.col("_open.seq").alias("open_seq"),
            F.col("_open.tick_id").alias("open_tick_id"),
            F.col("_close.event_time").alias("close_time"),
            F.col("_close.seq").alias("close_seq"), F.col("_close.tick_id").alias("close_tick_id"),
            "notional", "price_sum", "volume_decimal",
        )
    )


def all_partial_bars(ticks: DataFrame,
                     intervals: tuple[str, ...] = DEFAULT_BAR_INTERVALS) -> DataFrame:
    """:func:`gold_bars` of every interval of ``intervals`` in one DataFrame, with an
    ``interval`` column: one Spark job instead of one per interval."""
    frames = [gold_bars(ticks, interval).withColumn("interval", F.lit(interval))
              for interval in intervals]
    return reduce(DataFrame.unionByName, frames)


def _first_touched(daily_bars: pa.Table) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """Per ticker, from the batch's partial daily bars: the earliest ``open_time`` (its first
    tick, UTC) and the earliest ``window_start`` (its first touched trade date, which can be
    a day before the first tick's UTC date: a tick at 21:00 New York belongs to that day)."""
    rows = daily_bars.group_by("ticker").aggregate(
        [("open_time", "min"), ("window_start", "min")]).to_pylist()
    return ({str(r["ticker"]): r["open_time_min"] for r in rows},
            {str(r["ticker"]): r["window_start_min"] for r in rows})


def gold_daily_metrics(ticks: DataFrame) -> DataFrame:
    """Silver ticks -> daily metrics per ticker and trade date.

    Columns: trading_date (the ticker's trade date, :func:`trading_date_column`); ticker;
    avg_price (arithmetic mean of the day's tick prices); total_volume (shares); trades
    (ticks); updated_at; price_sum (Σ price, for merging a later batch's ticks of the same
    day).
    """
    return (
        ticks.groupBy(trading_date_column(F.col("ticker"), F.col("event_time"))
                      .alias("trading_date"), "ticker")
        .agg(
            F.sum("price").alias("price_sum"),
            F.sum("volume").cast("long").alias("total_volume"),
            F.count(F.lit(1)).alias("trades"),
        )
        .select("trading_date", "ticker",
                (F.col("price_sum") / F.col("trades")).alias("avg_price"),
                "total_volume", "trades", F.current_timestamp().alias("updated_at"),
                "price_sum")
    )


def gold_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: merge the batch's partial bars and metrics, then recompute the
    touched tickers' indicators and anomalies from a bounded tail (see the module docstring).

    Only aggregates reach the driver: a partial bar per touched (ticker, window) and the
    first touched time per ticker, never the batch's ticks.
    """
    lake = settings.lake_dir
    bars = {name: job_sink(table, settings, app_id)
            for name, table in bar_tables(settings.bar_intervals).items()}
    metrics = job_sink(GOLD_DAILY_METRICS, settings, app_id)
    derived = {table.name: job_sink(table, settings, app_id)
               for table in (GOLD_INDICATORS_1D, GOLD_INDICATORS_1H, GOLD_ANOMALIES)}
    sinks = [*bars.values(), metrics, *derived.values()]

    def write(batch: DataFrame, batch_id: int) -> None:
        if all(sink.committed(batch_id) for sink in sinks):
            return
        started = time.monotonic()
        ticks = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:  # two Spark jobs: every interval's partial bars, then the daily metrics
            partial = all_partial_bars(ticks, tuple(bars)).toArrow()
            daily = gold_daily_metrics(ticks).toArrow() if not metrics.committed(batch_id) else None
        finally:
            ticks.unpersist()
        aggregated = time.monotonic()
        by_interval = {interval: partial.filter(pc.equal(partial.column("interval"),
                                                         pa.scalar(interval)))
                       .drop_columns(["interval"]) for interval in bars}
        for interval, sink in bars.items():
            sink.upsert(by_interval[interval], batch_id, updates=BAR_MERGE)
        if daily is not None:
            metrics.upsert(daily, batch_id, updates=METRICS_MERGE)
        merged = time.monotonic()
        first_touched, first_day = _first_touched(by_interval["1d"])
        if first_touched:
            gold_indicators.refresh(lake, first_touched, derived, batch_id, first_day)
        done = time.monotonic()
        log.info("gold micro-batch %d: %d partial bars aggregated in %.1f s, merged in %.1f s; "
                 "indicators of %d tickers refreshed in %.1f s", batch_id, partial.num_rows,
                 aggregated - started, merged - aggregated, len(first_touched), done - merged)

    return write


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the ticks each Silver commit added."""
    return table_stream(spark, SILVER_TICKS, settings.lake_dir, settings.max_files_per_trigger,
                        settings.max_bytes_per_trigger)


JOB = Job("gold", stream, gold_writer)
"""The gold job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/gold.py: import this file as its module
    from pipeline import gold as this_job

    main([this_job.JOB])
