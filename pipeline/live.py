"""Live mode: one streaming query writes Bronze, Silver and Gold in the same micro-batch.

Runnable as ``spark-submit pipeline/live.py [--lake DIR] [--until-caught-up]``, or
``ticklake job live``.

The per-layer jobs (``ticklake job bronze silver gold``) chain three queries: Silver waits
for a Bronze commit and its own trigger, Gold for Silver's, and the three compete for the
cores. Here each micro-batch of Kafka records goes through the three layers at once:

1. **Bronze and Silver**: the records are classified and cached, and go through the silver
   job's writer (:func:`pipeline.silver.silver_batch_writer`: the same bounded state, the
   same verdicts and commit order); before quarantine's commit, Bronze is appended from the
   cached classified rows (:func:`pipeline.silver.bronze_of`), so the records are read
   from Kafka and cross into Python workers once. Every append is delta-spark's
   (:func:`pipeline.delta_writes.append_batch`).
2. **Gold**: right after Silver's commit, the ticks it took (still cached) are turned into
   partial bars (:func:`pipeline.gold.batch_partial_bars`), which are merged into the bars,
   metrics and indicators (:func:`pipeline.gold.gold_batch_writer`). When Silver had
   committed this batch id before a crash, Gold reads the ticks of that commit back from
   Silver by the batch's Kafka positions (:func:`ticks_at_positions`), so the replayed batch
   gives Gold the same ticks.

Every table records the (query, batch id) app transaction, so exactly-once holds across a
crash anywhere between two commits. Before the query starts, :func:`warm_up` runs the writer
once on a synthetic micro-batch in a scratch lake, so the first records do not wait for the
application's start-up costs. The live query and the per-layer jobs are two ways to
keep one lake, not to be mixed: each refuses a lake the other has run on
(:func:`pipeline.runner.refuse_mixed_modes`).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import reduce

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import BRONZE_TICKS, SILVER_TICKS, bar_tables
from pipeline import bronze, gold, silver
from pipeline.delta_writes import append_batch, job_sink
from pipeline.runner import Job, main
from pipeline.schemas import spark_schema
from pipeline.spark import submitted_conf

log = logging.getLogger(__name__)


def live_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: Bronze, then Silver, then Gold for one micro-batch of Kafka
    records, each table exactly once (see the module docstring)."""
    bronze_sink = job_sink(BRONZE_TICKS, settings, app_id)
    write_silver = silver.silver_batch_writer(settings, app_id)
    write_gold = gold.gold_batch_writer(settings, app_id)
    silver_path = str(SILVER_TICKS.path(settings.lake_dir))
    intervals = tuple(bar_tables(settings.bar_intervals))

    def committed_ticks_bars(batch: DataFrame, batch_id: int, updated_at: datetime) -> pa.Table:
        """The partial bars of the ticks Silver took from ``batch``'s records in an earlier
        run of ``batch_id`` (a replay), read back from Silver by their Kafka positions."""
        log.info("live micro-batch %d: Gold reads the ticks of Silver's commit back", batch_id)
        return gold.batch_partial_bars(
            ticks_at_positions(batch.sparkSession.read.format("delta").load(silver_path),
                               batch), intervals, updated_at)

    def write(batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        to_bronze = None if bronze_sink.committed(batch_id) else (  # logs a replay
            lambda classified: append_batch(silver.bronze_of(classified), bronze_sink, batch_id))
        partials = write_silver(
            silver.classify_with_settings(  # "now" = the batch time, also on a replay
                batch, settings, now=F.col("ingest_time")), batch_id, to_bronze,
            lambda ticks: gold.batch_partial_bars(ticks, intervals, datetime.now(UTC)))
        silvered = time.monotonic()
        write_gold(lambda updated_at: partials if partials is not None else
                   committed_ticks_bars(batch, batch_id, updated_at), batch_id)
        log.info("live micro-batch %d: bronze and silver %.1f s, gold %.1f s", batch_id,
                 silvered - started, time.monotonic() - silvered)

    return write


def ticks_at_positions(ticks: DataFrame, records: DataFrame) -> DataFrame:
    """The rows of ``ticks`` (Silver's) whose Kafka position is one of ``records``'.

    ``records``' offset range per (topic, partition) reaches the driver (one row per
    partition) and becomes a filter on ``ticks``, which Delta's data skipping turns into a
    read of the files whose offset statistics overlap it; the rows are then matched by
    position exactly (a semi join).

    Args:
        ticks: rows with ``topic``, ``partition`` and ``offset`` (e.g. ``silver/ticks``).
        records: rows with the same columns (a micro-batch of Kafka records).
    """
    ranges = (records.groupBy("topic", "partition")
              .agg(F.min("offset").alias("low"), F.max("offset").alias("high")).collect())
    if not ranges:
        return ticks.limit(0)
    within = reduce(lambda a, b: a | b, [
        (F.col("topic") == r["topic"]) & (F.col("partition") == r["partition"])
        & F.col("offset").between(r["low"], r["high"]) for r in ranges])
    return ticks.where(within).join(
        records.select("topic", "partition", "offset"), ["topic", "partition", "offset"],
        "left_semi")


WARM_UP_DIR = "_warm_up"
"""Scratch lake of :func:`warm_up`, under the lake (so on a cluster it is on shared storage)."""


def warm_up_records(spark: SparkSession, settings: Settings, ticks: int = 200) -> DataFrame:
    """A micro-batch for :func:`warm_up`: ``ticks`` valid synthetic ticks and one malformed
    record, as Bronze rows (:data:`config.tables.BRONZE_TICKS`) in 4 Spark partitions.

    The ticks (:class:`producer.sources.synthetic.SyntheticSource`) are one second apart, the
    newest one second before now (UTC), on up to four of the configured tickers
    (``ticker_allowlist``, else ``tickers``), so Silver takes them all and Gold gets bars; the
    malformed record goes to quarantine.
    """
    from producer.sources.synthetic import SyntheticSource

    now = datetime.now(UTC)
    tickers = list(settings.ticker_allowlist or settings.tickers)[:4] or ["WARM"]
    times = iter([now - timedelta(seconds=ticks - i) for i in range(ticks)])
    source = SyntheticSource(tickers, count=ticks, clock=lambda: next(times))
    rows = [(None, tick.to_json_bytes(), settings.topic, i % 4, i // 4, now, 0, now)
            for i, tick in enumerate(source.ticks())]
    rows.append((None, b"{not json", settings.topic, 0, ticks, now, 0, now))
    return spark.createDataFrame(rows, spark_schema(BRONZE_TICKS)).repartition(4)


def warm_up(spark: SparkSession, settings: Settings) -> None:
    """Run the live writer once on :func:`warm_up_records` in a scratch lake, then delete it.

    The first micro-batch of a Spark application pays for starting the executors' Python
    workers, importing the pipeline in them and generating and compiling the plans' code
    (several seconds: docs/architecture.md, "Measured facts"); paid here, before the query
    starts, it no longer delays the topic's first records. The scratch lake
    (``<lake>/_warm_up``) has its own tables, app id and no checkpoint; the lake's tables and
    the query's checkpoint are not touched.
    """
    started = time.monotonic()
    scratch = settings.lake_dir / WARM_UP_DIR
    shutil.rmtree(scratch, ignore_errors=True)  # left by a warm-up that was killed
    try:
        write = live_writer(settings.with_overrides(lake_dir=scratch, checkpoint_dir=None,
                                                    fault_after_commit=None), "warm-up")
        write(warm_up_records(spark, settings), 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("live: warmed up the executors in %.1f s (one synthetic micro-batch in %s, "
             "deleted)", time.monotonic() - started, scratch)


CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"
"""Spark's setting for compressing the columns of a cached DataFrame (default true)."""


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the tick topic as Bronze rows (:mod:`pipeline.bronze`).

    Also turns off the compression of cached columns (:data:`CACHE_COMPRESSED`) for this
    session unless ``spark-submit --conf`` set it: Silver caches each micro-batch's classified
    rows for its two passes (:func:`pipeline.silver.silver_batch_writer`), and a live
    micro-batch (~10-20 thousand ticks, ~10 MB) is dropped seconds later, so compressing it
    is work for nothing (its share of a profile: docs/architecture.md, "Measured facts"). The
    per-layer jobs, whose backlog batches are large, keep Spark's default.
    """
    if CACHE_COMPRESSED not in submitted_conf():
        spark.conf.set(CACHE_COMPRESSED, "false")
    return bronze.stream(spark, settings, "live")


JOB = Job("live", stream, live_writer, excludes=("bronze", "silver", "gold"), warm_up=warm_up)
"""The live job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/live.py: import this file as its module
    from pipeline import live as this_job

    main([this_job.JOB])
