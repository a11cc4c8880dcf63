"""Live mode: one streaming query writes Bronze, Silver and Gold in the same micro-batch.

Runnable as ``spark-submit pipeline/live.py [--lake DIR] [--until-caught-up]``, or
``ticklake job live``.

The per-layer jobs (``ticklake job bronze silver gold``) chain three queries: Silver waits
for a Bronze commit and its own trigger, Gold for Silver's, and the three compete for the
cores. Here each micro-batch of Kafka records goes through the three layers at once:

1. **Bronze**: the records are appended to ``bronze/ticks`` (:func:`pipeline.bronze.bronze_writer`).
2. **Silver**: the same rows are classified and routed to ``silver/quarantine`` and
   ``silver/ticks`` (:func:`pipeline.silver.silver_writer`: the same bounded state, the same
   verdicts and commit order).
3. **Gold**: the tasks that write Silver's ticks also turn them into partial bars
   (:func:`pipeline.gold.ticks_to_partial_bars` through
   :func:`pipeline.writes.route_and_aggregate`), so the ticks are not read again; those are
   merged into the bars, metrics and indicators (:func:`pipeline.gold.gold_batch_writer`).
   When Silver had committed this batch id before a crash, Gold reads the ticks of that
   commit back from its files (found by its app transaction in the Delta log), so the
   replayed batch gives Gold the same ticks.

Every table records the (query, batch id) app transaction, so exactly-once holds across a
crash anywhere between two commits. The live query and the per-layer jobs are two ways to
keep one lake, not to be mixed: each refuses a lake the other has run on
(:func:`pipeline.runner.refuse_mixed_modes`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import SILVER_TICKS, bar_tables
from pipeline import bronze, gold, silver
from pipeline.bars import PARTIAL_SCHEMA
from pipeline.runner import Job, main
from pipeline.schemas import spark_schema
from storage.delta import batch_files

log = logging.getLogger(__name__)


def live_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: Bronze, then Silver, then Gold for one micro-batch of Kafka
    records, each table exactly once (see the module docstring)."""
    write_bronze = bronze.bronze_writer(settings, app_id)
    write_silver = silver.silver_batch_writer(settings, app_id)
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
        records = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            write_bronze(records, batch_id)
            bronzed = time.monotonic()
            # Gold's partial bars come from the tasks that write Silver's ticks; their
            # updated_at is the time Silver starts (the rows' own time, not Gold's)
            partials = write_silver(
                silver.classify_with_settings(  # "now" = the batch time, also on a replay
                    records, settings, now=F.col("ingest_time")),
                batch_id, gold.ticks_to_partial_bars(intervals, datetime.now(UTC)))
        finally:
            records.unpersist()
        silvered = time.monotonic()
        write_gold(lambda updated_at: partials if partials is not None else
                   committed_ticks_bars(batch.sparkSession, batch_id, updated_at), batch_id)
        log.info("live micro-batch %d: bronze %.1f s, silver %.1f s, gold %.1f s", batch_id,
                 bronzed - started, silvered - bronzed, time.monotonic() - silvered)

    return write


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the tick topic as Bronze rows (:mod:`pipeline.bronze`)."""
    return bronze.stream(spark, settings)


JOB = Job("live", stream, live_writer, excludes=("bronze", "silver", "gold"))
"""The live job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/live.py: import this file as its module
    from pipeline import live as this_job

    main([this_job.JOB])
