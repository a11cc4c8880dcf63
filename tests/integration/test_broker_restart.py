"""Restarting the embedded Apache Kafka broker mid-stream, and a topic that is deleted.

The broker's log directory is kept under the run directory, so a broker that is stopped, or
killed with SIGKILL, and started again serves every record it had acknowledged at the same
offsets. A topic that is deleted and created again starts over at offset 0: the Kafka source
notices that the end offsets fell below what it had read and, with failOnDataLoss=true (the
default), stops with a clear error instead of silently waiting; with failOnDataLoss=false it
logs the loss and reads the new records.
"""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from config.settings import Settings
from config.tables import BRONZE_TICKS
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.delta import read_table
from tests.conftest import free_port
from ticklake.broker import EmbeddedBroker, admin_client, ensure_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def _parts(*bounds: tuple[int, int]) -> list[ReplaySource]:
    """FB's daily bars ``[start, stop)`` for each bound, 4 ticks per bar."""
    bars = ReplaySource(["FB"]).bars
    parts = [ReplaySource(["FB"]) for _ in bounds]
    for part, (start, stop) in zip(parts, bounds, strict=True):
        part.bars = bars.iloc[start:stop]
    return parts


def _two_parts() -> tuple[ReplaySource, ReplaySource]:
    """FB's first 50 daily bars (200 ticks), then the next 10 (40 ticks)."""
    first, second = _parts((0, 50), (50, 60))
    return first, second


def test_recreated_topic_is_data_loss(spark, broker: Settings, tmp_path: Path) -> None:
    """Before: 200 ticks in Bronze (all in FB's partition). The topic is deleted and created
    again and 40 ticks are sent to it: Spark's Kafka source refuses to go on (its partition's
    end offset went from 200 to 40). With failOnDataLoss=false it goes on past the lost range,
    as Spark documents: the 40 records at offsets 0-39 of the new partition are not read (they
    sit below the position the checkpoint holds), the 200 sent after them are."""
    from pyspark.errors import StreamingQueryException

    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="recreated.ticks")
    first, second, third = _parts((0, 50), (50, 60), (60, 110))
    ensure_topic(settings)
    assert publish(first.ticks(), settings, progress=False).produced == 200
    run_jobs(settings, ["bronze"], until_caught_up=True)
    assert read_table(BRONZE_TICKS, settings.lake_dir).num_rows == 200

    admin = admin_client(settings)  # kept: its futures need a live handle
    for future in admin.delete_topics([settings.topic]).values():
        future.result()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # deletion is asynchronous: wait until it is gone
        if settings.topic not in admin.list_topics(timeout=5).topics:
            break
        time.sleep(0.2)
    ensure_topic(settings)
    report = publish(second.ticks(), settings, progress=False)
    assert report.produced == 40 and report.failed == 0

    with pytest.raises(StreamingQueryException, match=r"(?s)Some data may have been lost.*"
                                                      r"offset was changed from 200 to 40"):
        run_jobs(settings, ["bronze"], until_caught_up=True)
    assert read_table(BRONZE_TICKS, settings.lake_dir).num_rows == 200  # nothing lost

    assert publish(third.ticks(), settings, progress=False).produced == 200
    lenient = settings.with_overrides(fail_on_data_loss=False)
    run_jobs(lenient, ["bronze"], until_caught_up=True)
    values = {r["value"] for r in read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()}
    assert len(values) == read_table(BRONZE_TICKS, settings.lake_dir).num_rows == 400
    assert not values & {t.to_json_bytes() for t in second.ticks()}  # the lost range
    assert {t.to_json_bytes() for t in third.ticks()} <= values


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_broker_keeps_everything_across_a_restart(spark, tmp_path: Path, how: str) -> None:
    """200 ticks in Bronze; the broker is stopped (SIGTERM) or killed (SIGKILL) while the
    producer sends 40 more, and started again. The topic, the 200 old records and their
    offsets are still there, all 40 new ones are delivered after them, and Bronze reads
    exactly the 40 new ones with failOnDataLoss=true."""
    from pipeline.jobs import run_jobs

    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=tmp_path / "run",
                        lake_dir=tmp_path / "lake", topic="durable.ticks")
    broker = EmbeddedBroker(settings)
    first, second = _two_parts()
    try:
        broker.start()
        ensure_topic(settings)
        assert publish(first.ticks(), settings, progress=False).produced == 200
        run_jobs(settings, ["bronze"], until_caught_up=True)
        before = read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()
        assert len(before) == 200

        if how == "SIGKILL":
            pid = broker.pid()
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)  # no chance to flush or shut down cleanly
        else:
            assert broker.stop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the broker is down: librdkafka buffers and retries
            sender = pool.submit(publish, second.ticks(), settings, progress=False)
            time.sleep(3)
            broker.start()  # no ensure_topic: the topic must still exist
            report = sender.result(timeout=150)  # re-raises the sender's exception, if any
        assert report.produced == 40 and report.failed == 0

        run_jobs(settings, ["bronze"], until_caught_up=True)  # failOnDataLoss=true
        bronze = read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()
        assert len(bronze) == 240 and len({r["value"] for r in bronze}) == 240
        positions = {(r["partition"], r["offset"]) for r in bronze}
        assert len(positions) == 240
        # the 40 new records came after the old ones: no offset was reused
        old = {(b["partition"], b["offset"]) for b in before}
        new = [r for r in bronze if (r["partition"], r["offset"]) not in old]
        assert len(new) == 40
        old_end = max(r["offset"] for r in before)
        assert min(r["offset"] for r in new) == old_end + 1
    finally:
        broker.stop()
    assert broker.pid() is None


def test_lost_checkpoints_resume_from_the_lake(spark, broker: Settings, tmp_path: Path
                                               ) -> None:
    """Bronze, Silver and Gold hold FB's 200 ticks (one partition); every job's checkpoint is
    lost; FB's next 40 ticks and IBM's first 80 (a partition Bronze holds nothing of) are
    sent. The new Bronze query starts FB's partition after the highest offset Bronze holds and
    IBM's at its earliest: Bronze then holds 320 rows, each (partition, offset) once, exactly
    the topic's records (Spark's own default, startingOffsets earliest, would have read FB's
    200 again). Silver and Gold start from the lake's record of their last micro-batch, under
    their old app ids (the tables that hold that batch skip it): Silver holds the 320 ticks
    once and quarantine none, and Gold's daily bars count each tick once (without the record
    the new silver query quarantined Bronze's 200 ticks as duplicates, and the gold query
    merged Silver's 200 ticks into the bars a second time)."""
    import shutil

    from config.tables import GOLD_BARS, SILVER_QUARANTINE, SILVER_TICKS
    from pipeline.bronze import starting_offsets
    from pipeline.checkpoints import APP_ID_FILE, spark_checkpoint
    from pipeline.jobs import run_jobs

    jobs = ["bronze", "silver", "gold"]
    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="resume.ticks")
    first, second = _parts((0, 50), (50, 60))
    ibm = ReplaySource(["IBM"])
    ibm.bars = ibm.bars.iloc[:20]
    ensure_topic(settings)
    assert publish(first.ticks(), settings, progress=False).produced == 200
    run_jobs(settings, jobs, until_caught_up=True)
    assert starting_offsets(spark, settings, "bronze") == "earliest"  # the checkpoint decides
    app_ids = {job: (settings.checkpoints / job / APP_ID_FILE).read_text() for job in jobs}

    for job in jobs:
        shutil.rmtree(settings.checkpoints / job)
    assert publish(second.ticks(), settings, progress=False).produced == 40
    assert publish(ibm.ticks(), settings, progress=False).produced == 80
    before = read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()
    [fb_partition] = {r["partition"] for r in before}
    resume = starting_offsets(spark, settings, "bronze")
    offsets = json.loads(resume)[settings.topic]
    assert offsets[str(fb_partition)] == 200
    assert {o for p, o in offsets.items() if p != str(fb_partition)} == {-2}
    assert len(offsets) == settings.topic_partitions

    run_jobs(settings, jobs, until_caught_up=True)
    rows = read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()
    positions = [(r["partition"], r["offset"]) for r in rows]
    assert len(rows) == len(set(positions)) == 320
    sent = [t for part in (first, second, ibm) for t in part.ticks()]
    assert sorted(r["value"] for r in rows) == sorted(t.to_json_bytes() for t in sent)

    for job in ("silver", "gold"):  # the old app id, and a checkpoint past the replayed batch
        assert (settings.checkpoints / job / APP_ID_FILE).read_text() == app_ids[job]
        assert len(list((spark_checkpoint(settings, job) / "commits").glob("[0-9]*"))) >= 2
    ticks = read_table(SILVER_TICKS, settings.lake_dir).to_pylist()
    assert len(ticks) == len({t["tick_id"] for t in ticks}) == 320
    assert read_table(SILVER_QUARANTINE, settings.lake_dir).num_rows == 0
    bars = read_table(GOLD_BARS["1d"], settings.lake_dir).to_pylist()
    assert sum(b["trade_count"] for b in bars) == 320
    assert sum(b["volume_decimal"] for b in bars) == sum(t.volume for t in sent)
    assert len(bars) == 80  # one per ticker and trading day: FB's 60, IBM's 20
