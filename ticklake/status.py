"""Lake status without Spark: row counts, reconciliation, last ingest time (delta-rs only)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from config.tables import ALL_TABLES, BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS, Table


def open_table(table: Table, lake_dir: Path) -> DeltaTable | None:
    """The Delta table, or None if it does not exist yet."""
    try:
        return DeltaTable(str(table.path(lake_dir)))
    except TableNotFoundError:
        return None


def read_table(
    table: Table, lake_dir: Path, columns: list[str] | None = None,
    where: pc.Expression | None = None,
) -> pa.Table:
    """The table's current snapshot as Arrow (empty with the registered schema if missing).

    Args:
        table: the registered table.
        lake_dir: the lake.
        columns: only these columns (default all).
        where: a pyarrow filter expression over the table's columns.

    View types (Utf8View, BinaryView) that delta-rs may return are cast to plain types.
    ``where`` is applied after the scan, not pushed into it: after a delta-rs MERGE the file
    statistics of string columns are ``string_view`` and a pushed-down comparison with a
    ``string`` column fails (ArrowNotImplementedError, deltalake 1.6.6).
    """
    delta = open_table(table, lake_dir)
    schema = table.schema if columns is None else pa.schema([table.schema.field(c) for c in columns])
    if delta is None:
        return schema.empty_table()
    data = delta.to_pyarrow_dataset().to_table(columns=None if where is not None else columns)
    if where is not None:
        data = data.filter(where)
    return data.select(schema.names).cast(schema)


def lake_status(lake_dir: Path) -> dict[str, Any]:
    """Counts and reconciliation of the lake at ``lake_dir``.

    Returns:
        ``{"lake": str, "tables": {name: {"rows", "version", "files"} | None},
        "reconciliation": {"bronze", "silver", "quarantine", "duplicates", "rejected",
        "by_reason", "balanced"}, "last_ingest_time": ISO-8601 UTC or None}``.
        ``balanced`` is ``bronze == silver + quarantine``, where quarantine includes the
        duplicates.
    """
    tables: dict[str, Any] = {}
    for table in ALL_TABLES:
        delta = open_table(table, lake_dir)
        if delta is None:
            tables[table.name] = None
            continue
        tables[table.name] = {
            "rows": delta.to_pyarrow_dataset().count_rows(),
            "version": delta.version(),
            "files": len(delta.file_uris()),
        }
    reasons = read_table(SILVER_QUARANTINE, lake_dir, ["reason"]).column("reason")
    by_reason = {
        str(r["values"]): int(r["counts"]) for r in pc.value_counts(reasons).to_pylist()
    } if len(reasons) else {}
    rows = {t.name: (tables[t.name] or {}).get("rows", 0) for t in ALL_TABLES}
    bronze, silver = rows[BRONZE_TICKS.name], rows[SILVER_TICKS.name]
    quarantine = rows[SILVER_QUARANTINE.name]
    duplicates = by_reason.get("duplicate_tick_id", 0)
    ingest = read_table(BRONZE_TICKS, lake_dir, ["ingest_time"]).column("ingest_time")
    last: datetime | None = pc.max(ingest).as_py() if len(ingest) else None
    return {
        "lake": str(Path(lake_dir).resolve()),
        "tables": tables,
        "reconciliation": {
            "bronze": bronze,
            "silver": silver,
            "quarantine": quarantine,
            "duplicates": duplicates,
            "rejected": quarantine - duplicates,
            "by_reason": by_reason,
            "balanced": bronze == silver + quarantine,
        },
        "last_ingest_time": last.isoformat() if last else None,
    }
