"""Spark schemas of the lake's tables, derived from the Arrow schemas in :mod:`config.tables`."""

from __future__ import annotations

from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from config.tables import Table


def spark_schema(table: Table) -> StructType:
    """The Spark ``StructType`` of ``table`` (timestamps are UTC ``TimestampType``)."""
    return from_arrow_schema(table.schema)
