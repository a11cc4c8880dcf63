"""Crashes and replays: kill -9 the streaming jobs at random moments; replay into a new lake."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from config.settings import Settings
from config.tables import (
    BRONZE_TICKS,
    GOLD_ANOMALIES,
    GOLD_BARS_1D,
    GOLD_BARS_1H,
    GOLD_DAILY_METRICS,
    GOLD_INDICATORS_1D,
    SILVER_QUARANTINE,
    SILVER_TICKS,
)
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.delta import read_table
from storage.maintenance import maintain
from ticklake.broker import ensure_topic
from ticklake.processes import stop_pid

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]
SILVER_VALUES = ["tick_id", "ticker", "event_time", "price", "volume", "source", "seq",
                 "partition", "offset"]
GOLD_TABLES = [GOLD_BARS_1D, GOLD_BARS_1H, GOLD_DAILY_METRICS, GOLD_INDICATORS_1D, GOLD_ANOMALIES]


def table_values(table, lake: Path, drop: tuple[str, ...] = ("updated_at",)) -> pd.DataFrame:
    """The table as a sorted frame without run-dependent columns (update times)."""
    frame = read_table(table, lake).to_pandas()
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    keys = list(table.keys) or list(frame.columns)
    return frame.sort_values(keys).reset_index(drop=True)


def assert_same_silver_and_gold(lake: Path, reference: Path, same_position: bool = True) -> None:
    columns = SILVER_VALUES if same_position else SILVER_VALUES[:-2]
    got = table_values(SILVER_TICKS, lake)[columns]
    want = table_values(SILVER_TICKS, reference)[columns]
    pd.testing.assert_frame_equal(got, want)
    for table in GOLD_TABLES:
        pd.testing.assert_frame_equal(table_values(table, lake), table_values(table, reference),
                                      obj=table.name)


class Job:
    """One `ticklake job NAME` process in its own process group (JVM included)."""

    def __init__(self, name: str, settings: Settings, log_dir: Path) -> None:
        self.name, self.settings = name, settings
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.batches_at_start = 0
        self.kills = 0

    def __repr__(self) -> str:
        return f"{self.name}: {self.kills} kills"

    def start(self) -> None:
        env = {**os.environ, "TICKLAKE_TOPIC": self.settings.topic,
               "TICKLAKE_TRIGGER_INTERVAL_S": "0.5", "TICKLAKE_MAX_OFFSETS_PER_TRIGGER": "400",
               "TICKLAKE_SPARK_UI_ENABLED": "false"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ticklake", "job", self.name, "--lake",
                 str(self.settings.lake_dir), "--bootstrap-servers",
                 self.settings.bootstrap_servers],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.batches_at_start = committed_batches(self.settings.lake_dir, self.name)

    def streaming(self) -> bool:
        """True once this run has committed a micro-batch of its own."""
        return committed_batches(self.settings.lake_dir, self.name) > self.batches_at_start

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 9)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout_s=20)
            self.proc.wait()


def committed_batches(lake: Path, job: str) -> int:
    commits = lake / "_checkpoints" / job / "spark" / "commits"
    return len([p for p in commits.iterdir() if p.name.isdigit()]) if commits.exists() else 0


def test_kill_9_of_every_job_loses_and_duplicates_nothing(
    spark, broker: Settings, tmp_path: Path
) -> None:
    """While real ticks (MSFT, IBM, AAPL) are produced in paced chunks, bronze, silver and gold
    are each killed with SIGKILL (JVM included) at least twice, each time after its run committed
    a micro-batch and at a random moment of the next ones (micro-batches of at most 400 records),
    and restarted from their checkpoints. The producer keeps publishing (at least 30 chunks of
    320 ticks) until every job has been killed twice, so a slow machine gets more traffic rather
    than a job left without data to be killed on. Table maintenance (compaction, log
    checkpoint, vacuum: `ticklake maintain`) runs every 3 s all the while.
    Afterwards Bronze holds every produced (partition, offset) exactly once, and Silver and
    Gold equal those of a run without kills over the same topic."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="faults.ticks")
    ensure_topic(settings)
    ticks = list(ReplaySource(["MSFT", "IBM", "AAPL"]).ticks())
    chunks = [ticks[i:i + 320] for i in range(0, len(ticks), 320)]
    jobs = {name: Job(name, settings, tmp_path) for name in ("bronze", "silver", "gold")}
    killed_enough = threading.Event()
    done = threading.Event()
    produced: list[int] = []

    def produce() -> None:  # a chunk every 2 s: at least 30, then until the kills are done
        try:
            for n, chunk in enumerate(chunks):
                if n >= 30 and killed_enough.is_set():
                    break
                produced.append(publish(chunk, settings, progress=False).produced)
                time.sleep(2)
        finally:
            done.set()

    reports: list[dict] = []

    def maintain_while_streaming() -> None:
        while not done.is_set():
            reports.append(maintain(settings.lake_dir))
            time.sleep(3)

    rng = random.Random(20261122)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="producer")
    deadline = time.monotonic() + 1200
    try:
        for job in jobs.values():
            job.start()
        producer = pool.submit(produce)
        maintenance = pool.submit(maintain_while_streaming)
        while min(j.kills for j in jobs.values()) < 2:
            if done.is_set():
                producer.result()  # re-raises an exception of the producer thread here
            assert not done.is_set(), f"the producer ran out of ticks; kills so far {jobs}"
            assert time.monotonic() < deadline, f"jobs were not killed often enough: {jobs}"
            running = [j for j in jobs.values() if j.kills < 2 and j.streaming()]
            if not running:
                time.sleep(0.5)
                continue
            victim = rng.choice(running)
            time.sleep(rng.uniform(0.0, 3.0))  # a random moment of its next micro-batches
            victim.kill9()
            victim.start()
        killed_enough.set()
        producer.result(timeout=600)  # re-raises an exception of the producer thread
        maintenance.result(timeout=600)
    finally:
        killed_enough.set()
        pool.shutdown(wait=True)
        for job in jobs.values():
            job.stop()
    kills = {name: job.kills for name, job in jobs.items()}
    batches = {name: committed_batches(settings.lake_dir, name) for name in jobs}
    assert min(kills.values()) >= 2, kills
    # each killed run had committed a micro-batch of its own: the kills hit running streams
    assert all(batches[name] >= kills[name] for name in jobs), (batches, kills)
    # maintenance ran while the jobs wrote, and compacted files of tables they wrote (which
    # ones depends on where the small files were at each 3 s tick: Bronze every time in
    # 5 fresh-clone runs, Silver in 4 of them)
    compacted = {name for report in reports for name, entry in report.items()
                 if entry["files_after"] < entry["files_before"]}
    assert compacted & {"bronze.ticks", "silver.ticks"}, (compacted, len(reports))
    # every published chunk acknowledged in full
    assert produced == [len(chunk) for chunk in chunks[:len(produced)]], produced

    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)  # restart, catch up

    bronze = read_table(BRONZE_TICKS, settings.lake_dir, ["partition", "offset"]).to_pylist()
    positions = {(r["partition"], r["offset"]) for r in bronze}
    assert len(bronze) == len(positions) == sum(produced)
    assert read_table(SILVER_QUARANTINE, settings.lake_dir).num_rows == 0

    reference = broker.with_overrides(lake_dir=tmp_path / "reference", topic="faults.ticks")
    run_jobs(reference, ["bronze", "silver", "gold"], until_caught_up=True)
    assert_same_silver_and_gold(settings.lake_dir, reference.lake_dir)
    print(f"kills: {kills}; micro-batches committed before the final catch-up: {batches}; "
          f"rows checked: bronze {len(bronze)}, silver {len(positions)}")


def test_replaying_the_same_input_into_an_empty_lake_gives_the_same_lake(
    spark, broker: Settings, tmp_path: Path
) -> None:
    """The same real input (GOOG, 300 days) produced twice to two topics and run into two
    empty lakes gives identical Silver (same tick ids and values) and identical Gold."""
    from pipeline.jobs import run_jobs

    lakes = []
    for n in (1, 2):
        settings = broker.with_overrides(lake_dir=tmp_path / f"lake{n}", topic=f"replay{n}.ticks")
        ensure_topic(settings)
        source = ReplaySource(["GOOG"], limit_days=300)
        publish(source.ticks(), settings, progress=False)
        run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
        lakes.append(settings.lake_dir)
    assert read_table(SILVER_TICKS, lakes[0]).num_rows == 1200
    assert_same_silver_and_gold(lakes[0], lakes[1], same_position=False)
