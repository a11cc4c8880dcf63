"""Bronze: every Kafka record, raw, with its topic/partition/offset and broker timestamp.

Read with Spark's Kafka source, written with delta-spark (:mod:`pipeline.delta_writes`): the
records never leave the JVM. Runnable as
``spark-submit pipeline/bronze.py [--lake DIR] [--until-caught-up]``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.kafka import client_config, spark_options
from config.settings import Settings
from config.tables import BRONZE_TICKS
from pipeline.checkpoints import spark_checkpoint
from pipeline.delta_writes import append_batch
from pipeline.monitoring import OffsetProbe
from pipeline.runner import Job, main
from pipeline.writes import job_sink

log = logging.getLogger(__name__)
KAFKA_COLUMNS = [c for c in BRONZE_TICKS.schema.names if c != "ingest_time"]
"""Bronze keeps every column of Spark's Kafka source: Bronze's columns but ``ingest_time``."""


def starting_offsets(spark: SparkSession, settings: Settings, job: str) -> str:
    """Spark's ``startingOffsets`` for ``job``'s query (``bronze``, or ``live``, which writes
    Bronze too): where a query without a checkpoint starts.

    A query with a checkpoint resumes from it, and Spark ignores ``startingOffsets``:
    ``"earliest"``. A query without one (a new deployment, a lost checkpoint, a lake written
    by an earlier release) resumes from the lake: each partition of the topic at the highest
    offset Bronze holds for it + 1, and a partition Bronze holds nothing of at its earliest
    offset (-2), so nothing is read twice and nothing skipped. That takes one aggregation of
    Bronze's ``topic``/``partition``/``offset`` columns, once, when the query starts.

    Returns:
        ``"earliest"``, or Spark's JSON form ``{"<topic>": {"<partition>": <offset>}}`` with
        every partition of the topic (Spark requires them all).

    Raises:
        BrokerUnavailable: the broker did not list the topic's partitions.
    """
    if any((spark_checkpoint(settings, job) / "offsets").glob("[0-9]*")):
        return "earliest"
    table = BRONZE_TICKS.path(settings.lake_dir)
    if not (table / "_delta_log").is_dir():
        return "earliest"
    held = {row["partition"]: row["last"] for row in (
        spark.read.format("delta").load(str(table)).where(F.col("topic") == settings.topic)
        .groupBy("partition").agg(F.max("offset").alias("last")).collect())}  # one per partition
    if not held:
        return "earliest"
    probe = OffsetProbe(client_config(settings, "consumer", **{"group.id": "ticklake-resume"}))
    try:
        partitions = [p for _, p in probe.partitions([settings.topic])]
    finally:
        probe.close()
    if not partitions:
        return "earliest"
    offsets = {str(p): held[p] + 1 if p in held else -2 for p in partitions}
    log.info("%s: no checkpoint yet; resuming %s from the offsets after those Bronze holds: %s",
             job, settings.topic, offsets)
    return json.dumps({settings.topic: offsets})


def kafka_ticks(spark: SparkSession, settings: Settings, job: str = "bronze") -> DataFrame:
    """The tick topic as a streaming DataFrame of Spark's Kafka source (its columns; its
    options ``startingOffsets`` from :func:`starting_offsets`, ``failOnDataLoss`` and
    ``maxOffsetsPerTrigger`` from the settings, the connection from
    :func:`config.kafka.spark_options`) for ``job``'s query."""
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_options(settings))
        .option("subscribe", settings.topic)
        .option("startingOffsets", starting_offsets(spark, settings, job))
        .option("failOnDataLoss", str(settings.fail_on_data_loss).lower())
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
    return reader.load()


def bronze_ticks(kafka: DataFrame) -> DataFrame:
    """Kafka records -> Bronze rows: the record unchanged plus ``ingest_time`` (UTC).

    ``ingest_time`` is the micro-batch's timestamp, so a replayed batch gets the same value.
    """
    return kafka.select(*KAFKA_COLUMNS, F.current_timestamp().alias("ingest_time"))


def bronze_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: append each micro-batch to ``bronze/ticks`` exactly once, with
    delta-spark (:func:`pipeline.delta_writes.append_batch`)."""
    sink = job_sink(BRONZE_TICKS, settings, app_id)

    def write(batch: DataFrame, batch_id: int) -> None:
        append_batch(batch, sink, batch_id)

    return write


def stream(spark: SparkSession, settings: Settings, job: str = "bronze") -> DataFrame:
    """``job``'s streaming DataFrame (this job's, or live's): the topic through
    :func:`bronze_ticks`."""
    return bronze_ticks(kafka_ticks(spark, settings, job))


JOB = Job("bronze", stream, bronze_writer, excludes=("live",))
"""The bronze job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/bronze.py: import this file as its module
    from pipeline import bronze as this_job

    main([this_job.JOB])
