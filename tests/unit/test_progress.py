"""Progress records under the lake: every record of a job, and the newest of each job."""

import json
from pathlib import Path
from types import SimpleNamespace

from storage.progress import PROGRESS_DIR, latest_progress, progress_records


def test_records_in_order_and_the_newest_per_job_skipping_a_torn_line(lake: Path) -> None:
    """A line still being written (no closing brace) is skipped; the newest whole record of
    each job is its latest; a job without a file has no records."""
    folder = lake / PROGRESS_DIR
    folder.mkdir()
    silver = [{"job": "silver", "batch_id": i, "rows": 10 * i} for i in range(3)]
    (folder / "silver.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in silver) + '{"job": "silver", "batch_id": 3')
    (folder / "gold.jsonl").write_text(json.dumps({"job": "gold", "batch_id": 7}) + "\n")
    assert progress_records(lake, "silver") == silver
    assert progress_records(lake, "bronze") == []
    assert latest_progress(lake) == {"silver": silver[-1], "gold": {"job": "gold", "batch_id": 7}}


class _Query:
    """What :class:`pipeline.progress.ProgressRecorder` reads of a ``StreamingQuery``."""

    def __init__(self) -> None:
        self.recentProgress: list[SimpleNamespace] = []

    def trigger(self, batch_id: int, rows: int, second: int) -> None:
        """Spark's progress of one trigger (a no-data trigger has ``rows`` 0)."""
        self.recentProgress.append(SimpleNamespace(json=json.dumps({
            "name": "ticklake_live", "id": "q", "runId": "r", "batchId": batch_id,
            "timestamp": f"2026-12-04T01:29:{second:02d}.000Z", "numInputRows": rows,
            "durationMs": {"triggerExecution": 10}, "sources": [{"numInputRows": rows}]})))


def test_the_first_batch_after_an_idle_trigger_is_recorded(lake: Path) -> None:
    """Spark reports a no-data trigger with the id of the batch that runs next; the batch
    that then runs under that id, with rows, is recorded too, and a second poll of the same
    progress adds nothing."""
    from pipeline.progress import ProgressRecorder

    query = _Query()
    recorder = ProgressRecorder(lake)
    query.trigger(1, 0, 1)
    assert recorder.poll([query]) == 1
    for batch_id, rows, second in [(1, 7660, 3), (2, 50607, 24), (3, 0, 40), (3, 12, 50)]:
        query.trigger(batch_id, rows, second)
    assert recorder.poll([query]) == 4
    assert recorder.poll([query]) == 0
    assert [(r["batch_id"], r["rows"]) for r in progress_records(lake, "live")] == [
        (1, 0), (1, 7660), (2, 50607), (3, 0), (3, 12)]
