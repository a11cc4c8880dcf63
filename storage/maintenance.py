"""Table maintenance: compact small files, write log checkpoints, vacuum old files.

Safe while the streaming jobs run: compaction commits with ``dataChange=false`` (the Delta
stream source reads change data feeds, which such commits do not touch, so no row is read
twice); a compaction that conflicts with a concurrent MERGE is skipped for this round; vacuum
only deletes files unreferenced for longer than ``retention_hours`` (default 168 h = 7 days,
the Delta default), so a stream lagging less than that never misses a file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from deltalake.exceptions import CommitFailedError, DeltaError

from config.errors import ConfigError
from config.tables import lake_tables
from storage.delta import open_table

log = logging.getLogger(__name__)
DEFAULT_RETENTION_HOURS = 168


def maintain(lake_dir: Path, retention_hours: int = DEFAULT_RETENTION_HOURS) -> dict[str, Any]:
    """Compact, checkpoint and vacuum every existing table of the lake.

    Args:
        lake_dir: the lake.
        retention_hours: files unreferenced for longer than this are deleted (>= 168, the
            Delta default that protects readers of older versions).

    Returns:
        Per table: ``files_before``, ``files_after`` (active data files), ``vacuumed`` (files
        deleted), ``skipped`` (why compaction was skipped, if it was).

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
        try:
            delta.optimize.compact()
        except (CommitFailedError, DeltaError) as exc:  # a concurrent MERGE won: next round
            entry["skipped"] = f"compaction conflicted with a concurrent write: {exc}"[:300]
            log.warning("%s: %s", table.name, entry["skipped"])
        delta = open_table(table, lake_dir) or delta
        delta.create_checkpoint()
        entry["vacuumed"] = len(delta.vacuum(retention_hours=retention_hours, dry_run=False))
        delta.cleanup_metadata()
        entry["files_after"] = len(delta.file_uris())
        report[table.name] = entry
    return report
