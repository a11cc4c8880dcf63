"""Distributed micro-batch writes: executors write the files, the driver commits them.

:func:`append_on_executors` is how every append-only layer (Bronze, Silver, quarantine)
writes a micro-batch: the rows stay on the executors, which write Parquet files under the
table (:func:`storage.files.write_data_files`); the driver collects one small record per file
and commits them all in one Delta transaction with the (query, batch id) app transaction
(:meth:`storage.sink.DeltaSink.commit_files`), so exactly-once holds.

:func:`route_on_executors` does the same for several tables in one pass over the rows (Silver
and its quarantine): each row goes to the first table whose condition holds, the executors
write every table's files in the same task, and the driver commits the tables one after the
other in the order given. It can also return a small per-task aggregate of one table's rows
(:class:`TaskAggregate`, e.g. Gold's partial bars of the ticks Silver takes), computed in the
same task from the rows it writes, so those rows are not read again, and write every row a
second time into tables that take them all (:class:`Copy`, e.g. Bronze in live mode), so a
micro-batch's rows cross from the JVM to Python once for all its tables.
:func:`routed_write` adds a summary of every task's rows and a guard column that calls the
whole pass off (Silver's one-pass write in live mode, :func:`pipeline.silver.silver_batch_writer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from config.settings import Settings
from config.tables import Table
from pipeline.checkpoints import replay_record
from pipeline.workers import freeze_imports
from storage.files import FILE_RECORD_SCHEMA, write_data_files
from storage.sink import DeltaSink

ROUTE_COLUMN = "_route"
"""Index of the target table of each row, added by :func:`route_on_executors`."""
PAYLOAD_COLUMN = "_payload"
"""A task's aggregate as one Arrow IPC stream (null on file records)."""
ROUTED_RECORD_SCHEMA = (FILE_RECORD_SCHEMA.append(pa.field(ROUTE_COLUMN, pa.int32()))
                        .append(pa.field(PAYLOAD_COLUMN, pa.binary())))
ROUTED_RECORD_SPARK_SCHEMA = from_arrow_schema(ROUTED_RECORD_SCHEMA)


def job_sink(table: Table, settings: Settings, app_id: str) -> DeltaSink:
    """The exactly-once sink of a streaming job for ``table``, with the fault point of
    ``settings.fault_after_commit`` (off by default) wired in, and each commit's
    ``userMetadata`` saying where the query stands (:func:`pipeline.checkpoints.replay_record`,
    for a job that reads a Delta table)."""
    return DeltaSink(table, settings.lake_dir, app_id,
                     exit_after_batch=settings.fault_batch(table.name),
                     user_metadata=lambda batch_id: replay_record(settings, app_id, batch_id))


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
    return route_on_executors(frame, [(sink, F.lit(True))], batch_id)[0]


@dataclass(frozen=True)
class TaskAggregate:
    """A small aggregate of the rows one target receives, computed by each task from the rows
    it writes (:func:`route_on_executors`).

    Attributes:
        target: index of the target (in ``targets``) whose rows are aggregated.
        function: runs on the executor: that target's rows of one task (a table with at least
            the target's columns, possibly no rows) -> a small table, at most a few rows per
            key; must not depend on how the rows are split into tasks beyond what
            ``combine`` undoes.
        combine: runs on the driver: the tasks' aggregates concatenated -> the batch's.
    """

    target: int
    function: Callable[[pa.Table], pa.Table]
    combine: Callable[[pa.Table], pa.Table]


@dataclass(frozen=True)
class Copy:
    """A table that takes every row of a routed pass (:func:`route_and_aggregate`), whatever
    the targets' conditions say: live mode writes Bronze this way, beside Silver and its
    quarantine, from the rows Silver classified.

    Attributes:
        sink: the table's exactly-once sink; copies are committed before the targets.
        renamed: table column -> the frame's column, for the columns the frame names
            differently (the others are taken by name).
    """

    sink: DeltaSink
    renamed: Mapping[str, str] = field(default_factory=dict)

    def source_columns(self) -> list[str]:
        """The frame's columns this table's columns come from, in the table's order."""
        return [self.renamed.get(name, name) for name in self.sink.table.schema.names]


def route_on_executors(
    frame: DataFrame, targets: Sequence[tuple[DeltaSink, Column]], batch_id: int | None
) -> list[int]:
    """Append each row of ``frame`` to the first target whose condition holds, in one pass.

    Executors write the files of every target in the same task; the driver then commits the
    targets one by one, in the order given, each with its own (app, batch id) transaction. A
    target that committed ``batch_id`` already (a replayed micro-batch) is skipped, and so
    are its rows; rows no condition takes are not written.

    Args:
        frame: rows with (at least) the columns of every target's table.
        targets: ``(sink, condition)`` pairs; a condition is a boolean Spark column.
        batch_id: the micro-batch id recorded with each commit (None: batch writes).

    Returns:
        Per target, the rows committed (0 for a target committed already).
    """
    return route_and_aggregate(frame, targets, batch_id)[0]


def route_and_aggregate(
    frame: DataFrame, targets: Sequence[tuple[DeltaSink, Column]], batch_id: int | None,
    aggregate: TaskAggregate | None = None, copies: Sequence[Copy] = (),
) -> tuple[list[int], pa.Table | None]:
    """:func:`route_on_executors`, plus ``aggregate`` of the rows its target receives, plus
    ``copies``: tables that take every row of ``frame``, written in the same tasks and
    committed first (each skipped when it holds ``batch_id`` already).

    Returns:
        ``(counts, aggregated)``: the rows committed per target, then per copy, and
        ``aggregate.combine`` of the tasks' aggregates of the rows committed to
        ``aggregate.target`` now, or None when no aggregate was asked for, no task had rows,
        or the target holds ``batch_id`` from an earlier attempt (a replay) or another
        writer: then read its rows from that commit.
    """
    routed = routed_write(frame, targets, batch_id, aggregate, copies)
    return routed.counts, routed.aggregated


@dataclass(frozen=True)
class RoutedWrite:
    """What :func:`routed_write` did.

    Attributes:
        counts: rows committed per target, then per copy (0 for one committed already).
        aggregated: the combined ``aggregate`` of the rows committed to its target now, or
            None (see :func:`route_and_aggregate`).
        summary: the combined ``summary`` of every task's rows, or None when none was asked
            for or no task had rows.
        vetoed: a task found a row whose ``guard`` column is true: nothing was committed
            (the files the other tasks wrote were deleted where the table is local).
    """

    counts: list[int]
    aggregated: pa.Table | None = None
    summary: pa.Table | None = None
    vetoed: bool = False


VETO_ROUTE = -1
""":data:`ROUTE_COLUMN` of the record a task returns instead of its files when a row of it
fails the pass's ``guard`` (:func:`routed_write`)."""


def routed_write(
    frame: DataFrame, targets: Sequence[tuple[DeltaSink, Column]], batch_id: int | None,
    aggregate: TaskAggregate | None = None, copies: Sequence[Copy] = (),
    summary: Callable[[pa.Table], pa.Table] | None = None,
    combine_summary: Callable[[pa.Table], pa.Table] | None = None,
    guard: str | None = None, carry: Sequence[str] = (),
) -> RoutedWrite:
    """:func:`route_and_aggregate`, with a summary of every row and a guard that can call the
    whole pass off.

    Args:
        frame, targets, batch_id, aggregate, copies: see :func:`route_and_aggregate`.
        summary: runs on the executor: one task's rows (``carry`` columns and the targets')
            -> a small table; ``combine_summary`` (driver) makes the batch's from the tasks'
            (default: concatenated as they are).
        guard: a boolean column of ``frame``: a task with a row where it is true writes
            nothing and the pass commits nothing (:attr:`RoutedWrite.vetoed`), so the caller
            can write the batch another way.
        carry: columns of ``frame`` the tasks get for every row (for ``summary``), besides
            what the targets and copies take.

    Returns:
        :class:`RoutedWrite`.
    """
    pending = [i for i, (sink, _) in enumerate(targets) if not sink.committed(batch_id)]
    copying = [len(targets) + j for j, copy in enumerate(copies)
               if not copy.sink.committed(batch_id)]
    if not pending and not copying:
        return RoutedWrite([0] * (len(targets) + len(copies)))
    aggregating = aggregate if aggregate is not None and aggregate.target in pending else None
    route = F.lit(None).cast("int")
    for i in reversed(range(len(targets))):  # the first condition that holds, committed or not
        route = F.when(targets[i][1], F.lit(i)).otherwise(route)
    sinks = [*(sink for sink, _ in targets), *(copy.sink for copy in copies)]
    specs = [(i, sinks[i].path, sinks[i].table.schema, sinks[i].partition_columns)
             for i in pending]
    copy_specs = [(i, sinks[i].path, sinks[i].table.schema, sinks[i].partition_columns,
                   copies[i - len(targets)].source_columns()) for i in copying]

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        freeze_imports()  # once per Python worker: pipeline.workers
        received = [b for b in batches if b.num_rows]
        if not received:
            return
        rows = pa.Table.from_batches(received)
        if guard is not None and pc.any(rows.column(guard)).as_py():
            yield _payload_record(pa.table({}), VETO_ROUTE)
            return
        if summary is not None:
            yield _payload_record(summary(rows), SUMMARY_ROUTE)
        for index, root, schema, partitions, sources in copy_specs:
            every = rows.select(sources).rename_columns(schema.names)
            for records in write_data_files(iter(every.to_batches()), root, schema, partitions):
                yield _file_records(records, index)
        for index, root, schema, partitions in specs:
            mine = rows.filter(pc.equal(rows.column(ROUTE_COLUMN), pa.scalar(index, pa.int32())))
            for records in write_data_files(iter(mine.to_batches()), root, schema, partitions):
                yield _file_records(records, index)
            if aggregating is not None and index == aggregating.target:
                yield _payload_record(aggregating.function(mine), index)

    routed = frame.withColumn(ROUTE_COLUMN, route)
    needed: dict[str, list[int]] = {}
    for index, _, schema, _ in specs:
        for name in schema.names:
            needed.setdefault(name, []).append(index)
    everywhere = dict.fromkeys([*(name for *_, sources in copy_specs for name in sources),
                                *carry, *([guard] if guard is not None else [])])
    # a row carries to the executor's Python worker only the columns of its own table (and
    # of the copies, which take every row, and the carried ones)
    slim = routed.select(
        *[F.col(name) if name in everywhere or len(needed.get(name, ())) == len(specs)
          else F.when(F.col(ROUTE_COLUMN).isin(needed[name]), F.col(name)).alias(name)
          for name in dict.fromkeys([*needed, *everywhere])],
        ROUTE_COLUMN)
    written = slim.mapInArrow(write, ROUTED_RECORD_SPARK_SCHEMA)
    collected = [row.asDict() for row in written.collect()]
    records = [r for r in collected if r[PAYLOAD_COLUMN] is None]
    if any(r[ROUTE_COLUMN] == VETO_ROUTE for r in collected):
        _delete_files(records, sinks)
        return RoutedWrite([0] * len(sinks), vetoed=True)
    counts = [0] * len(sinks)
    fresh = set()
    for i in [*copying, *pending]:
        mine = [r for r in records if r[ROUTE_COLUMN] == i]
        if sinks[i].commit_files(mine, batch_id):
            counts[i] = sum(int(r["rows"]) for r in mine)
            fresh.add(i)
    summaries = _payloads(collected, SUMMARY_ROUTE)
    summarised = None
    if summaries:
        joined = pa.concat_tables(summaries)
        summarised = combine_summary(joined) if combine_summary is not None else joined
    if aggregating is None or aggregating.target not in fresh:
        # none asked, or another writer committed the target meanwhile
        return RoutedWrite(counts, None, summarised)
    parts = _payloads(collected, aggregating.target)
    return RoutedWrite(counts, aggregating.combine(pa.concat_tables(parts)) if parts else None,
                       summarised)


SUMMARY_ROUTE = -2
""":data:`ROUTE_COLUMN` of the record that carries a task's ``summary`` (:func:`routed_write`)."""


def _payloads(collected: Sequence[Mapping[str, Any]], route: int) -> list[pa.Table]:
    """The tables carried by the payload records of ``route``."""
    return [pa.ipc.open_stream(pa.py_buffer(bytes(r[PAYLOAD_COLUMN]))).read_all()
            for r in collected if r[PAYLOAD_COLUMN] is not None and r[ROUTE_COLUMN] == route]


def _delete_files(records: Sequence[Mapping[str, Any]], sinks: Sequence[DeltaSink]) -> None:
    """Delete the data files of an uncommitted pass where the table is a local directory
    (elsewhere, e.g. object storage, vacuum removes them: no commit references them)."""
    for r in records:
        root = sinks[r[ROUTE_COLUMN]].path
        if "://" not in root.removeprefix("file://"):
            Path(root.removeprefix("file://"), r["path"]).unlink(missing_ok=True)


def _file_records(records: pa.RecordBatch, route: int) -> pa.RecordBatch:
    """:func:`storage.files.write_data_files`' records of target ``route``, routed."""
    return records.append_column(
        ROUTE_COLUMN, pa.array([route] * records.num_rows, pa.int32())
    ).append_column(PAYLOAD_COLUMN, pa.nulls(records.num_rows, pa.binary()))


def _payload_record(table: pa.Table, route: int) -> pa.RecordBatch:
    """One routed record that carries ``table`` as an Arrow IPC stream instead of a file."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    row: dict[str, object] = {f.name: None for f in ROUTED_RECORD_SCHEMA}
    row.update({"rows": 0, ROUTE_COLUMN: route, PAYLOAD_COLUMN: sink.getvalue().to_pybytes()})
    return pa.RecordBatch.from_pylist([row], schema=ROUTED_RECORD_SCHEMA)
