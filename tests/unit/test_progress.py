"""Progress records under the lake: every record of a job, and the newest of each job."""

import json
from pathlib import Path

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
