"""Distributed micro-batch writes: executors write the files, the driver commits them.

:func:`append_on_executors` is how every append-only layer (Bronze, Silver, quarantine)
writes a micro-batch: the rows stay on the executors, which write Parquet files under the
table (:func:`storage.files.write_data_files`); the driver collects one small record per file
and commits them all in one Delta transaction with the (query, batch id) app transaction
(:meth:`storage.sink.DeltaSink.commit_files`), so exactly-once holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import from_arrow_schema

from config.settings import Settings
from config.tables import Table
from storage.files import FILE_RECORD_SCHEMA, write_data_files
from storage.sink import DeltaSink

FILE_RECORD_SPARK_SCHEMA = from_arrow_schema(FILE_RECORD_SCHEMA)


def job_sink(table: Table, settings: Settings, app_id: str) -> DeltaSink:
    """The exactly-once sink of a streaming job for ``table``, with the fault point of
    ``settings.fault_after_commit`` (off by default) wired in."""
    return DeltaSink(table, settings.lake_dir, app_id,
                     exit_after_batch=settings.fault_batch(table.name))


def append_on_executors(frame: DataFrame, sink: DeltaSink, batch_id: int | None) -> int:
    """Append ``frame``'s rows to ``sink``'s table as batch ``batch_id``, writing on the
    executors and committing once on the driver.

    Args:
        frame: rows with (at least) the table's columns; each Spark partition becomes one or
            more files (per table partition value).
        sink: the table's exactly-once sink.
        batch_id: the micro-batch id recorded with the commit (None: batch writes).

    Returns:
        The rows committed (0 if the batch had been committed already).
    """
    if sink.committed(batch_id):
        return 0
    root, schema, partitions = sink.path, sink.table.schema, sink.partition_columns

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return write_data_files(batches, root, schema, partitions)

    records = [row.asDict() for row in frame.mapInArrow(write, FILE_RECORD_SPARK_SCHEMA).collect()]
    committed = sink.commit_files(records, batch_id)
    return sum(int(r["rows"]) for r in records) if committed else 0
