"""Table maintenance: compact small files, write log checkpoints, vacuum old files.

Safe while the streaming jobs run: compaction commits with ``dataChange=false`` (the Delta
stream source reads change data feeds, which such commits do not touch, so no row is read
twice); a compaction that conflicts with a concurrent MERGE is skipped for this round; vacuum
only deletes files unreferenced for longer than ``retention_hours`` (default 168 h = 7 days,
the Delta default), so a stream lagging less than that never misses a file.

On an S3 lake the tables delta-spark appends to (:data:`SPARK_APPENDED`) are not compacted
here: delta-spark's S3 log store writes a commit without S3's conditional put, so a
compaction delta-rs committed under the same version a moment before could be overwritten
(docs/architecture.md, "The lake on S3"). Their checkpoints and vacuum still run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deltalake.exceptions import CommitFailedError, DeltaError

from config.errors import ConfigError
from config.location import is_object_store
from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS, lake_tables
from storage.delta import ensure_table, open_table

log = logging.getLogger(__name__)
DEFAULT_RETENTION_HOURS = 168
SPARK_APPENDED = frozenset({BRONZE_TICKS.name, SILVER_TICKS.name, SILVER_QUARANTINE.name})
"""Tables the per-layer jobs append to with delta-spark (:mod:`pipeline.delta_writes`)."""


def maintain(lake_dir: Path, retention_hours: int = DEFAULT_RETENTION_HOURS) -> dict[str, Any]:
    """Compact, checkpoint and vacuum every existing table of the lake.

    Args:
        lake_dir: the lake.
        retention_hours: files unreferenced for longer than this are deleted (>= 168, the
            Delta default that protects readers of older versions).

    Returns:
        Per table: ``files_before``, ``files_after`` (active data files), ``vacuumed`` (files
        deleted), ``skipped`` (why compaction was skipped, if it was: a conflict, or a table
        delta-spark appends to in an S3 lake).

    Raises:
        ConfigError: ``retention_hours`` < 168.
    """
    if retention_hours < DEFAULT_RETENTION_HOURS:
        raise ConfigError(
            f"retention_hours={retention_hours} is below {DEFAULT_RETENTION_HOURS}: readers of "
            "older table versions (lagging streams, time travel) could lose files"
        )
    report: dict[str, Any] = {}
    for table in lake_tables(lake_dir):
        delta = open_table(table, lake_dir)
        if delta is None:
            continue
        entry: dict[str, Any] = {"files_before": len(delta.file_uris()), "skipped": None}
        if table.name in SPARK_APPENDED and is_object_store(lake_dir):
            entry["skipped"] = ("not compacted on S3: delta-spark appends to it without a "
                                "conditional put (compact it with Spark's OPTIMIZE)")
        else:
            try:
                delta.optimize.compact()
            except (CommitFailedError, DeltaError) as exc:  # a concurrent MERGE won
                entry["skipped"] = f"compaction conflicted with a concurrent write: {exc}"[:300]
                log.warning("%s: %s", table.name, entry["skipped"])
        delta = open_table(table, lake_dir) or delta
        delta.create_checkpoint()
        entry["vacuumed"] = len(delta.vacuum(retention_hours=retention_hours, dry_run=False))
        delta.cleanup_metadata()
        entry["files_after"] = len(delta.file_uris())
        report[table.name] = entry
    return report


def upgrade(lake_dir: Path) -> dict[str, dict[str, Any]]:
    """Bring every existing table of the lake to the registered schema, in place: the columns a
    table made by an older ticklake lacks (e.g. ``asset_class``, ``currency`` and
    ``volume_decimal`` of tick message v2) are added in one metadata commit per table, Delta's
    "add columns" schema evolution (:func:`storage.delta.ensure_table`). No data file is
    rewritten or removed; rows written before read the new columns as null. Idempotent: an
    up-to-date table is not touched. The streaming jobs do the same for their own tables when
    they start.

    Returns:
        Per existing table: ``version_before``, ``version_after`` and ``added`` (column names).

    Raises:
        storage.StorageError: a registered column a table lacks is not nullable.
    """
    report: dict[str, dict[str, Any]] = {}
    for table in lake_tables(lake_dir):
        delta = open_table(table, lake_dir)
        if delta is None:
            continue
        before = set(delta.schema().to_arrow().names)
        version = delta.version()
        after = ensure_table(table, lake_dir)
        report[table.name] = {
            "version_before": version, "version_after": after.version(),
            "added": [name for name in after.schema().to_arrow().names if name not in before]}
    return report
