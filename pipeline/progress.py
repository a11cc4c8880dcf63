"""Streaming query progress, recorded from the driver's polling loop.

The runner polls each query's ``recentProgress`` once a second (and once more when it ends);
every new micro-batch's ``StreamingQueryProgress`` is logged as one JSON line and kept under
the lake (:mod:`storage.progress`). Polling, not a ``StreamingQueryListener``: a Python
listener is called back from the JVM, and events still in flight when the driver exits end in
py4j errors; polling reads what Spark already holds, also after the query stopped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql.streaming.query import StreamingQuery

from config.location import lake_location
from storage.progress import PROGRESS_DIR, append_progress, progress_record

log = logging.getLogger(__name__)


class ProgressRecorder:
    """Records each new micro-batch of the polled queries, once.

    A trigger that finds no new data reports the id of the micro-batch that will run next
    (Spark's ``StreamingQueryProgress`` of a no-data trigger), so the same batch id comes
    twice: first without rows, then with the rows once that batch has run. Both are recorded,
    once each; the first micro-batch after every idle spell would be lost if batch ids alone
    were compared.

    Args:
        lake_dir: the lake; records go to ``<lake>/_progress/<job>.jsonl``.
    """

    def __init__(self, lake_dir: Path) -> None:
        self.folder = lake_location(lake_dir) / PROGRESS_DIR
        self.lock = threading.Lock()
        self.last_batch: dict[str, tuple[int, bool]] = {}
        """Per query run the newest (batch id, had rows) recorded."""
        self.written: dict[str, list[str]] = {}
        """Per job the lines of its progress file on an S3 lake (:func:`append_progress`)."""

    def poll(self, queries: Sequence[StreamingQuery]) -> int:
        """Record the micro-batches of ``queries`` not recorded yet; return how many."""
        recorded = 0
        for query in queries:
            for progress in query.recentProgress:
                try:
                    record = progress_record(json.loads(progress.json))
                except (ValueError, AttributeError) as exc:
                    log.warning("unreadable query progress: %s", exc)
                    continue
                run = str(record["run_id"])
                batch = int(record["batch_id"] if record["batch_id"] is not None else -1)
                key = (batch, bool(record["rows"]))  # (1, False) < (1, True) < (2, False)
                if not record["job"] or key <= self.last_batch.get(run, (-1, False)):
                    continue
                self.last_batch[run] = key
                if not record["rows"] and not record["sources"]:
                    continue
                line = json.dumps(record, separators=(",", ":"), default=str)
                log.info("progress %s", line)
                try:
                    append_progress(self.folder, record["job"], line, self.lock, self.written)
                except Exception as exc:  # noqa: BLE001 - any client error of the storage
                    # the log line above stays; the lake's copy is for the dashboard and
                    # status only, and an unreachable S3 endpoint must not end the job
                    log.warning("progress record of %s batch %s not kept in %s: %s",
                                record["job"], record["batch_id"], self.folder,
                                str(exc).splitlines()[0][:200] if str(exc) else type(exc))
                recorded += 1
        return recorded
