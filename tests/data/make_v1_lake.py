"""Write ``tests/data/v1_lake.tar.gz``: a lake as ticklake 0.x (tick message v1) leaves it.

Run with the release that made it, from a checkout of commit a0c7e26 (the last release whose
tick message was v1)::

    git worktree add /tmp/v1 a0c7e26 && cd /tmp/v1
    .venv/bin/python tests/data/make_v1_lake.py /path/to/tests/data/v1_lake.tar.gz

What it holds (``tests/integration/test_upgrade.py`` replays the same messages to a fresh
topic, so the Bronze checkpoint's offsets line up): the last :data:`DAYS` daily bars of IBM
from bokeh-sampledata (four v1 ticks each) and :data:`BAD`, published in that order to the
topic :data:`TOPIC`, then ``bronze``, ``silver`` and ``gold`` run until caught up. The tables,
their checkpoints and the jobs' progress records are archived under ``lake/``.
"""

from __future__ import annotations

import socket
import sys
import tarfile
import tempfile
from pathlib import Path

DAYS = 20
"""Daily bars of IBM in the lake (its last 20 in bokeh-sampledata: 2013-02-01..2013-03-01)."""
TOPIC = "v1.ticks"
BAD = b'{"schema_version":1,"ticker":"IBM"}'
"""One malformed message (quarantined as ``missing_field``), published after the ticks."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(out: Path) -> None:
    from confluent_kafka import Producer

    from config.settings import Settings
    from pipeline.jobs import run_jobs
    from producer.publisher import publish
    from producer.sources.replay import ReplaySource
    from ticklake.broker import EmbeddedBroker, ensure_topic

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(bootstrap_servers=f"127.0.0.1:{_free_port()}", run_dir=root / "run",
                            lake_dir=root / "lake", topic=TOPIC, spark_ui_enabled=False)
        broker = EmbeddedBroker(settings)
        broker.start()
        try:
            ensure_topic(settings)
            publish(ReplaySource(["IBM"], limit_days=DAYS).ticks(), settings, progress=False)
            producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
            producer.produce(TOPIC, key=b"IBM", value=BAD)
            producer.flush(30)
            run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
        finally:
            broker.stop()
        with tarfile.open(out, "w:gz") as archive:
            archive.add(root / "lake", arcname="lake",
                        filter=lambda info: None if info.name.endswith(("LOCK", "LOCK.pid"))
                        else info)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
