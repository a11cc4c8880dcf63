"""Bronze: every Kafka record, raw, with its topic/partition/offset and broker timestamp.

Read with Spark's Kafka source, written with delta-spark (:mod:`pipeline.delta_writes`): the
records never leave the JVM. Runnable as
``spark-submit pipeline/bronze.py [--lake DIR] [--until-caught-up]``.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.kafka import spark_options
from config.settings import Settings
from config.tables import BRONZE_TICKS
from pipeline.delta_writes import append_batch
from pipeline.runner import Job, main
from pipeline.writes import job_sink

KAFKA_COLUMNS = [c for c in BRONZE_TICKS.schema.names if c != "ingest_time"]
"""Bronze keeps every column of Spark's Kafka source: Bronze's columns but ``ingest_time``."""


def kafka_ticks(spark: SparkSession, settings: Settings) -> DataFrame:
    """The tick topic as a streaming DataFrame of Spark's Kafka source (its columns; its
    options ``startingOffsets`` earliest, ``failOnDataLoss`` and ``maxOffsetsPerTrigger``
    from the settings, the connection from :func:`config.kafka.spark_options`)."""
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_options(settings))
        .option("subscribe", settings.topic)
        .option("startingOffsets", "earliest")
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


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: the topic through :func:`bronze_ticks`."""
    return bronze_ticks(kafka_ticks(spark, settings))


JOB = Job("bronze", stream, bronze_writer, excludes=("live",))
"""The bronze job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/bronze.py: import this file as its module
    from pipeline import bronze as this_job

    main([this_job.JOB])
