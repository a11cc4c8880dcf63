"""Spark views of the registered tables: schemas derived from :mod:`config.tables`, streams."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from config.tables import Table


def spark_schema(table: Table) -> StructType:
    """The Spark ``StructType`` of ``table`` (timestamps are UTC ``TimestampType``)."""
    return from_arrow_schema(table.schema)


def table_stream(
    spark: SparkSession, table: Table, lake_dir: Path, max_files_per_trigger: int | None = None,
    max_bytes_per_trigger: int | None = None,
) -> DataFrame:
    """``table`` as a stream of the rows each commit adds (the ``ticklake-delta`` source),
    with admission control when ``max_files_per_trigger`` or ``max_bytes_per_trigger`` is set
    (files take precedence); appended files are packed into at least Spark's default
    parallelism of tasks when there are as many (see :mod:`pipeline.connectors.delta_source`)."""
    reader = (spark.readStream.format("ticklake-delta").schema(spark_schema(table))
              .option("minPartitions", spark.sparkContext.defaultParallelism))
    if max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", max_files_per_trigger)
    elif max_bytes_per_trigger:
        reader = reader.option("maxBytesPerTrigger", max_bytes_per_trigger)
    return reader.load(str(table.path(lake_dir)))
