"""Crashes where they hurt: right after a sink's Delta commit, before Spark's checkpoint.

A fault point (``TICKLAKE_FAULT_AFTER_COMMIT=TABLE@BATCH``, off by default) ends the job's
process right after it committed that micro-batch to that table. The restarted job replays
the micro-batch; the tables that hold it must skip it ("already committed"), the others must
write it, and the lake must equal a run without faults.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.settings import Settings
from config.tables import BRONZE_TICKS
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.sink import FAULT_EXIT_CODE
from tests.integration.test_faults import assert_same_silver_and_gold, table_values
from ticklake.broker import ensure_topic
from ticklake.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]
POINTS = [
    # (job, fault point, tables the restart must find already committed)
    ("bronze", "bronze.ticks@1", ["bronze.ticks"]),
    ("silver", "silver.ticks@1", ["silver.ticks"]),  # quarantine, then ticks: both done
    ("gold", "gold.bars_1h@1", ["gold.bars_1m", "gold.bars_5m", "gold.bars_1h"]),
]


def run_to_fault(names: list[str], settings: Settings, point: str | None, log: Path) -> str:
    """Run ``ticklake job NAMES --until-caught-up`` (one process, one JVM) with the fault point
    ``point`` (None: none) to its end; assert it ended at the fault point (with its log line),
    or with code 0 without one; return its log."""
    env = {**os.environ, "TICKLAKE_TOPIC": settings.topic,
           "TICKLAKE_MAX_OFFSETS_PER_TRIGGER": "200", "TICKLAKE_MAX_FILES_PER_TRIGGER": "1",
           "TICKLAKE_SPARK_UI_ENABLED": "false"}
    env.pop("TICKLAKE_FAULT_AFTER_COMMIT", None)
    if point:
        env["TICKLAKE_FAULT_AFTER_COMMIT"] = point
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "ticklake", "job", *names, "--until-caught-up", "--lake",
             str(settings.lake_dir), "--bootstrap-servers", settings.bootstrap_servers],
            stdout=out, stderr=subprocess.STDOUT, env=env, timeout=600)
    text = log.read_text()
    assert code == (FAULT_EXIT_CODE if point else 0), text[-3000:]
    if point:
        assert f"fault point: exiting after committing {point.replace('@', ' batch ')}" in text
    return text


def assert_skipped_exactly(text: str, tables: list[str], batch: int) -> None:
    """The log ``text`` says batch ``batch`` was already committed in each of ``tables`` and
    in no other table."""
    for table in tables:
        assert f"{table}: batch {batch} already committed (a replayed micro-batch)" in text, \
            (table, batch)
    others = [line for line in text.splitlines() if f"batch {batch} already committed" in line
              and not any(f"{t}: batch {batch}" in line for t in tables)]
    assert others == [], f"a table skipped too much: {others}"


def test_a_crash_after_each_sinks_commit_is_replayed_without_a_trace(
    spark, broker: Settings, tmp_path: Path
) -> None:
    """FB replayed in micro-batches of 200 records / 1 file: each job is ended right after
    committing its second micro-batch to one table (Bronze; Silver after quarantine and
    ticks, before the watermarks; Gold between its tables), then restarted. Each restart runs
    in the same process as the next job's faulty run (`ticklake job bronze silver`, then
    `silver gold`: one JVM fewer each): it logs the replayed batch as already committed in
    exactly the tables that hold it and catches up before the next job starts; the last
    restart (`ticklake job gold`) exits 0, and the lake equals a run without faults."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="faultpoints.ticks")
    ensure_topic(settings)
    publish(ReplaySource(["FB"]).ticks(), settings, progress=False)
    previous: tuple[str, list[str]] | None = None
    for name, point, skipped in [*POINTS, (None, None, [])]:
        names = [previous[0]] if previous else []
        names += [name] if name else []
        text = run_to_fault(names, settings, point, tmp_path / f"{'-'.join(names)}.log")
        if previous:
            assert f"{previous[0]} caught up" in text, text[-3000:]
            assert_skipped_exactly(text, previous[1], 1)
        previous = (name, skipped) if name else None

    reference = settings.with_overrides(lake_dir=tmp_path / "reference")
    run_jobs(reference, ["bronze", "silver", "gold"], until_caught_up=True)
    assert_same_silver_and_gold(settings.lake_dir, reference.lake_dir)
    bronze = table_values(BRONZE_TICKS, settings.lake_dir, drop=("ingest_time",))
    assert len(bronze) == 784 and not bronze.duplicated(["partition", "offset"]).any()


LIVE_POINTS = [
    # (fault point, tables the next restart must log as already committed for that batch)
    ("bronze.ticks@1", ["bronze.ticks"]),
    ("silver.ticks@2", ["bronze.ticks", "silver.ticks"]),  # quarantine, then ticks: both done
    ("gold.bars_1h@3", ["bronze.ticks", "silver.watermarks", "gold.bars_1m", "gold.bars_5m",
                        "gold.bars_1h"]),
    (None, []),
]


def test_the_live_query_replays_a_crash_after_each_layers_commit(
    spark, broker: Settings, tmp_path: Path
) -> None:
    """`ticklake job live` (one query writing Bronze, Silver and Gold per micro-batch), ended
    right after committing batch 1 to Bronze, then batch 2 to Silver, then batch 3 to one of
    Gold's tables, restarted each time: each restart logs the replayed batch as already
    committed in exactly the tables that hold it, Gold reads that batch's ticks back from
    Silver's commit, and the lake equals the per-layer jobs' lake on the same topic."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="livefaults.ticks")
    ensure_topic(settings)
    publish(ReplaySource(["FB"]).ticks(), settings, progress=False)
    previous: tuple[int, list[str]] | None = None
    for point, skipped in LIVE_POINTS:
        text = run_to_fault(["live"], settings, point, tmp_path / f"live-{point}.log")
        if previous:
            assert_skipped_exactly(text, previous[1], previous[0])
        previous = (int(point.split("@")[1]), skipped) if point else None

    reference = settings.with_overrides(lake_dir=tmp_path / "reference")
    run_jobs(reference, ["bronze", "silver", "gold"], until_caught_up=True)
    assert_same_silver_and_gold(settings.lake_dir, reference.lake_dir)
    bronze = table_values(BRONZE_TICKS, settings.lake_dir, drop=("ingest_time",))
    assert len(bronze) == 784 and not bronze.duplicated(["partition", "offset"]).any()


@pytest.mark.parametrize("names", [("bronze", "silver", "gold"), ("live",)])
def test_sigterm_stops_live_jobs_cleanly(broker: Settings, tmp_path: Path,
                                         names: tuple[str, ...]) -> None:
    """`ticklake job bronze silver gold` (and `ticklake job live`) running live, sent SIGTERM
    once it has committed a micro-batch: it exits with code 0, says it stopped cleanly, with
    no traceback and no crash of the JVM."""
    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic=f"sigterm.{names[0]}")
    ensure_topic(settings)
    publish(ReplaySource(["FB"], limit_days=20).ticks(), settings, progress=False)
    log = tmp_path / "jobs.log"
    env = {**os.environ, "TICKLAKE_TOPIC": settings.topic, "TICKLAKE_SPARK_UI_ENABLED": "false"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ticklake", "job", *names, "--lake",
             str(settings.lake_dir), "--bootstrap-servers", settings.bootstrap_servers],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        last_done = settings.lake_dir / "_progress" / f"{names[-1]}.jsonl"
        assert wait_until(last_done.exists, 180), log.read_text()[-3000:]
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert f"stopped {', '.join(names)} cleanly" in text
    for bad in ("Traceback", "Segmentation fault", "SIGSEGV", "reentrant call"):
        assert bad not in text, bad
