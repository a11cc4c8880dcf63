"""Gold: OHLCV bars (1m, 1h, 1d), daily metrics, indicators and anomalies from Silver ticks.

Runnable as ``spark-submit pipeline/gold.py [--lake DIR] [--until-caught-up]``.

Per micro-batch of new Silver ticks, the (ticker, UTC day) keys it touches are recomputed from
*all* Silver ticks of those keys and upserted (MERGE) into the bar tables and
``gold/daily_metrics``. A bar is therefore always the bar of every tick seen so far, whatever
the micro-batch boundaries. Then, for each touched ticker, ``gold/indicators_1d``,
``gold/indicators_1h`` and ``gold/anomalies`` are recomputed from that ticker's whole bar
history (:mod:`pipeline.indicators`), so incremental results equal a batch recomputation.
Each table records the micro-batch id in its commit, so a replayed batch gives the same rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import (
    BAR_INTERVALS,
    GOLD_ANOMALIES,
    GOLD_BARS,
    GOLD_BARS_1D,
    GOLD_BARS_1H,
    GOLD_DAILY_METRICS,
    GOLD_INDICATORS_1D,
    GOLD_INDICATORS_1H,
    SILVER_TICKS,
    Table,
)
from pipeline.indicators import (
    ANOMALY_COLUMNS,
    INDICATOR_1D_COLUMNS,
    INDICATOR_1H_COLUMNS,
    anomalies,
    indicators_1d,
    indicators_1h,
)
from pipeline.runner import Job, main
from pipeline.schemas import spark_schema, table_stream
from storage.delta import file_uris, read_table
from storage.sink import DeltaSink

log = logging.getLogger(__name__)


def gold_bars(ticks: DataFrame, interval: str) -> DataFrame:
    """Silver ticks -> OHLCV bars of ``interval`` (``1m``, ``1h``, ``1d``) per ticker.

    Windows are aligned on the UTC epoch (a ``1d`` bar is a UTC day). Columns: ticker;
    window_start, window_end (UTC); open (price of the first tick by event time), high, low,
    close (price of the last tick by event time; ties in event time broken by ``seq``, then
    ``tick_id``); volume (shares); vwap (sum of price x volume / volume, null when volume is
    0); trade_count (ticks); avg_price (mean tick price); updated_at.

    Raises:
        KeyError: an unknown interval.
    """
    order = F.struct("event_time", "seq", "tick_id")
    return (
        ticks.groupBy("ticker", F.window("event_time", BAR_INTERVALS[interval]).alias("w"))
        .agg(
            F.min_by("price", order).alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max_by("price", order).alias("close"),
            F.sum("volume").cast("long").alias("volume"),
            F.sum(F.col("price") * F.col("volume")).alias("_notional"),
            F.count(F.lit(1)).alias("trade_count"),
            F.avg("price").alias("avg_price"),
        )
        .select(
            "ticker",
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "open", "high", "low", "close", "volume",
            F.when(F.col("volume") > 0, F.col("_notional") / F.col("volume")).alias("vwap"),
            "trade_count", "avg_price",
            F.current_timestamp().alias("updated_at"),
        )
    )


def gold_daily_metrics(ticks: DataFrame) -> DataFrame:
    """Silver ticks -> daily metrics per ticker and UTC trading date.

    Columns: trading_date (UTC date of event time); ticker; avg_price (arithmetic mean of the
    day's tick prices); total_volume (shares); trades (ticks); updated_at.
    """
    return (
        ticks.groupBy(F.to_date("event_time").alias("trading_date"), "ticker")
        .agg(
            F.avg("price").alias("avg_price"),
            F.sum("volume").cast("long").alias("total_volume"),
            F.count(F.lit(1)).alias("trades"),
        )
        .withColumn("updated_at", F.current_timestamp())
    )


def silver_snapshot(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The current Silver table as a batch DataFrame (None while it has no files)."""
    uris = file_uris(SILVER_TICKS, settings.lake_dir)
    if not uris:
        return None
    return spark.read.schema(spark_schema(SILVER_TICKS)).parquet(*uris)


def _per_ticker(frame: pd.DataFrame, fn: Callable[[pd.DataFrame], pd.DataFrame],
                columns: list[str]) -> pd.DataFrame:
    parts = [fn(group) for _, group in frame.groupby("ticker", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _ticker_predicate(tickers: list[str]) -> str:
    quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in tickers)
    return f"t.ticker IN ({quoted})"


def gold_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: recompute the touched keys and tickers and MERGE them."""
    lake = settings.lake_dir
    bars = {name: DeltaSink(table, lake, app_id) for name, table in GOLD_BARS.items()}
    metrics = DeltaSink(GOLD_DAILY_METRICS, lake, app_id)
    ind_1d = DeltaSink(GOLD_INDICATORS_1D, lake, app_id)
    ind_1h = DeltaSink(GOLD_INDICATORS_1H, lake, app_id)
    flagged = DeltaSink(GOLD_ANOMALIES, lake, app_id)
    sinks = [*bars.values(), metrics, ind_1d, ind_1h, flagged]

    def write(batch: DataFrame, batch_id: int) -> None:
        if all(sink.committed(batch_id) for sink in sinks):
            return
        started = time.monotonic()
        keys = batch.select("ticker", F.to_date("event_time").alias("_day")).distinct()
        key_rows = keys.collect()
        tickers = sorted({r.ticker for r in key_rows})
        silver = silver_snapshot(batch.sparkSession, settings)
        if not tickers or silver is None:
            return
        touched = silver.join(
            F.broadcast(keys),
            (silver.ticker == keys.ticker) & (F.to_date(silver.event_time) == keys._day),
            "left_semi",
        ).cache()
        try:
            for interval, sink in bars.items():
                sink.upsert(gold_bars(touched, interval).toArrow(), batch_id)
            metrics.upsert(gold_daily_metrics(touched).toArrow(), batch_id)
        finally:
            touched.unpersist()
        scope = _ticker_predicate(tickers)
        daily_bars = read_bars(lake, GOLD_BARS_1D, tickers)
        daily = _per_ticker(daily_bars, indicators_1d, INDICATOR_1D_COLUMNS)
        ind_1d.upsert(pa.Table.from_pandas(daily, preserve_index=False), batch_id)
        hourly = _per_ticker(read_bars(lake, GOLD_BARS_1H, tickers), indicators_1h,
                             INDICATOR_1H_COLUMNS)
        ind_1h.upsert(pa.Table.from_pandas(hourly, preserve_index=False), batch_id)
        flags = _per_ticker(daily, anomalies, ANOMALY_COLUMNS)
        flagged.upsert(pa.Table.from_pandas(flags, preserve_index=False), batch_id,
                       delete_unmatched_where=scope)
        log.info("gold micro-batch %d: %d (ticker, day) keys of %d tickers recomputed in %.1f s",
                 batch_id, len(key_rows), len(tickers), time.monotonic() - started)

    return write


def read_bars(lake_dir: Path, table: Table, tickers: list[str]) -> pd.DataFrame:
    """All bars of ``tickers`` from a bar table (delta-rs)."""
    import pyarrow.compute as pc

    return read_table(table, lake_dir, where=pc.field("ticker").isin(tickers)).to_pandas()


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the ticks each Silver commit added."""
    return table_stream(spark, SILVER_TICKS, settings.lake_dir, settings.max_files_per_trigger)


JOB = Job("gold", stream, gold_writer)
"""The gold job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/gold.py: import this file as its module
    from pipeline import gold as this_job

    main([this_job.JOB])
