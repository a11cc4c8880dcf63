"""A streaming query listener that logs each micro-batch's progress as one JSON line and
keeps it under the lake (:mod:`storage.progress`)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from pyspark.sql.streaming.listener import StreamingQueryListener

from storage.progress import PROGRESS_DIR, append_progress, progress_record

log = logging.getLogger(__name__)


class ProgressRecorder(StreamingQueryListener):
    """A listener that logs each micro-batch's progress and keeps it under the lake.

    Args:
        lake_dir: the lake; records go to ``<lake>/_progress/<job>.jsonl``.
    """

    def __init__(self, lake_dir: Path) -> None:
        self.folder = Path(lake_dir) / PROGRESS_DIR
        self.lock = threading.Lock()

    def onQueryStarted(self, event: Any) -> None:
        log.info("query %s started (id %s, run %s)", event.name, event.id, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        try:
            record = progress_record(json.loads(event.progress.json))
        except (ValueError, AttributeError) as exc:  # never let a listener kill the query
            log.warning("unreadable query progress: %s", exc)
            return
        if not record["job"]:
            return
        line = json.dumps(record, separators=(",", ":"), default=str)
        log.info("progress %s", line)
        append_progress(self.folder, record["job"], line, self.lock)

    def onQueryIdle(self, event: Any) -> None:
        """Idle triggers carry no new rows; nothing to record."""

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception:
            log.error("query %s failed: %s", event.id, event.exception.splitlines()[0])
