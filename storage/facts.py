"""Table facts without Spark: versions, row counts and files from the Delta log, and the
lake's reconciliation (bronze = silver + quarantine)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from config.location import table_uri
from config.reasons import Reason
from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS, Table, lake_tables
from storage.delta import count_by, open_table, read_table


def table_facts(table: Table, lake_dir: Path) -> dict[str, int] | None:
    """Version, row count and data files of ``table``, from the Delta log alone.

    Rows are the sum of the ``numRecords`` statistics of the snapshot's add actions, so no
    data file is opened (a file without statistics is counted from its Parquet footer).

    Returns:
        ``{"rows", "version", "files", "bytes"}``, or None if the table does not exist yet.
    """
    delta = open_table(table, lake_dir)
    if delta is None:
        return None
    actions = pa.table(delta.get_add_actions(flatten=True))
    records = actions.column("num_records") if actions.num_rows else pa.array([], pa.int64())
    rows = int(pc.sum(records).as_py() or 0)
    if records.null_count:
        rows = delta.to_pyarrow_dataset().count_rows()
    return {
        "rows": rows,
        "version": delta.version(),
        "files": actions.num_rows,
        "bytes": int(pc.sum(actions.column("size_bytes")).as_py() or 0) if actions.num_rows else 0,
    }


def lake_status(lake_dir: Path) -> dict[str, Any]:
    """Counts and reconciliation of the lake at ``lake_dir``.

    Returns:
        ``{"lake": str, "tables": {name: table_facts(...) | None},
        "reconciliation": {"bronze", "silver", "quarantine", "duplicates", "rejected",
        "by_reason", "balanced"}, "last_ingest_time": ISO-8601 UTC or None}``.
        ``balanced`` is ``bronze == silver + quarantine``, where quarantine includes the
        duplicates.
    """
    registered = lake_tables(lake_dir)
    tables: dict[str, Any] = {table.name: table_facts(table, lake_dir) for table in registered}
    by_reason = count_by(SILVER_QUARANTINE, lake_dir, "reason")
    rows = {t.name: (tables[t.name] or {}).get("rows", 0) for t in registered}
    bronze, silver = rows[BRONZE_TICKS.name], rows[SILVER_TICKS.name]
    quarantine = rows[SILVER_QUARANTINE.name]
    duplicates = by_reason.get(Reason.DUPLICATE_TICK_ID, 0)
    ingest = read_table(BRONZE_TICKS, lake_dir, ["ingest_time"]).column("ingest_time")
    last: datetime | None = pc.max(ingest).as_py() if len(ingest) else None
    return {
        "lake": table_uri(lake_dir),
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
