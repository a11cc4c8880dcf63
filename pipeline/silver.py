"""Silver: typed, validated, deduplicated ticks; every rejected record goes to quarantine.

Runnable as ``spark-submit pipeline/silver.py [--lake DIR] [--until-caught-up]``.

Per micro-batch of Bronze rows: each value is validated (:mod:`pipeline.validation`); valid
ticks whose ``tick_id`` is new go to ``silver/ticks``; invalid ones and duplicates (same
``tick_id`` earlier in the batch or already in Silver) go to ``silver/quarantine`` with their
reason. So ``bronze = silver + quarantine`` always, and the duplicates are the quarantine rows
with reason ``duplicate_tick_id``. Ticks behind their ticker's event-time watermark are
quarantined as ``late``, so a Gold bar whose window ends before the watermark is final, unless
their ``source`` is ``backfill`` (:data:`producer.messages.BACKFILL_SOURCE`, what ``ticklake
backfill`` publishes): history sent on purpose, which Gold merges into the past windows it
touches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from config.reasons import Reason
from config.settings import Settings
from config.tables import (
    BRONZE_TICKS,
    SILVER_QUARANTINE,
    SILVER_TICKS,
    SILVER_WATERMARKS,
    UTC_TS,
)
from pipeline import silver_state
from pipeline.delta_writes import append_batch
from pipeline.runner import Job, main
from pipeline.schemas import table_stream
from pipeline.validation import validate_values
from pipeline.workers import freeze_imports
from pipeline.writes import Copy, TaskAggregate, job_sink, route_and_aggregate, routed_write
from producer.messages import BACKFILL_SOURCE

log = logging.getLogger(__name__)

CLASSIFIED_SCHEMA = pa.schema(
    [
        *[(f.name, f.type) for f in SILVER_TICKS.schema],
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_value", pa.binary()),
        ("kafka_key", pa.binary()),
        ("kafka_timestamp_type", pa.int32()),
        ("checked_at", UTC_TS),
    ]
)
"""Silver's columns plus the verdict (``reason`` is null for a valid tick) and the rest of the
Kafka record, so the Bronze row can be rebuilt (:data:`BRONZE_FROM_CLASSIFIED`)."""

BRONZE_FROM_CLASSIFIED = {"key": "kafka_key", "value": "raw_value",
                          "timestamp": "kafka_timestamp", "timestampType": "kafka_timestamp_type"}
"""Bronze's columns that :data:`CLASSIFIED_SCHEMA` names differently (the others keep their
names): a classified row holds its whole Bronze row (live mode writes Bronze from it,
:class:`pipeline.writes.Copy`)."""


def _classify_batches(
    batches: Iterator[pa.RecordBatch], max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None,
) -> Iterator[pa.RecordBatch]:
    freeze_imports()  # once per Python worker: pipeline.workers
    for batch in batches:
        checked = batch.column("checked_at")
        times = pc.unique(checked).to_pylist()  # one value: the micro-batch's time
        for now in times:
            assert isinstance(now, datetime), "checked_at is current_timestamp(), never null"
            rows = (batch if len(times) == 1
                    else batch.filter(pc.equal(checked, pa.scalar(now, checked.type))))
            verdict = validate_values(rows.column("value"), now, max_message_bytes,
                                      max_future_skew_s, allowed_tickers)
            columns: dict[str, Any] = {
                **{name: verdict.column(name).combine_chunks() for name in verdict.column_names},
                "volume": pc.round(verdict.column("volume"), ndigits=0,
                                   round_mode="half_to_even").combine_chunks(),
                "volume_decimal": verdict.column("volume").combine_chunks(),
                "topic": rows.column("topic"), "partition": rows.column("partition"),
                "offset": rows.column("offset"), "kafka_timestamp": rows.column("timestamp"),
                "ingest_time": rows.column("ingest_time"), "raw_value": rows.column("value"),
                "kafka_key": rows.column("key"),
                "kafka_timestamp_type": rows.column("timestampType"),
                "checked_at": rows.column("checked_at"),
            }
            yield pa.RecordBatch.from_arrays(
                [columns[f.name].cast(f.type) for f in CLASSIFIED_SCHEMA], schema=CLASSIFIED_SCHEMA)


def classify_ticks(
    bronze: DataFrame, max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None = None, now: Column | None = None,
) -> DataFrame:
    """Bronze rows -> one row each with the parsed tick and its verdict.

    Args:
        bronze: rows with Bronze's columns (``value`` binary, Kafka position, ``ingest_time``).
        max_message_bytes: see :func:`pipeline.validation.validate_value`.
        max_future_skew_s: see :func:`pipeline.validation.validate_value`.
        allowed_tickers: see :func:`pipeline.validation.validate_value`.
        now: the time to validate against (default ``current_timestamp()``, which a
            streaming query replaces by its micro-batch time; inside a ``foreachBatch``
            function it would be the wall clock, so pass Bronze's ``ingest_time`` there).

    Returns:
        DataFrame with :data:`CLASSIFIED_SCHEMA`; ``checked_at`` is the micro-batch time used
        as "now" (the same when a batch is replayed).
    """
    staged = bronze.withColumn("checked_at", F.current_timestamp() if now is None else now)
    return staged.mapInArrow(
        lambda it: _classify_batches(it, max_message_bytes, max_future_skew_s, allowed_tickers),
        from_arrow_schema(CLASSIFIED_SCHEMA),
    )


def duplicate_keys(classified: DataFrame, existing_ids: DataFrame | None = None) -> DataFrame:
    """The Kafka positions of the batch's valid ticks that are duplicates.

    Only slim rows (``tick_id`` and the position) are shuffled, never the batch's full rows: a
    valid tick is a duplicate when its ``tick_id`` is among ``existing_ids`` or appeared
    earlier in the batch (order: Kafka topic, partition, offset).

    Args:
        classified: rows of :data:`CLASSIFIED_SCHEMA`.
        existing_ids: a ``tick_id`` column of Silver rows that may repeat ticks of this batch
            (None: Silver holds none).

    Returns:
        ``(topic, partition, offset, in_silver)``, one row per duplicate: at most the batch's
        size, and usually none.
    """
    keys = (classified.where(F.col("reason").isNull())
            .select("tick_id", "topic", "partition", "offset", F.lit(1).alias("_batch")))
    if existing_ids is not None:
        keys = keys.unionByName(existing_ids.select(
            "tick_id", F.lit(None).cast("string").alias("topic"),
            F.lit(None).cast("int").alias("partition"), F.lit(None).cast("long").alias("offset"),
            F.lit(0).alias("_batch")))
    by_id = Window.partitionBy("tick_id")
    ranked = keys.select(
        "*", F.row_number().over(by_id.orderBy("_batch", "topic", "partition", "offset"))
        .alias("_rank"), (F.min("_batch").over(by_id) == 0).alias("in_silver"))
    return (ranked.where((F.col("_batch") == 1) & (F.col("_rank") > 1))
            .select("topic", "partition", "offset", "in_silver"))


def _with_marks(frame: DataFrame, watermarks: DataFrame | None) -> DataFrame:
    """``frame`` with ``_mark``: its ticker's watermark (broadcast from ``watermarks``, one row
    per ticker), null where there is none."""
    if watermarks is None:
        return frame.withColumn("_mark", F.lit(None).cast("timestamp"))
    return frame.join(F.broadcast(watermarks.withColumnRenamed("watermark", "_mark")),
                      "ticker", "left")


def verdicts(
    classified: DataFrame,
    existing_ids: DataFrame | None = None,
    watermarks: DataFrame | None = None,
    allowed_lateness_s: float = 0.0,
) -> DataFrame:
    """Each classified row with its final verdict: ``reason`` null for a tick Silver takes.

    A valid tick is a duplicate if its ``tick_id`` is in ``existing_ids`` (``already in
    silver.ticks``) or appeared earlier in the batch (order: Kafka partition, offset; ``earlier
    in the same micro-batch``); duplicates are quarantined as ``duplicate_tick_id``. A valid,
    new tick whose event time is more than ``allowed_lateness_s`` behind its ticker's
    watermark (the latest event time Silver held before this batch) is quarantined as
    ``late``, with how late it is, unless its source is ``backfill``. Watermarks advance
    between micro-batches, as Spark's do.

    The duplicates (:func:`duplicate_keys`, at most one row per tick of the batch) and the
    watermarks (one row per ticker) are broadcast to the batch's rows, which are not shuffled.

    Args:
        classified: rows of :data:`CLASSIFIED_SCHEMA` (from :func:`classify_ticks`).
        existing_ids: see :func:`duplicate_keys`.
        watermarks: ``(ticker, watermark)`` rows (None: no ticker has one).
        allowed_lateness_s: watermark delay, seconds.

    Returns:
        :data:`CLASSIFIED_SCHEMA`'s columns with the final ``reason`` and ``detail``, plus
        ``quarantined_at`` (the batch's ``checked_at``).
    """
    return judge(classified, duplicate_keys(classified, existing_ids), watermarks,
                 allowed_lateness_s)


def judge(classified: DataFrame, duplicates: DataFrame, watermarks: DataFrame | None,
          allowed_lateness_s: float) -> DataFrame:
    """:func:`verdicts` given the batch's duplicates (:func:`duplicate_keys`), e.g. cached, so
    that writing the verdicts to two tables does not rank the batch's ticks twice."""
    valid = F.col("reason").isNull()
    frame = _with_marks(
        classified.join(F.broadcast(duplicates), ["topic", "partition", "offset"], "left"),
        watermarks)
    behind_s = F.col("_mark").cast("double") - F.col("event_time").cast("double")
    duplicate = valid & F.col("in_silver").isNotNull()
    late = (valid & ~duplicate & F.col("_mark").isNotNull() & (behind_s > allowed_lateness_s)
            & (F.col("source") != BACKFILL_SOURCE))
    return frame.select(
        *[c for c in CLASSIFIED_SCHEMA.names if c not in ("reason", "detail")],
        F.when(duplicate, F.lit(Reason.DUPLICATE_TICK_ID.value))
         .when(late, F.lit(Reason.LATE.value)).otherwise(F.col("reason")).alias("reason"),
        F.when(duplicate & F.col("in_silver"), F.lit("already in silver.ticks"))
         .when(duplicate, F.lit("earlier in the same micro-batch"))
         .when(late, F.format_string(
             "%.0f s behind the %s watermark %s (allowed lateness %.0f s)", behind_s,
             F.col("ticker"), F.date_format("_mark", "yyyy-MM-dd'T'HH:mm:ss'+00:00'"),
             F.lit(float(allowed_lateness_s))))
         .otherwise(F.col("detail")).alias("detail"),
        F.col("checked_at").alias("quarantined_at"),
    )


VALID_COLUMN = "_valid"
"""Whether validation took the row (its ``reason`` before the duplicate and lateness checks),
a column of :func:`single_pass_verdicts`."""
STALE_COLUMN = "_at_or_before_watermark"
"""Whether the row is a valid tick at or before its ticker's watermark (one that could repeat
a Silver tick or be late), a column of :func:`single_pass_verdicts`."""


def single_pass_verdicts(classified: DataFrame, watermarks: DataFrame | None,
                         partitions: int) -> DataFrame:
    """:func:`verdicts` for a batch none of whose valid ticks is at or before its ticker's
    watermark, without a second pass over the batch: the rows are spread by ``tick_id`` over
    ``partitions`` Spark partitions, where a tick's duplicates in the batch meet, and ranked
    there (order: Kafka topic, partition, offset).

    For such a batch the verdicts equal :func:`verdicts`' with no Silver rows to compare to:
    Silver holds no tick of a ticker after its watermark and a duplicate has its original's
    event time (:mod:`pipeline.silver_state`), and a late tick lies before the watermark. Each
    row also carries :data:`VALID_COLUMN` and :data:`STALE_COLUMN`; a row with the latter
    true means the batch is not such a batch: its verdicts must come from :func:`verdicts`
    (:func:`silver_batch_writer` calls the pass off, :func:`pipeline.writes.routed_write`'s
    ``guard``).

    Args:
        classified: rows of :data:`CLASSIFIED_SCHEMA`.
        watermarks: ``(ticker, watermark)`` rows (None: no ticker has one).
        partitions: Spark partitions of the result (the tasks that write it).

    Returns:
        :func:`verdicts`' columns plus :data:`VALID_COLUMN` and :data:`STALE_COLUMN`.
    """
    valid = F.col("reason").isNull()
    by_id = Window.partitionBy("tick_id").orderBy(
        F.col("reason").isNotNull(), "topic", "partition", "offset")  # valid rows first
    frame = _with_marks(classified.repartition(partitions, "tick_id").withColumn(
        "_rank", F.row_number().over(by_id)), watermarks)
    duplicate = valid & (F.col("_rank") > 1)
    return frame.select(
        *[c for c in CLASSIFIED_SCHEMA.names if c not in ("reason", "detail")],
        F.when(duplicate, F.lit(Reason.DUPLICATE_TICK_ID.value)).otherwise(F.col("reason"))
         .alias("reason"),
        F.when(duplicate, F.lit("earlier in the same micro-batch")).otherwise(F.col("detail"))
         .alias("detail"),
        F.col("checked_at").alias("quarantined_at"),
        valid.alias(VALID_COLUMN),
        (valid & F.col("_mark").isNotNull() & (F.col("event_time") <= F.col("_mark")))
        .alias(STALE_COLUMN),
    )


def _latest_valid(rows: pa.Table) -> pa.Table:
    """Executor side of the single pass's summary: per ticker, the latest event time of the
    task's valid ticks (:data:`VALID_COLUMN`)."""
    return _latest_by_ticker(rows.filter(rows.column(VALID_COLUMN)))


def _latest_by_ticker(ticks: pa.Table) -> pa.Table:
    """``(ticker, event_time)``: the latest event time per ticker of ``ticks``."""
    return (ticks.select(["ticker", "event_time"]).group_by("ticker")
            .aggregate([("event_time", "max")]).rename_columns(["ticker", "event_time"]))


def split_batch(
    classified: DataFrame,
    existing_ids: DataFrame | None = None,
    watermarks: DataFrame | None = None,
    allowed_lateness_s: float = 0.0,
) -> tuple[DataFrame, DataFrame]:
    """:func:`verdicts` split into (silver rows, quarantine rows), with those tables' columns."""
    judged = verdicts(classified, existing_ids, watermarks, allowed_lateness_s)
    accepted = judged.where(F.col("reason").isNull()).select(*SILVER_TICKS.schema.names)
    rejected = judged.where(F.col("reason").isNotNull()).select(*SILVER_QUARANTINE.schema.names)
    return accepted, rejected


TicksAggregate = tuple[Callable[[pa.Table], pa.Table], Callable[[pa.Table], pa.Table]]
"""``(function, combine)`` of a :class:`pipeline.writes.TaskAggregate` over the ticks Silver
takes (its target is ``silver/ticks``)."""


SilverBatchWriter = Callable[[DataFrame, int, TicksAggregate | None, Sequence[Copy]],
                             pa.Table | None]
"""(classified rows, batch id, aggregate or None, copies) -> the aggregate
(:func:`silver_batch_writer`)."""


def silver_batch_writer(settings: Settings, app_id: str,
                        single_pass: bool = False) -> SilverBatchWriter:
    """Live mode's Silver writer (:mod:`pipeline.live`), which writes the files of every table
    on the executors (:mod:`pipeline.writes`) and can also aggregate the ticks it commits in the
    same pass (live mode: Gold's partial bars, :mod:`pipeline.live`) and write every
    classified row to tables that take them all, committed before quarantine (live mode:
    Bronze, :data:`BRONZE_FROM_CLASSIFIED`).

    The returned function takes (classified rows, batch id, aggregate or None, copies) and
    returns the aggregate of the ticks committed now, or None when none was asked for or
    this batch's ticks were committed before (a replay: read them from that commit). Copies
    are written in the pass that writes Silver's ticks and committed before them.

    Two ways to write a batch, with the same verdicts:

    * **two passes**: the classified rows are cached; a first Spark job
      summarises them (:func:`pipeline.silver_state.summarize`: the event-time ranges the
      duplicate check must read from Silver, the latest event time per ticker), a second
      judges and writes them.
    * **one pass** (``single_pass``; live mode uses it):
      :func:`single_pass_verdicts` judges and the same tasks write, and the latest event
      times come back with the files. It holds for a batch none of whose valid ticks is at
      or before its ticker's watermark, which is a live feed's usual batch; a task that
      finds such a tick calls the pass off before writing,
      nothing is committed, and the batch is written in two passes, as are the next ones
      until one has no such tick (a backfill, a producer's replay).
    """
    silver = job_sink(SILVER_TICKS, settings, app_id)
    quarantine = job_sink(SILVER_QUARANTINE, settings, app_id)
    marks_sink = job_sink(SILVER_WATERMARKS, settings, app_id)
    one_pass = {"next": single_pass}  # whether the next batch tries one pass

    def write(batch: DataFrame, batch_id: int, ticks_aggregate: TicksAggregate | None,
              copies: Sequence[Copy] = ()) -> pa.Table | None:
        copied = all([copy.sink.committed(batch_id) for copy in copies])  # each logs a replay
        if copied and marks_sink.committed(batch_id):
            return None
        started = time.monotonic()
        spark = batch.sparkSession
        before = silver_state.watermarks(settings.lake_dir)
        marks = silver_state.watermark_frame(spark, before) if before else None
        rejected = F.col("reason").isNotNull()
        targets = [(quarantine, rejected), (silver, ~rejected)]
        aggregate = (None if ticks_aggregate is None
                     else TaskAggregate(1, *ticks_aggregate))  # 1: silver, in targets
        if one_pass["next"] and not (silver.committed(batch_id) and copied):
            partitions = int(spark.conf.get("spark.sql.shuffle.partitions") or "1")
            routed = routed_write(single_pass_verdicts(batch, marks, partitions), targets,
                                  batch_id, aggregate, copies, summary=_latest_valid,
                                  combine_summary=_latest_by_ticker, guard=STALE_COLUMN,
                                  carry=("ticker", "event_time", VALID_COLUMN))
            if not routed.vetoed:
                written = time.monotonic()
                latest = ({} if routed.summary is None else
                          {str(r["ticker"]): r["event_time"] for r in routed.summary.to_pylist()})
                silver_state.raise_watermarks(marks_sink, before, latest, batch_id,
                                              datetime.now(UTC))
                log.info("silver micro-batch %d: classified, quarantine and ticks written in "
                         "one pass in %.1f s, watermarks raised in %.1f s", batch_id,
                         written - started, time.monotonic() - written)
                return routed.aggregated
            log.info("silver micro-batch %d: a valid tick at or before its ticker's watermark; "
                     "the batch is written in two passes", batch_id)
        aggregated = None
        classified = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            summary = silver_state.summarize(classified, marks)
            one_pass["next"] = single_pass and not summary.event_ranges
            classified_at = time.monotonic()
            if not (silver.committed(batch_id) and copied):
                existing = silver_state.duplicate_candidates(
                    spark, settings.lake_dir, summary.event_ranges)
                judged = verdicts(classified, existing, marks, settings.allowed_lateness_s)
                _, aggregated = route_and_aggregate(judged, targets, batch_id, aggregate, copies)
            written = time.monotonic()
            silver_state.raise_watermarks(marks_sink, before, summary.latest, batch_id,
                                          datetime.now(UTC))
        finally:
            classified.unpersist()
        log.info("silver micro-batch %d: classified and summarised in %.1f s, quarantine and "
                 "ticks written in %.1f s, watermarks raised in %.1f s", batch_id,
                 classified_at - started, written - classified_at, time.monotonic() - written)
        return aggregated

    return write


def silver_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function of the silver job: quarantine first, then Silver, then the
    watermarks, each exactly once; quarantine and Silver are appended with delta-spark
    (:func:`pipeline.delta_writes.append_batch`: the rows stay in Spark).

    Per micro-batch, with the classified rows cached (``MEMORY_AND_DISK``): one Spark job
    classifies them and summarises the valid ticks (:func:`pipeline.silver_state.summarize`:
    the event-time ranges the duplicate check must read from Silver, the latest event time
    per ticker; tickers x dates rows reach the driver); the batch's duplicates
    (:func:`duplicate_keys`, usually none) are cached too, and the verdicts (:func:`judge`)
    are appended to quarantine, then to Silver; the watermarks are raised last. A batch with
    no rejected row, no duplicate and no tick at or before its ticker's watermark (so none
    late) has nothing for quarantine, which then gets no commit (a replay finds the same).

    The work of a micro-batch depends on the batch and on bounded state
    (:mod:`pipeline.silver_state`), not on the history Silver holds. Quarantine is committed
    before Silver and both before the watermarks, so after a crash between two commits the
    replayed batch classifies against the same state and gives the same split; a table that
    holds the batch already skips it.
    """
    silver = job_sink(SILVER_TICKS, settings, app_id)
    quarantine = job_sink(SILVER_QUARANTINE, settings, app_id)
    marks_sink = job_sink(SILVER_WATERMARKS, settings, app_id)

    def write(batch: DataFrame, batch_id: int) -> None:
        if marks_sink.committed(batch_id):  # logs the replay
            return
        started = time.monotonic()
        before = silver_state.watermarks(settings.lake_dir)
        marks = silver_state.watermark_frame(batch.sparkSession, before) if before else None
        classified = batch.persist(StorageLevel.MEMORY_AND_DISK)
        duplicates: DataFrame | None = None
        try:
            summary = silver_state.summarize(classified, marks)
            classified_at = time.monotonic()
            if not silver.committed(batch_id):  # quarantine's commit, if any, came first
                existing = silver_state.duplicate_candidates(
                    batch.sparkSession, settings.lake_dir, summary.event_ranges)
                duplicates = duplicate_keys(classified, existing).persist()
                judged = judge(classified, duplicates, marks, settings.allowed_lateness_s)
                rejected = F.col("reason").isNotNull()
                if summary.invalid or summary.event_ranges or duplicates.count():
                    append_batch(judged.where(rejected), quarantine, batch_id)
                append_batch(judged.where(~rejected), silver, batch_id)
            written = time.monotonic()
            silver_state.raise_watermarks(marks_sink, before, summary.latest, batch_id,
                                          datetime.now(UTC))
        finally:
            if duplicates is not None:
                duplicates.unpersist()
            classified.unpersist()
        log.info("silver micro-batch %d: classified and summarised in %.1f s, quarantine and "
                 "ticks appended in %.1f s, watermarks raised in %.1f s", batch_id,
                 classified_at - started, written - classified_at, time.monotonic() - written)

    return write


def classify_with_settings(bronze: DataFrame, settings: Settings,
                           now: Column | None = None) -> DataFrame:
    """:func:`classify_ticks` with the validation limits and ticker allowlist of ``settings``."""
    return classify_ticks(
        bronze, settings.max_message_bytes, settings.max_future_skew_s,
        frozenset(settings.ticker_allowlist) if settings.ticker_allowlist else None, now)


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: Bronze through :func:`classify_ticks`."""
    return classify_with_settings(
        table_stream(spark, BRONZE_TICKS, settings, JOB.name), settings)


JOB = Job("silver", stream, silver_writer, excludes=("live",))
"""The silver job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/silver.py: import this file as its module
    from pipeline import silver as this_job

    main([this_job.JOB])
