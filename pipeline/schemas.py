"""Spark views of the registered tables: schemas derived from :mod:`config.tables`, streams."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from config.settings import Settings
from config.tables import Table
from pipeline.checkpoints import convert_delta_offsets, spark_checkpoint
from storage.delta import ensure_table


def spark_schema(table: Table) -> StructType:
    """The Spark ``StructType`` of ``table`` (timestamps are UTC ``TimestampType``)."""
    return from_arrow_schema(table.schema)


def table_stream(
    spark: SparkSession, table: Table, settings: Settings, job: str,
) -> DataFrame:
    """``table`` as a stream of the rows each commit adds: delta-spark's streaming source
    (``readStream.format("delta")``) for ``job``'s query.

    The table is created first if it does not exist yet (Delta's source needs it), and offsets
    an earlier release wrote in ``job``'s checkpoint are carried over
    (:func:`pipeline.checkpoints.convert_delta_offsets`). Admission control uses Delta's options:
    ``maxFilesPerTrigger`` when ``settings.max_files_per_trigger`` is set, else
    ``maxBytesPerTrigger`` when ``settings.max_bytes_per_trigger`` is. ``skipChangeCommits``
    is on: a commit that removes rows (another writer's DELETE or MERGE) is skipped, not
    re-read; the jobs only append to the tables they read, and compaction (``dataChange``
    false) is never read.

    Raises:
        ConfigError: see :func:`pipeline.checkpoints.convert_delta_offsets`.
    """
    path = ensure_table(table, settings.lake_dir).table_uri
    convert_delta_offsets(spark_checkpoint(settings, job), table.path(settings.lake_dir), job)
    reader = spark.readStream.format("delta").option("skipChangeCommits", "true")
    if settings.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", settings.max_files_per_trigger)
    elif settings.max_bytes_per_trigger:
        reader = reader.option("maxBytesPerTrigger", settings.max_bytes_per_trigger)
    return reader.load(path)
