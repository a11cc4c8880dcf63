"""Reading Delta tables with delta-rs: snapshots, versions, the files a batch's commit added.

delta-rs facts this module relies on (docs/architecture.md, "Measured facts"):

* Files written by MERGE can carry Arrow view types (``Utf8View``, ``BinaryView``), which Spark
  and some Arrow kernels reject; :func:`conform` casts them back to the registered types. It
  is the one place that works around this.
* After a MERGE, file statistics of string columns are ``string_view`` and a filter pushed
  into the scan that compares them with a ``string`` fails (``ArrowNotImplementedError``,
  deltalake 1.6.6). :func:`read_table` pushes filters down and falls back to filtering after
  the scan when that happens.
* Spark must read a snapshot from the table's file list (:func:`files_overlapping`), never by
  globbing the folder: MERGE leaves removed files on disk until vacuum.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.schema import Field as DeltaField

from config.errors import StorageError
from config.location import delta_storage_options, is_object_store, lake_location, table_uri
from config.tables import Table

log = logging.getLogger(__name__)


def open_table(table: Table, lake_dir: Path) -> DeltaTable | None:
    """The Delta table ``table`` under ``lake_dir``, or None if it does not exist yet."""
    return open_path(str(table.path(lake_dir)))


def open_path(path: str | os.PathLike[str]) -> DeltaTable | None:
    """The Delta table at ``path`` (a local directory or an ``s3://`` URI, reached with the
    AWS variables: :mod:`config.location`), or None if there is none."""
    try:
        return _load(path)
    except TableNotFoundError:
        return None


def _load(path: str | os.PathLike[str]) -> DeltaTable:
    """The Delta table at ``path``, reached as :mod:`config.location` says.

    Raises:
        TableNotFoundError: there is none.
    """
    return DeltaTable(table_uri(path), storage_options=delta_storage_options(path))


def ensure_table(table: Table, lake_dir: Path) -> DeltaTable:
    """Create ``table`` under ``lake_dir`` if it does not exist, else add the registered
    columns it lacks.

    Tables registered with ``change_data_feed=True`` get ``delta.enableChangeDataFeed=true``.
    A table written by an older ticklake gets the newer nullable columns added in one metadata
    commit (Delta's "add columns" schema evolution: existing files are not rewritten, their rows
    read the new columns as null).

    Raises:
        StorageError: a registered column the table lacks is not nullable (cannot be added).
    """
    path = table.path(lake_dir)
    if not is_object_store(path):
        path.mkdir(parents=True, exist_ok=True)
    config = {"delta.enableChangeDataFeed": "true"} if table.change_data_feed else None
    delta = DeltaTable.create(table_uri(path), table.schema, mode="ignore", configuration=config,
                              storage_options=delta_storage_options(path))
    have = set(delta.schema().to_arrow().names)
    missing = [f for f in table.schema if f.name not in have]
    if missing:
        not_null = [f.name for f in missing if not f.nullable]
        if not_null:
            raise StorageError(f"{table.name} at {path} lacks the non-nullable column(s) "
                               f"{not_null}; it cannot be upgraded in place")
        delta.alter.add_columns([DeltaField.from_arrow(f) for f in missing])
        log.info("%s: added column(s) %s", table.name, [f.name for f in missing])
        delta = _load(path)
    return delta


def conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with exactly ``schema``'s columns, cast to its types (e.g. Utf8View -> string).

    Raises:
        KeyError: a column of ``schema`` is missing from ``data``.
        pyarrow.ArrowInvalid: a value cannot be cast.
    """
    return data.select(schema.names).cast(schema)


def _with_added_columns(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with a null column for each column of ``schema`` it lacks: rows written before
    the column was added to the table (Delta's add-columns evolution, :func:`ensure_table`)."""
    for field in schema:
        if field.name not in data.column_names:
            data = data.append_column(field.name, pa.nulls(data.num_rows, field.type))
    return data


def read_table(
    table: Table, lake_dir: Path, columns: list[str] | None = None,
    where: pc.Expression | None = None, delta: DeltaTable | None = None,
) -> pa.Table:
    """The table's current snapshot as Arrow (empty with the registered schema if missing).

    Args:
        table: the registered table.
        lake_dir: the lake.
        columns: only these columns (default all).
        where: a pyarrow filter expression over the table's columns; pushed into the scan
            (file statistics prune files), or applied after it where delta-rs' statistics
            cannot be compared (see the module docstring).
        delta: an open, up-to-date handle of the table to read instead of loading it (a
            sink's, :meth:`storage.sink.DeltaSink.snapshot`).

    Returns:
        Rows with ``columns`` (or every registered column) in the registered types; a
        registered column the table does not have yet (made by an older release, not yet
        upgraded: :func:`ensure_table`) reads as null.
    """
    delta = delta if delta is not None else open_table(table, lake_dir)
    schema = table.schema if columns is None else pa.schema([table.schema.field(c) for c in columns])
    if delta is None:
        return schema.empty_table()
    dataset = delta.to_pyarrow_dataset()
    present = [name for name in schema.names if name in dataset.schema.names]
    if where is None:
        data = dataset.to_table(columns=present)
    else:
        try:
            data = dataset.to_table(columns=present, filter=where)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            data = dataset.to_table().filter(where).select(present)
    return conform(_with_added_columns(data, schema), schema)


def count_by(table: Table, lake_dir: Path, column: str) -> dict[str, int]:
    """Rows per distinct value of ``column`` in ``table`` (empty if the table is missing)."""
    values = read_table(table, lake_dir, [column]).column(column)
    if not len(values):
        return {}
    counts = pc.value_counts(values)
    keys: list[Any] = counts.field("values").to_pylist()
    numbers: list[Any] = counts.field("counts").to_pylist()
    return {str(k): int(n) for k, n in zip(keys, numbers, strict=True)}


def files_overlapping(
    table: Table, lake_dir: Path, column: str, ranges: Sequence[tuple[Any, Any]]
) -> list[str]:
    """URIs of ``table``'s current files whose ``column`` statistics (min, max, from the Delta
    log) overlap any of ``ranges`` (inclusive); files without statistics are included.

    The cost is that of reading the snapshot's add actions, not the data.
    """
    delta = open_table(table, lake_dir)
    if delta is None or not ranges:
        return []
    actions = pa.table(delta.get_add_actions(flatten=True))
    if not actions.num_rows:
        return []
    low_name, high_name = f"min.{column}", f"max.{column}"
    if low_name not in actions.column_names:
        return delta.file_uris()
    lows, highs = actions.column(low_name), actions.column(high_name)
    keep = pc.or_(pc.is_null(lows), pc.is_null(highs))
    for start, end in ranges:
        keep = pc.or_(keep, pc.and_(pc.less_equal(lows, pa.scalar(end, lows.type)),
                                    pc.greater_equal(highs, pa.scalar(start, highs.type))))
    root = table_uri(table.path(lake_dir))
    paths: list[Any] = actions.filter(keep).column("path").to_pylist()
    return [f"{root}/{unquote(p)}" for p in paths]


def table_version(path: str) -> int:
    """Current version of the Delta table at ``path``, or -1 if there is no table yet."""
    delta = open_path(path)
    return delta.version() if delta is not None else -1


def _log_entry(path: str, version: int) -> list[dict[str, Any]] | None:
    """The actions of commit ``version`` of the table at ``path`` (its ``_delta_log`` JSON
    entry, one action per line), or None when the entry is gone (log clean-up)."""
    entry = lake_location(path) / "_delta_log" / f"{version:020d}.json"
    try:
        lines = entry.read_text().splitlines()
    except FileNotFoundError:
        return None
    return [json.loads(line) for line in lines if line.strip()]


def batch_files(path: str, app_id: str, batch_id: int) -> list[str]:
    """Absolute paths of the data files the commit of (``app_id``, ``batch_id``) added to the
    table at ``path``: the commit whose app transaction (``txn``) names that app and batch.

    The log is read from the newest version back, one entry per version, until that commit
    or an older batch of the same app is found, so the cost follows the commits since then
    (other writers' and compaction's), not the table's history.

    Raises:
        StorageError: the table holds no such commit (not committed yet, or its log entry
            was cleaned up).
    """
    root = table_uri(path)
    version = table_version(path)
    while version >= 0:
        actions = _log_entry(path, version)
        if actions is None:
            break
        txn = next((a["txn"] for a in actions
                    if "txn" in a and a["txn"].get("appId") == app_id), None)
        if txn is not None and int(txn["version"]) == batch_id:
            return [f"{root}/{unquote(a['add']['path'])}" for a in actions
                    if "add" in a and a["add"].get("dataChange", True)]
        if txn is not None and int(txn["version"]) < batch_id:
            break
        version -= 1
    raise StorageError(f"{path}: no commit of batch {batch_id} by {app_id} in the log")


def transaction_version(path: str, app_id: str) -> int | None:
    """The last batch id ``app_id`` recorded in the table at ``path`` (None if none)."""
    delta = open_path(path)
    return delta.transaction_version(app_id) if delta is not None else None
