"""Streaming query progress records under the lake: ``<lake>/_progress/<job>.jsonl``.

Each micro-batch's ``StreamingQueryProgress`` becomes a compact record (job, batch id, rows,
rows/s, batch duration, source offsets), one JSON line per micro-batch and per no-data
trigger Spark reports, appended by the job's progress polling (:mod:`pipeline.progress`);
``ticklake status`` and the dashboard read the newest one.
A file keeps the newest :data:`KEEP_LINES` records.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from config.location import is_object_store, lake_location, write_atomically

PROGRESS_DIR = "_progress"
"""Folder under the lake that holds one ``<job>.jsonl`` per streaming job."""
KEEP_LINES = 2000
"""Records kept per job (older ones are dropped when the file is rewritten)."""


def progress_record(progress: dict[str, Any]) -> dict[str, Any]:
    """The compact record of one ``StreamingQueryProgress`` (as parsed from its JSON).

    Returns:
        ``{"job", "query_id", "run_id", "batch_id", "timestamp" (ISO-8601 UTC), "rows",
        "input_rows_per_s", "processed_rows_per_s", "batch_duration_ms", "durations_ms",
        "sources": [{"description", "start_offset", "end_offset", "latest_offset", "rows"}]}``.
    """
    name = str(progress.get("name") or "")
    durations = progress.get("durationMs") or {}
    return {
        "job": name.removeprefix("ticklake_"),
        "query_id": progress.get("id"),
        "run_id": progress.get("runId"),
        "batch_id": progress.get("batchId"),
        "timestamp": progress.get("timestamp"),
        "rows": progress.get("numInputRows"),
        "input_rows_per_s": progress.get("inputRowsPerSecond"),
        "processed_rows_per_s": progress.get("processedRowsPerSecond"),
        "batch_duration_ms": durations.get("triggerExecution"),
        "durations_ms": durations,
        "sources": [{
            "description": s.get("description"),
            "start_offset": s.get("startOffset"),
            "end_offset": s.get("endOffset"),
            "latest_offset": s.get("latestOffset"),
            "rows": s.get("numInputRows"),
        } for s in progress.get("sources") or []],
    }


def append_progress(folder: Path, job: str, line: str, lock: threading.Lock,
                    written: dict[str, list[str]] | None = None) -> None:
    """Append ``line`` to ``folder/<job>.jsonl``, keeping its newest :data:`KEEP_LINES` lines.

    On S3, which has no appends, the object is replaced whole with the lines of ``written``
    (job -> the file's lines, the writer's own copy: one writer per job), which is filled
    from the object on the job's first record only; without ``written`` the object is read
    every time."""
    path = folder / f"{job}.jsonl"
    with lock:
        if is_object_store(path):  # no appends on S3: the object is replaced whole
            kept = (written or {}).get(job)
            if kept is None:
                kept = path.read_text().splitlines() if path.exists() else []
            kept = [*kept[-(KEEP_LINES - 1):], line]
            path.write_text("\n".join(kept) + "\n")
            if written is not None:
                written[job] = kept
            return
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(line + "\n")
        if path.stat().st_size > KEEP_LINES * 2000:
            kept = path.read_text().splitlines()[-KEEP_LINES:]
            write_atomically(path, "\n".join(kept) + "\n")


def progress_records(lake_dir: Path, job: str) -> list[dict[str, Any]]:
    """Every progress record kept for ``job``, oldest first (a line being written is skipped)."""
    path = lake_location(lake_dir) / PROGRESS_DIR / f"{job}.jsonl"
    records: list[dict[str, Any]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def latest_progress(lake_dir: Path) -> dict[str, dict[str, Any]]:
    """The newest progress record of each job that wrote one (job -> record)."""
    folder = lake_location(lake_dir) / PROGRESS_DIR
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
        records = progress_records(lake_dir, path.stem)
        if records:
            found[path.stem] = records[-1]
    return found
