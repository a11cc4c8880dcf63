"""Gold: daily OHLCV bars and daily metrics, by event time (UTC), from Silver ticks.

Runnable as ``spark-submit pipeline/gold.py [--lake DIR] [--until-caught-up]``.

Per micro-batch of new Silver ticks, the (ticker, UTC day) keys it touches are recomputed from
*all* Silver ticks of those keys and upserted (MERGE) into Gold. A bar is therefore always the
bar of every tick seen so far, whatever the micro-batch boundaries, and a replayed batch gives
the same rows.
"""

from __future__ import annotations

from collections.abc import Callable

from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import GOLD_BARS_1D, GOLD_DAILY_METRICS, SILVER_TICKS
from pipeline.connectors.delta_sink import DeltaSink
from pipeline.schemas import spark_schema, table_stream


def gold_bars_1d(ticks: DataFrame) -> DataFrame:
    """Silver ticks -> daily OHLCV bars, one row per ticker and UTC day.

    Columns: ticker; window_start, window_end (UTC midnight to midnight); open (price of the
    first tick by event time), high, low, close (price of the last tick by event time; ties
    in event time broken by ``seq``, then ``tick_id``); volume (shares, sum); vwap (sum of
    price x volume / volume, null when volume is 0); trade_count (ticks); updated_at.
    """
    order = F.struct("event_time", "seq", "tick_id")
    return (
        ticks.groupBy("ticker", F.window("event_time", "1 day").alias("w"))
        .agg(
            F.min_by("price", order).alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max_by("price", order).alias("close"),
            F.sum("volume").cast("long").alias("volume"),
            F.sum(F.col("price") * F.col("volume")).alias("_notional"),
            F.count(F.lit(1)).alias("trade_count"),
        )
        .select(
            "ticker",
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "open", "high", "low", "close", "volume",
            F.when(F.col("volume") > 0, F.col("_notional") / F.col("volume")).alias("vwap"),
            "trade_count",
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
    uris = DeltaTable(str(SILVER_TICKS.path(settings.lake_dir))).file_uris()
    if not uris:
        return None
    return spark.read.schema(spark_schema(SILVER_TICKS)).parquet(*uris)


def gold_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: recompute the touched (ticker, day) keys and MERGE them."""
    bars = DeltaSink(GOLD_BARS_1D, settings.lake_dir, app_id)
    metrics = DeltaSink(GOLD_DAILY_METRICS, settings.lake_dir, app_id)

    def write(batch: DataFrame, batch_id: int) -> None:
        if bars.committed(batch_id) and metrics.committed(batch_id):
            return
        keys = batch.select("ticker", F.to_date("event_time").alias("_day")).distinct()
        if keys.isEmpty():
            return
        silver = silver_snapshot(batch.sparkSession, settings)
        if silver is None:
            return
        touched = silver.join(
            F.broadcast(keys),
            (silver.ticker == keys.ticker) & (F.to_date(silver.event_time) == keys._day),
            "left_semi",
        ).cache()
        try:
            bars.upsert(gold_bars_1d(touched).toArrow(), batch_id)
            metrics.upsert(gold_daily_metrics(touched).toArrow(), batch_id)
        finally:
            touched.unpersist()

    return write


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the ticks each Silver commit added."""
    return table_stream(spark, SILVER_TICKS, settings.lake_dir)


if __name__ == "__main__":
    from pipeline.runner import main

    main(["gold"])
