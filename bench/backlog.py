"""Backlog benchmark: N ticks on the topic, then bronze, silver and gold with --until-caught-up.

Prints, for each job run as its own process (`ticklake job NAME --until-caught-up`, default
driver memory): wall time, micro-batches, rows, and rows/s over the micro-batches (after
Spark's start-up, from the jobs' progress records); beside them, the single-process floor on
the same topic in the same run: a plain confluent-kafka consumer -> delta-rs append loop. The
ratio silver rows/s / floor rows/s is the figure to watch (the machine is shared, so absolute
rates drift; a ratio measured in one run does not).

    .venv/bin/python bench/backlog.py --ticks 500000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from common import DEFAULT_TICKERS, ROOT, bench_lake, publish_backlog, rows_per_s
from confluent_kafka import Consumer, KafkaError, TopicPartition
from deltalake import write_deltalake

from config.kafka import client_config
from config.settings import Settings
from config.tables import BRONZE_TICKS
from storage.facts import lake_status
from storage.progress import progress_records


def floor(settings: Settings, total: int, lake: Path) -> float:
    """confluent-kafka consumer -> delta-rs appends of 100k rows, one process; rows/s."""
    consumer = Consumer(client_config(settings, "consumer", **{"group.id": "bench-floor",
                                                                "enable.partition.eof": True}))
    parts = consumer.list_topics(settings.topic, timeout=10).topics[settings.topic].partitions
    consumer.assign([TopicPartition(settings.topic, p, 0) for p in parts])
    columns: dict[str, list[object]] = {n: [] for n in BRONZE_TICKS.schema.names}
    seen, started, eof = 0, time.monotonic(), set()
    path = str(lake / "floor")

    def flush() -> None:
        if columns["offset"]:
            write_deltalake(path, pa.table(columns, schema=BRONZE_TICKS.schema), mode="append")
            for values in columns.values():
                values.clear()

    while seen < total and len(eof) < len(parts):
        for msg in consumer.consume(10_000, timeout=1.0):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition())
                continue
            ts_type, ts_ms = msg.timestamp()
            row = (msg.key(), msg.value(), msg.topic(), msg.partition(), msg.offset(),
                   datetime.fromtimestamp(ts_ms / 1000, UTC), ts_type - 1, datetime.now(UTC))
            for name, value in zip(BRONZE_TICKS.schema.names, row, strict=True):
                columns[name].append(value)
            seen += 1
            if len(columns["offset"]) >= 100_000:
                flush()
    flush()
    consumer.close()
    return seen / (time.monotonic() - started)


def run_job(name: str, settings: Settings, lake: Path, log: Path) -> dict[str, float]:
    """``ticklake job NAME --until-caught-up`` as its own process; figures from its progress
    records: rows/s over every micro-batch with rows, and over those after the first (whose
    time includes starting the Python workers)."""
    started = time.monotonic()
    with log.open("ab") as out:
        code = subprocess.call(
            [sys.executable, "-m", "ticklake", "job", name, "--until-caught-up", "--lake",
             str(lake), "--bootstrap-servers", settings.bootstrap_servers],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"job {name} failed with exit code {code}; see {log}")
    busy = [r for r in progress_records(lake, name) if r["rows"]]
    return {"wall_s": wall, "batches": len(busy), "rows": sum(r["rows"] for r in busy),
            "rows_per_s": rows_per_s(busy), "later_rows_per_s": rows_per_s(busy[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=500_000, help="ticks on the topic")
    parser.add_argument("--tickers", default=",".join(DEFAULT_TICKERS))
    args = parser.parse_args()
    with bench_lake("backlog") as (settings, work):
        report, produce_rate = publish_backlog(settings, args.ticks,
                                               tickers=args.tickers.split(","))
        floor_rate = floor(settings, report.produced, work)
        results = {name: run_job(name, settings, settings.lake_dir, work / f"{name}.log")
                   for name in ("bronze", "silver", "gold")}
        recon = lake_status(settings.lake_dir)["reconciliation"]
    print(f"\nbacklog of {report.produced:,} ticks ({produce_rate:,.0f} msg/s produced); "
          f"work dir {work}")
    print(f"{'':<28}{'wall s':>8}{'batches':>9}{'rows':>11}{'rows/s':>10}{'vs floor':>10}"
          f"{'after 1st':>11}{'vs floor':>10}")
    print(f"{'floor (confluent -> delta-rs)':<28}{'':>8}{'':>9}{report.produced:>11,}"
          f"{floor_rate:>10,.0f}{1.0:>10.2f}")
    for name, r in results.items():
        print(f"{name:<28}{r['wall_s']:>8.1f}{r['batches']:>9}{r['rows']:>11,.0f}"
              f"{r['rows_per_s']:>10,.0f}{r['rows_per_s'] / floor_rate:>10.2f}"
              f"{r['later_rows_per_s']:>11,.0f}{r['later_rows_per_s'] / floor_rate:>10.2f}")
    print(f"reconciliation: bronze {recon['bronze']:,} = silver {recon['silver']:,} + quarantine "
          f"{recon['quarantine']:,} -> {'balanced' if recon['balanced'] else 'NOT BALANCED'}")


if __name__ == "__main__":
    main()
