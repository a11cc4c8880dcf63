"""Parquet data files written where the data is (Spark executors), committed by the driver.

A distributed Delta write in two steps:

1. :func:`write_data_files` runs on an executor (inside ``mapInArrow``): it writes the rows it
   is given as Parquet files under the table's directory, one or more per partition value,
   and returns one small *file record* per file (path, size, partition values, statistics).
   No row leaves the executor.
2. The driver collects the file records (a few per task) and commits them in one Delta
   transaction (:meth:`storage.sink.DeltaSink.commit_files`) together with the (query,
   batch id) app transaction, so exactly-once holds: a file written by a batch that never
   commits is unreferenced and removed by vacuum.

Statistics follow the Delta protocol (``numRecords``, ``minValues``, ``maxValues``,
``nullCount`` per column; timestamps as ISO-8601 UTC with milliseconds truncated down for the
minimum and up for the maximum), so delta-rs and Spark prune files by them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from config.location import is_object_store, lake_location

_FILE_RECORD_FIELDS: list[pa.Field[Any]] = [
    pa.field("path", pa.string()),
    pa.field("size", pa.int64()),
    pa.field("partition_values", pa.string()),
    pa.field("modification_time", pa.int64()),
    pa.field("stats", pa.string()),
    pa.field("rows", pa.int64()),
]
FILE_RECORD_SCHEMA = pa.schema(_FILE_RECORD_FIELDS)
"""One row per data file written: ``path`` relative to the table root, ``size`` in bytes,
``partition_values`` and ``stats`` as JSON, ``modification_time`` in ms since the epoch."""

_STATS_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string,
                pa.types.is_timestamp, pa.types.is_date, pa.types.is_boolean)


def _json_value(value: Any, maximum: bool) -> Any:
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        millis = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if maximum and millis != value:
            millis += timedelta(milliseconds=1)
        return millis.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN: no usable bound
        return None
    return value


def file_statistics(data: pa.Table) -> dict[str, Any]:
    """Delta statistics of ``data``: row count, per-column min, max and null count.

    Columns whose type has no order that Delta readers compare (binary, nested) get only a
    null count; string bounds are left out when a value is longer than 32 characters (as
    Spark truncates them, a prefix would not be a valid maximum).
    """
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in data.schema:
        column = data.column(field.name)
        nulls[field.name] = column.null_count
        if not any(check(field.type) for check in _STATS_TYPES) or column.null_count == len(column):
            continue
        if pa.types.is_string(field.type) and pc.max(pc.utf8_length(column)).as_py() > 32:
            continue
        bounds = pc.min_max(column)
        low = _json_value(bounds["min"].as_py(), maximum=False)
        high = _json_value(bounds["max"].as_py(), maximum=True)
        if low is not None and high is not None:
            mins[field.name], maxs[field.name] = low, high
    return {"numRecords": data.num_rows, "minValues": mins, "maxValues": maxs,
            "nullCount": nulls}


def _partition_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_data_files(
    batches: Iterator[pa.RecordBatch], table_root: str, schema: pa.Schema,
    partition_by: Sequence[str] = (), max_rows_per_file: int = 1_000_000,
) -> Iterator[pa.RecordBatch]:
    """Write ``batches`` as Parquet data files of a Delta table; yield their file records.

    Runs on a Spark executor (``DataFrame.mapInArrow(..., FILE_RECORD_SCHEMA)``) or anywhere
    the table's directory is reachable.

    Args:
        batches: rows with (at least) ``schema``'s columns.
        table_root: the table's directory: a local path, a ``file://`` URI or an ``s3://``
            URI (reached with the executor's AWS variables, :mod:`config.location`).
        schema: the table's Arrow schema; rows are cast to it (partition columns are stored in
            the path, not in the files, as the Delta protocol says).
        partition_by: the table's partition columns.
        max_rows_per_file: a partition's rows are split into files of at most this many rows.

    Yields:
        One :data:`FILE_RECORD_SCHEMA` batch (at most one row per file written). Nothing when
        there were no rows.

    Raises:
        KeyError: a column of ``schema`` is missing.
    """
    root = lake_location(table_root)
    local = not is_object_store(root)
    received = [b for b in batches if b.num_rows]
    if not received:
        return
    data = pa.Table.from_batches(received).select(schema.names).cast(schema)
    file_columns = [n for n in schema.names if n not in partition_by]
    if partition_by:
        keys = data.select(list(partition_by)).group_by(list(partition_by)).aggregate([])
        groups = [(row, data.filter(_equals(row))) for row in keys.to_pylist()]
    else:
        groups = [({}, data)]
    records: list[dict[str, Any]] = []
    for values, part in groups:
        folder = "/".join(f"{k}={_partition_text(v)}" for k, v in values.items())
        for start in range(0, part.num_rows, max_rows_per_file):
            chunk = part.slice(start, max_rows_per_file).select(file_columns)
            relative = (f"{folder}/" if folder else "") + f"part-{uuid.uuid4().hex}.parquet"
            target = root / relative
            if local:
                target.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(chunk, target, compression="snappy")
                size = target.stat().st_size
            else:  # one PUT of the whole file
                buffer = pa.BufferOutputStream()
                pq.write_table(chunk, buffer, compression="snappy")
                content = buffer.getvalue()
                with target.open("wb") as out:
                    out.write(content)
                size = content.size
            records.append({
                "path": relative,
                "size": size,
                "partition_values": json.dumps({k: _partition_text(v) for k, v in values.items()}),
                "modification_time": int(time.time() * 1000),
                "stats": json.dumps(file_statistics(chunk)),
                "rows": chunk.num_rows,
            })
    yield pa.RecordBatch.from_pylist(records, schema=FILE_RECORD_SCHEMA)


def _equals(row: dict[str, Any]) -> pc.Expression:
    condition: pc.Expression | None = None
    for name, value in row.items():
        term = pc.field(name).is_null() if value is None else pc.field(name) == value
        condition = term if condition is None else condition & term
    assert condition is not None
    return condition
