"""Restarting the embedded tansu broker mid-stream, with each storage engine.

What tansu's memory engine keeps across its own restart, measured here: nothing. Topics and
messages are gone; offsets start again at 0. So:

* the producer retries while the broker is down and delivers everything once it is back;
* Bronze keeps every record it had ingested;
* the Kafka source notices that the end offsets fell below what it had read and, with
  failOnDataLoss=true (the default), stops with a clear error instead of silently waiting;
  with failOnDataLoss=false it logs the loss and reads the new records.
"""

from __future__ import annotations

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
from ticklake.broker import EmbeddedBroker, ensure_topic

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_in_memory_broker_restart(spark, tmp_path: Path) -> None:
    """Before: 200 ticks in Bronze. Broker restarted while the producer sends 40 more: all 40
    delivered; the source refuses to go on silently; with failOnDataLoss=false it reads them."""
    from pyspark.errors import StreamingQueryException

    from pipeline.jobs import run_jobs

    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=tmp_path / "run",
                        lake_dir=tmp_path / "lake", topic="restart.ticks")
    broker = EmbeddedBroker(settings)
    bars = ReplaySource(["FB"]).bars
    first, second = ReplaySource(["FB"]), ReplaySource(["FB"])
    first.bars, second.bars = bars.iloc[:50], bars.iloc[50:60]
    broker.start()
    try:
        ensure_topic(settings)
        assert publish(first.ticks(), settings, progress=False).produced == 200
        run_jobs(settings, ["bronze"], until_caught_up=True)
        assert read_table(BRONZE_TICKS, settings.lake_dir).num_rows == 200

        broker.stop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            # the broker is down: librdkafka buffers and retries
            sender = pool.submit(publish, second.ticks(), settings, progress=False)
            time.sleep(3)
            broker.start()
            ensure_topic(settings)  # the memory engine lost the topic: create it again
            report = sender.result(timeout=150)  # re-raises the sender's exception, if any
        assert report.produced == 40 and report.failed == 0

        with pytest.raises(StreamingQueryException, match="end offset .* is below the next"):
            run_jobs(settings, ["bronze"], until_caught_up=True)
        assert read_table(BRONZE_TICKS, settings.lake_dir).num_rows == 200  # nothing lost

        lenient = settings.with_overrides(fail_on_data_loss=False)
        run_jobs(lenient, ["bronze"], until_caught_up=True)
        bronze = read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()
        assert len(bronze) == 240
        values = [r["value"] for r in bronze]
        assert len(set(values)) == 240  # the 40 new ticks, no record twice
    finally:
        broker.stop()


def test_s3_storage_broker_keeps_everything_across_a_kill_9(spark, tmp_path: Path) -> None:
    """The durable mode (tansu's s3:// engine on the embedded moto S3): 200 ticks in Bronze;
    the broker is killed with SIGKILL while the producer sends 40 more and started again.
    The topic, the 200 old records and their offsets are still there, all 40 new ones are
    delivered after them, and Bronze reads exactly the 40 new ones with failOnDataLoss=true."""
    from pipeline.jobs import run_jobs
    from ticklake.s3 import EmbeddedS3

    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=tmp_path / "run",
                        lake_dir=tmp_path / "lake", topic="durable.ticks",
                        broker_storage="s3", s3_port=free_port())
    broker, s3 = EmbeddedBroker(settings), EmbeddedS3(settings)
    bars = ReplaySource(["FB"]).bars
    first, second = ReplaySource(["FB"]), ReplaySource(["FB"])
    first.bars, second.bars = bars.iloc[:50], bars.iloc[50:60]
    try:
        broker.start()
        assert s3.pid() is not None
        ensure_topic(settings)
        assert publish(first.ticks(), settings, progress=False).produced == 200
        run_jobs(settings, ["bronze"], until_caught_up=True)
        before = read_table(BRONZE_TICKS, settings.lake_dir).to_pylist()
        assert len(before) == 200

        pid = broker.pid()
        os.killpg(pid, signal.SIGKILL)  # no chance to flush anything
        with ThreadPoolExecutor(max_workers=1) as pool:
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
        old_end = max(r["offset"] for r in before)
        new = [r for r in bronze if (r["partition"], r["offset"]) not in
               {(b["partition"], b["offset"]) for b in before}]
        assert len(new) == 40 and min(r["offset"] for r in new) == old_end + 1
    finally:
        broker.stop(with_storage=True)
    assert broker.pid() is None and s3.pid() is None
