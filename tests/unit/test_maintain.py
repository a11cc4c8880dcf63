"""Table maintenance: fewer files, same data, batch ids kept (exactly-once survives it)."""

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from config.errors import ConfigError
from config.tables import SILVER_QUARANTINE
from storage.delta import read_table
from storage.facts import lake_status
from storage.maintenance import maintain
from storage.sink import DeltaSink


def batch(i: int) -> pa.Table:
    rows = [{"reason": "not_json", "raw_value": f"{i}-{k}".encode(), "topic": "t",
             "partition": 0, "offset": i * 10 + k} for k in range(10)]
    return pa.Table.from_pylist(rows, schema=pa.schema(
        [SILVER_QUARANTINE.schema.field(n) for n in ("reason", "raw_value", "topic", "partition",
                                                     "offset")]))


def conform(table: pa.Table) -> pa.Table:
    for field in SILVER_QUARANTINE.schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(len(table), field.type))
    return table.select(SILVER_QUARANTINE.schema.names).cast(SILVER_QUARANTINE.schema)


def test_compaction_cuts_files_keeps_rows_and_batch_ids(lake: Path) -> None:
    """12 micro-batches = 12 files; after maintenance 1 file, the same 120 rows, and batch 11
    is still recorded, so a replay of it is still skipped."""
    sink = DeltaSink(SILVER_QUARANTINE, lake, "silver-app")
    for i in range(12):
        sink.append(conform(batch(i)), i)
    before = read_table(SILVER_QUARANTINE, lake).sort_by("offset")
    assert lake_status(lake)["tables"]["silver.quarantine"]["files"] == 12

    report = maintain(lake)

    assert report["silver.quarantine"]["files_before"] == 12
    assert report["silver.quarantine"]["files_after"] == 1
    assert lake_status(lake)["tables"]["silver.quarantine"]["files"] == 1
    assert read_table(SILVER_QUARANTINE, lake).sort_by("offset").equals(before)
    assert DeltaTable(str(SILVER_QUARANTINE.path(lake))).transaction_version("silver-app") == 11
    assert sink.append(conform(batch(11)), 11) is False
    assert read_table(SILVER_QUARANTINE, lake).num_rows == 120


def test_short_retention_is_refused(lake: Path) -> None:
    """Vacuuming below 168 h could delete files a lagging stream still needs."""
    with pytest.raises(ConfigError, match="below 168"):
        maintain(lake, retention_hours=24)
