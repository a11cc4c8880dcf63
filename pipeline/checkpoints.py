"""Spark checkpoints that an earlier release's Delta source wrote, carried onto delta-spark's.

Until 0.x the Silver and Gold queries read their source table with ticklake's own Delta
source (``ticklake-delta``), whose offsets are ``{"version": v}``: every commit up to table
version ``v`` read. delta-spark's streaming source cannot read that offset. Rewriting it in
Delta's own form keeps the checkpoint, its batch ids and the job's Delta app id (so a batch
that crashed between a table's commit and Spark's checkpoint is still skipped on replay), and
the query goes on from the next version: nothing read twice, nothing skipped.

Delta's offset (``org.apache.spark.sql.delta.sources.DeltaSourceOffset``, format version 1)
is ``{"sourceVersion": 1, "reservoirId": <table id>, "reservoirVersion": v + 1, "index": -1,
"isStartingVersion": false}``: no file of version ``v + 1`` read yet, which is where Delta's
own source stands after reading every file of version ``v`` (docs/operations.md, "Upgrading
a lake").

Spark-free: ``ticklake upgrade`` runs it without starting Spark, and every job that reads a
Delta table runs it before its query starts (:func:`pipeline.schemas.table_stream`).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from config.errors import ConfigError
from config.location import write_atomically
from config.settings import Settings
from config.tables import BRONZE_TICKS, SILVER_TICKS, lake_tables
from storage.delta import open_path

log = logging.getLogger(__name__)

def spark_checkpoint(settings: Settings, job: str) -> Path:
    """The Spark checkpoint of ``job``'s query: ``<checkpoints>/<job>/spark``."""
    return settings.checkpoints / job / "spark"


APP_ID_FILE = "app_id"
"""The file in ``<checkpoints>/<job>`` (beside the Spark checkpoint) holding the job's Delta app
id (:func:`pipeline.runner.app_id_for` makes it; :func:`restore_checkpoint` writes it back)."""


def new_app_id(job: str) -> str:
    """A new Delta app id for ``job``'s checkpoint: ``<job>-<16 hex digits>`` (random)."""
    return f"{job}-{uuid.uuid4().hex[:16]}"


def job_of_app_id(app_id: str) -> str:
    """The job an app id of :func:`new_app_id` belongs to (the text before its last ``-``)."""
    return app_id.rsplit("-", 1)[0]


DELTA_OFFSET_FORMAT = 1
"""``sourceVersion`` of the offsets written here: Delta reads format 1 and upgrades it to its
current one in memory (``DeltaSourceOffset``)."""
BASE_INDEX = -1
"""Delta's index "before the first file of the version" in offset format 1."""


def _old_version(line: str) -> int | None:
    """The table version of an offset of ticklake's old Delta source, None for any other."""
    try:
        offset = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(offset, dict) and set(offset) == {"version"} and isinstance(
            offset["version"], int):
        return offset["version"]
    return None


def delta_offset(table_id: str, version: int) -> str:
    """Delta's source offset (format 1) for "every commit up to ``version`` read".

    Args:
        table_id: the Delta table's id (its ``metaData.id``).
        version: the last table version read completely (>= -1).
    """
    return json.dumps({"sourceVersion": DELTA_OFFSET_FORMAT, "reservoirId": table_id,
                       "reservoirVersion": version + 1, "index": BASE_INDEX,
                       "isStartingVersion": False}, separators=(",", ":"))


def convert_delta_offsets(checkpoint: Path, table_path: Path, job: str) -> int:
    """Rewrite the offsets of ticklake's old Delta source in ``checkpoint`` (a Spark
    checkpoint: ``offsets/<batch id>`` files) as delta-spark's, in place. Idempotent.

    Each offset file is rewritten atomically (:func:`config.location.write_atomically`); its Hadoop
    checksum file (``.<batch id>.crc``) is removed, since it no longer matches (Hadoop's local
    file system reads a file without one).

    Args:
        checkpoint: the query's Spark checkpoint directory (may not exist).
        table_path: the source Delta table (local directory or S3 path).
        job: the job's name, for messages.

    Returns:
        How many offset files were rewritten (0: none in the old form).

    Raises:
        ConfigError: the old query stopped inside its first micro-batch (no batch in the
            commit log), whose start Delta's source cannot be told (the message says how
            to go on), or the source table does not exist.
    """
    offsets = checkpoint / "offsets"
    old: dict[int, tuple[list[str], int]] = {}
    for path in offsets.glob("[0-9]*") if offsets.is_dir() else ():
        lines = path.read_text().splitlines()
        version = _old_version(lines[-1]) if len(lines) >= 3 else None
        if version is not None:
            old[int(path.name)] = (lines, version)
    if not old:
        return 0
    if not any((checkpoint / "commits").glob("[0-9]*")):
        raise ConfigError(
            f"the {job} job's checkpoint {checkpoint} was written by an earlier ticklake and "
            "stopped inside its first micro-batch, which this release cannot resume; finish "
            f"it with that release (`ticklake job {job} --until-caught-up`), or remove "
            f"{checkpoint.parent} to read {table_path} again from its start")
    delta = open_path(str(table_path))
    if delta is None:
        raise ConfigError(f"the {job} job's source table {table_path} does not exist; its "
                          f"checkpoint {checkpoint} cannot be carried over")
    table_id = str(delta.metadata().id)  # a UUID string; typed int
    for batch_id, (lines, version) in sorted(old.items()):
        write_atomically(offsets / str(batch_id),
                         "\n".join([*lines[:-1], delta_offset(table_id, version)]))
        (offsets / f".{batch_id}.crc").unlink(missing_ok=True)
    log.info("%s: %d offset(s) of the earlier Delta source in %s rewritten as delta-spark's "
             "(last: every commit of %s up to version %d read)", job, len(old), checkpoint,
             table_path, old[max(old)][1])
    return len(old)


DELTA_SOURCES = {"silver": BRONZE_TICKS, "gold": SILVER_TICKS}
"""The jobs that read a Delta table with a streaming source, and the table each reads."""


def convert_lake_checkpoints(settings: Settings) -> dict[str, int]:
    """:func:`convert_delta_offsets` for every job of :data:`DELTA_SOURCES` whose checkpoint
    and source table exist under ``settings``' lake.

    Returns:
        Per job: how many offset files were rewritten.

    Raises:
        ConfigError: see :func:`convert_delta_offsets`.
    """
    report: dict[str, int] = {}
    for job, table in DELTA_SOURCES.items():
        checkpoint = spark_checkpoint(settings, job)
        source = table.path(settings.lake_dir)
        if checkpoint.is_dir() and (source / "_delta_log").is_dir():
            report[job] = convert_delta_offsets(checkpoint, source, job)
    return report


# --- resuming a query whose checkpoint is lost ------------------------------------------------

REPLAY_KEY = "ticklake_replay"
"""The key of the record :func:`replay_record` puts in a commit's ``userMetadata``."""
HISTORY_SCANNED = 1000
"""Commits of each table, newest first, that :func:`restore_checkpoint` looks through for the
job's latest record (other writers, e.g. ``ticklake maintain``, may have committed since)."""
_COMMITTED = 'v1\n{"nextBatchWatermarkMs":0}'
"""A batch's file in Spark's commit log (``commits/<batch id>``) for a query without state."""


def replay_record(settings: Settings, app_id: str, batch_id: int) -> str | None:
    """The ``userMetadata`` a job that reads a Delta table (:data:`DELTA_SOURCES`) puts in each
    commit of micro-batch ``batch_id``: JSON ``{"ticklake_replay": {"app_id", "batch",
    "start", "end"}}``, where ``start`` and ``end`` are the texts of Spark's offset log files of
    batches ``batch_id - 1`` (None for batch 0) and ``batch_id`` (Spark writes them before the
    batch runs). With it :func:`restore_checkpoint` can run the batch again, as Spark would
    from its checkpoint, when the checkpoint is lost.

    Returns:
        The JSON text, or None for another job (:func:`job_of_app_id`) or when the offset
        files are not there.
    """
    job = job_of_app_id(app_id)
    if job not in DELTA_SOURCES:
        return None
    offsets = spark_checkpoint(settings, job) / "offsets"
    end, start = offsets / str(batch_id), offsets / str(batch_id - 1)
    if not end.is_file() or (batch_id > 0 and not start.is_file()):
        return None
    record = {"app_id": app_id, "batch": batch_id, "end": end.read_text(),
              "start": start.read_text() if batch_id > 0 else None}
    return json.dumps({REPLAY_KEY: record}, separators=(",", ":"))


class ReplayRecord(NamedTuple):
    """A :func:`replay_record`, read back."""

    app_id: str
    batch: int
    start: str | None
    end: str


def _record_of(commit: dict[str, Any], job: str) -> ReplayRecord | None:
    """The replay record of ``job`` in a commit's ``commitInfo`` (delta-rs history), if any."""
    text = commit.get("userMetadata")
    if not isinstance(text, str) or REPLAY_KEY not in text:
        return None
    try:
        raw = json.loads(text)[REPLAY_KEY]
        record = ReplayRecord(str(raw["app_id"]), raw["batch"], raw["start"], raw["end"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    if not (job_of_app_id(record.app_id) == job and isinstance(record.batch, int)
            and isinstance(record.end, str)
            and (record.batch == 0 or isinstance(record.start, str))):
        return None
    return record


def restore_checkpoint(settings: Settings, job: str) -> int | None:
    """Give ``job``'s query (one of :data:`DELTA_SOURCES`) back its place when its Spark
    checkpoint holds no batch (lost, or removed) but the lake says where it stood.

    The newest :func:`replay_record` of the job among the commits of the lake's tables names
    the job's app id and its last micro-batch ``N`` that reached a table, with the offsets it
    ran from. This writes a checkpoint (a new query id) in which batch ``N - 1`` is committed
    and batch ``N`` is planned with those offsets, and the job's app id file: Spark then runs
    batch ``N`` again, from the same source offsets, under the same app id, so every table
    that holds it skips it and the others get it; then it goes on with ``N + 1``. Nothing is
    read twice (no tick of Bronze is judged a duplicate of itself, no Gold bar counts a tick
    twice) and nothing is skipped.

    Returns:
        The batch id run again, or None when the checkpoint has a batch, the job reads no
        Delta table, or no table holds a record of the job (a new lake: the query starts at
        the source's beginning).

    Raises:
        ConfigError: a table committed a later batch of that app id than the newest record
            found (its record lies beyond :data:`HISTORY_SCANNED` commits): replaying from
            the older record could skip rows in that table.
    """
    checkpoint = spark_checkpoint(settings, job)
    if job not in DELTA_SOURCES or any((checkpoint / "offsets").glob("[0-9]*")):
        return None
    opened = [(table, delta) for table in lake_tables(settings.lake_dir)
              if (delta := open_path(str(table.path(settings.lake_dir)))) is not None]
    newest: ReplayRecord | None = None
    for _, delta in opened:
        for commit in delta.history(HISTORY_SCANNED):  # newest first
            record = _record_of(commit, job)
            if record is not None:
                if newest is None or record.batch > newest.batch:
                    newest = record
                break
    if newest is None:
        return None
    batch_id, app_id = newest.batch, newest.app_id
    for table, delta in opened:  # no table may be ahead of the record
        ahead = delta.transaction_version(app_id)
        if ahead is not None and ahead > batch_id:
            raise ConfigError(
                f"the {job} job's checkpoint {checkpoint} holds no batch, and {table.name} "
                f"committed batch {ahead} of app id {app_id}, after the newest record of the "
                f"job the lake holds (batch {batch_id}, within the last {HISTORY_SCANNED} "
                "commits of each table): the query's place cannot be told; restore the "
                f"checkpoint from a backup, or start a new lake")
    for folder in ("offsets", "commits"):
        (checkpoint / folder).mkdir(parents=True, exist_ok=True)
    write_atomically(checkpoint / "offsets" / str(batch_id), newest.end)
    if batch_id > 0 and newest.start is not None:
        write_atomically(checkpoint / "offsets" / str(batch_id - 1), newest.start)
        write_atomically(checkpoint / "commits" / str(batch_id - 1), _COMMITTED)
    write_atomically(checkpoint / "metadata", json.dumps({"id": str(uuid.uuid4())}))  # a new query id
    write_atomically(checkpoint.parent / APP_ID_FILE, app_id)
    log.info("%s: the checkpoint %s held no batch; the lake's last record of the job is batch "
             "%d of app id %s, which runs again from the same offsets (tables that hold it "
             "skip it)", job, checkpoint, batch_id, app_id)
    return batch_id
