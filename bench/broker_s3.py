"""Benchmark: CPU cost of the durable (s3) broker storage against the producer's linger.ms.

Starts tansu with its ``s3://`` engine on an embedded moto S3 server (both on free 127.0.0.1
ports, stopped afterwards), publishes N synthetic ticks at a fixed rate with each linger.ms
value, and prints the wall time and the CPU seconds the moto S3 server spent.

    .venv/bin/python bench/broker_s3.py [--ticks 4000] [--rate 200] [--linger 5 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import free_port
from confluent_kafka import Producer

from config.kafka import client_config
from config.settings import Settings
from producer.publisher import publish
from producer.sources.synthetic import SyntheticSource
from ticklake.broker import EmbeddedBroker, ensure_topic
from ticklake.s3 import EmbeddedS3


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--linger", type=int, nargs="+", default=[5, 100])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=Path(tmp),
                            broker_storage="s3", s3_port=free_port())
        broker = EmbeddedBroker(settings)
        broker.start()
        try:
            moto = EmbeddedS3(settings).pid()
            assert moto is not None
            for linger in args.linger:
                run = settings.with_overrides(topic=f"bench.linger{linger}")
                ensure_topic(run)
                source = SyntheticSource(list(run.tickers), seed=1, rate_per_s=args.rate,
                                         count=args.ticks)
                cpu0, t0 = cpu_seconds(moto), time.monotonic()
                report = publish(source.ticks(), run, progress=False,
                                 producer=Producer(client_config(run, "producer",
                                                                  **{"linger.ms": linger})))
                print(f"linger.ms {linger:>4}: {report.produced:,} ticks at {args.rate:g}/s in "
                      f"{time.monotonic() - t0:.1f} s; moto S3 CPU "
                      f"{cpu_seconds(moto) - cpu0:.1f} s")
        finally:
            broker.stop(with_storage=True)


if __name__ == "__main__":
    main()
