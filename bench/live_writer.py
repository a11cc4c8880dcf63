"""Benchmark: one process's live-mode writer on synthetic micro-batches, without Kafka.

Calls :func:`pipeline.live.live_writer` (Bronze, quarantine, Silver, watermarks and Gold of one
micro-batch) on ``--batches`` micro-batches of ``--ticks`` synthetic ticks each (five tickers,
event times 0.2 ms apart, two hours before now so none is in the future), built as Bronze rows
in two Spark partitions and cached before the clock starts, in a new lake under the temp
folder. Prints each micro-batch's seconds and the median from the third on (the first two
start the Python workers and compile the plans). ``--conf KEY=VALUE`` sets a Spark setting in
the session first, e.g. a Delta setting to compare. To compare two commits, run it from a
worktree of each with ``PYTHONPATH`` set to that tree (docs/benchmarks.md, "Live latency").

    .venv/bin/python bench/live_writer.py [--ticks 16000] [--batches 7] [--conf KEY=VALUE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)

from config.settings import Settings
from config.tables import BRONZE_TICKS
from pipeline.live import CACHE_COMPRESSED, live_writer
from pipeline.schemas import spark_schema
from pipeline.spark import spark_session
from producer.sources.synthetic import SyntheticSource

TICKERS = ["AAPL", "MSFT", "IBM", "FB", "GOOG"]
TICK_SPACING = timedelta(microseconds=200)  # 5,000 ticks per second of event time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=16_000, help="ticks per micro-batch (>= 1)")
    parser.add_argument("--batches", type=int, default=7, help="micro-batches (>= 3)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for the session (repeatable)")
    args = parser.parse_args()
    if args.ticks < 1 or args.batches < 3:
        parser.error(f"--ticks {args.ticks} must be >= 1 and --batches {args.batches} >= 3")
    conf = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--conf {item!r}: expected KEY=VALUE")
        conf[key] = value
    work = Path(tempfile.mkdtemp(prefix="ticklake-live-writer-"))
    try:
        settings = Settings(lake_dir=work, tickers=TICKERS, spark_ui_enabled=False)
        spark = spark_session(settings, "ticklake-bench-live-writer")
        spark.conf.set(CACHE_COMPRESSED, "false")  # as the live job's stream() sets it
        for key, value in conf.items():
            spark.conf.set(key, value)
        write = live_writer(settings, "bench")
        start = datetime.now(UTC) - timedelta(hours=2)
        seconds = []
        for batch_id in range(args.batches):
            first = batch_id * args.ticks
            times = iter([start + (first + i) * TICK_SPACING for i in range(args.ticks)])
            source = SyntheticSource(TICKERS, count=args.ticks, clock=partial(next, times))
            now = datetime.now(UTC)
            rows = [(None, tick.to_json_bytes(), "bench.ticks", i % 4, first + i, now, 0, now)
                    for i, tick in enumerate(source.ticks())]
            frame = spark.createDataFrame(rows, spark_schema(BRONZE_TICKS)).repartition(2)
            frame = frame.cache()
            frame.count()
            started = time.perf_counter()
            write(frame, batch_id)
            seconds.append(time.perf_counter() - started)
            frame.unpersist()
            print(f"micro-batch {batch_id}: {args.ticks:,} ticks in {seconds[-1]:.2f} s",
                  flush=True)
        print(f"median from the third micro-batch on: {statistics.median(seconds[2:]):.2f} s "
              f"({args.ticks:,} ticks per micro-batch; settings {conf or 'none'})")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
