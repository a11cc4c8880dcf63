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


def table_stream(spark: SparkSession, table: Table, lake_dir: Path) -> DataFrame:
    """``table`` as a stream of the rows each commit adds (the ``ticklake-delta`` source)."""
    return (
        spark.readStream.format("ticklake-delta")
        .schema(spark_schema(table))
        .load(str(table.path(lake_dir)))
    )
