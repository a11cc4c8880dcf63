"""Benchmark: the embedded Apache Kafka broker's start-up time and resident memory.

Starts the broker on a free 127.0.0.1 port in a new temporary run directory (stopped by its
PID at the end, even on an error) and prints:

- the first start (formatting the log directory included) and a restart, each from the call to
  the first metadata answer, next to the time Kafka's own log puts between the JVM's first line
  and "Kafka Server started" (the reference: the rest is the JVM's start, the format and the
  polling);
- the broker's resident memory (RSS, its JVM) idle after the first start, after the idempotent
  producer published ``--ticks`` synthetic ticks, and after the restart;
- the producer's rate, and the time a SIGTERM stop takes.

    .venv/bin/python bench/broker.py [--ticks 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from common import free_port, synthetic_backlog

from config.settings import Settings
from producer.publisher import publish
from ticklake.broker import EmbeddedBroker, ensure_topic


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def timed_start(broker: EmbeddedBroker) -> tuple[float, int]:
    started = time.perf_counter()
    pid = broker.start()
    return time.perf_counter() - started, pid


def kafka_start_times(log_file: Path) -> list[float]:
    """Seconds from each start's first log line (Kafka registers its log4j MBean first) to its
    "Kafka Server started", in order."""
    times, first = [], None
    for line in log_file.read_text().splitlines():
        if not line.startswith("[20"):
            continue
        stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
        if "Log4jController" in line:
            first = stamp
        if "Kafka Server started" in line and first is not None:
            times.append((stamp - first).total_seconds())
            first = None
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=200_000,
                        help="synthetic ticks to publish between the two starts (1-10,000,000)")
    args = parser.parse_args()
    if not 1 <= args.ticks <= 10_000_000:
        parser.error(f"--ticks {args.ticks} is outside 1-10,000,000")
    work = Path(tempfile.mkdtemp(prefix="ticklake-broker-bench-"))
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=work / "run")
    broker = EmbeddedBroker(settings)
    try:
        first_s, pid = timed_start(broker)
        ensure_topic(settings)
        idle = rss_mib(pid)
        started = time.perf_counter()
        report = publish(synthetic_backlog(args.ticks).ticks(), settings, progress=False)
        produce_s = time.perf_counter() - started
        loaded = rss_mib(pid)
        started = time.perf_counter()
        broker.stop()
        stop_s = time.perf_counter() - started
        again_s, pid = timed_start(broker)
        again = rss_mib(pid)
    finally:
        broker.stop()
    kafka_s = kafka_start_times(broker.log_file)
    print(f"work dir: {work}")
    print(f"first start (format + start, to the first metadata answer): {first_s:.2f} s; "
          f"Kafka's own log, first line to 'Kafka Server started': {kafka_s[0]:.2f} s "
          f"(ratio {first_s / kafka_s[0]:.2f})")
    print(f"restart over {report.produced:,} records: {again_s:.2f} s; Kafka's own log: "
          f"{kafka_s[1]:.2f} s (ratio {again_s / kafka_s[1]:.2f}); SIGTERM stop {stop_s:.2f} s")
    print(f"resident memory (heap {settings.broker_heap}): idle {idle:.0f} MiB, after "
          f"publishing {loaded:.0f} MiB, after the restart {again:.0f} MiB")
    print(f"producer: {report.produced:,} ticks in {produce_s:.1f} s = "
          f"{report.produced / produce_s:,.0f} ticks/s (failed {report.failed})")


if __name__ == "__main__":
    main()
