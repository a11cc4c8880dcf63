"""Live mode: one streaming query writes Bronze, Silver and Gold in the same micro-batch.

Runnable as ``spark-submit pipeline/live.py [--lake DIR] [--until-caught-up]``, or
``ticklake job live``.

The per-layer jobs (``ticklake job bronze silver gold``) chain three queries: Silver waits
for a Bronze commit and its own trigger, Gold for Silver's, and the three compete for the
cores. Here each micro-batch of Kafka records goes through the three layers at once:

1. **Silver**: the records are classified and routed to ``silver/quarantine`` and
   ``silver/ticks`` (:func:`pipeline.silver.silver_batch_writer`: the same bounded state, the
   same verdicts and commit order as the silver job), in one Spark job when no valid tick of
   the batch is at or before its ticker's watermark, a live feed's usual batch
   (:func:`pipeline.silver.single_pass_verdicts`), else in the silver job's two.
2. **Bronze**: the tasks that write Silver's and quarantine's files also write every
   classified row's Kafka record to ``bronze/ticks`` (:class:`pipeline.writes.Copy`,
   :data:`pipeline.silver.BRONZE_FROM_CLASSIFIED`), committed before the two, so the records
   cross from the JVM to Python once and no Spark job runs for Bronze alone.
3. **Gold**: the tasks that write Silver's ticks also turn them into partial bars
   (:func:`pipeline.gold.ticks_to_partial_bars` through
   :func:`pipeline.writes.route_and_aggregate`), so the ticks are not read again; those are
   merged into the bars, metrics and indicators (:func:`pipeline.gold.gold_batch_writer`).
   When Silver had committed this batch id before a crash, Gold reads the ticks of that
   commit back from its files (found by its app transaction in the Delta log), so the
   replayed batch gives Gold the same ticks.

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

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import BRONZE_TICKS, SILVER_TICKS, bar_tables
from pipeline import bronze, gold, silver
from pipeline.bars import PARTIAL_SCHEMA
from pipeline.runner import Job, main
from pipeline.schemas import spark_schema
from pipeline.spark import submitted_conf
from pipeline.writes import Copy, job_sink
from storage.delta import batch_files

log = logging.getLogger(__name__)


def live_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: Bronze, then Silver, then Gold for one micro-batch of Kafka
    records, each table exactly once (see the module docstring)."""
    bronze_copy = Copy(job_sink(BRONZE_TICKS, settings, app_id), silver.BRONZE_FROM_CLASSIFIED)
    write_silver = silver.silver_batch_writer(settings, app_id, single_pass=True)
    write_gold = gold.gold_batch_writer(settings, app_id)
    silver_path = str(SILVER_TICKS.path(settings.lake_dir))
    intervals = tuple(bar_tables(settings.bar_intervals))

    def committed_ticks_bars(spark: SparkSession, batch_id: int, updated_at: datetime) -> pa.Table:
        """The partial bars of the ticks Silver committed as ``batch_id`` (a replay)."""
        files = batch_files(silver_path, app_id, batch_id)
        log.info("live micro-batch %d: Gold reads the ticks of Silver's commit (%d file(s))",
                 batch_id, len(files))
        if not files:
            return PARTIAL_SCHEMA.empty_table()
        ticks = spark.read.schema(spark_schema(SILVER_TICKS)).parquet(*files)
        return gold.batch_partial_bars(ticks, intervals, updated_at)

    def write(batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        # Bronze's rows are the classified rows' Kafka columns: its files are written in the
        # tasks that write Silver's and quarantine's, and committed first; Gold's partial
        # bars come from the same tasks (their updated_at: the time Silver starts)
        partials = write_silver(
            silver.classify_with_settings(  # "now" = the batch time, also on a replay
                batch, settings, now=F.col("ingest_time")),
            batch_id, gold.ticks_to_partial_bars(intervals, datetime.now(UTC)), (bronze_copy,))
        silvered = time.monotonic()
        write_gold(lambda updated_at: partials if partials is not None else
                   committed_ticks_bars(batch.sparkSession, batch_id, updated_at), batch_id)
        log.info("live micro-batch %d: bronze and silver %.1f s, gold %.1f s", batch_id,
                 silvered - started, time.monotonic() - silvered)

    return write


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
