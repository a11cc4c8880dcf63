"""Benchmark: the per-layer jobs until caught up with HotSpot's tiered JIT and with C1 alone.

Starts an Apache Kafka broker on a free 127.0.0.1 port, publishes the replayed real ticks
(48,616 for the five sample tickers, as ``ticklake up`` does), then runs
``ticklake job bronze silver gold --until-caught-up`` on a new lake ``--rounds`` times per
setting, alternating: once with Spark's driver JVM as it starts by default (tiered
compilation, C1 then C2) as the reference, and once with ``-XX:TieredStopAtLevel=1``
(:data:`ticklake.up.QUICK_RUN_JAVA_OPTIONS`, what ``up --until-caught-up`` gives its jobs).
Prints each run's wall time (process start to exit, Spark's start-up included) and the
micro-batches' durations, the medians and the ratio.

    .venv/bin/python bench/driver_jit.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import bench_lake

from config.runtime import child_environment
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from ticklake.up import QUICK_RUN_JAVA_OPTIONS

SETTINGS = {"tiered (default)": "", "C1 only": QUICK_RUN_JAVA_OPTIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="runs per setting (>= 1)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: must be >= 1")
    with bench_lake("driver-jit") as (settings, work):
        source = ReplaySource(list(settings.tickers))
        report = publish(source.ticks(), settings, total=source.expected_count(),
                         progress=False)
        print(f"published {report.produced:,} replayed ticks")
        walls: dict[str, list[float]] = {name: [] for name in SETTINGS}
        for round_ in range(args.rounds):
            for name, options in SETTINGS.items():
                lake = work / f"lake-{round_}-{len(walls[name])}-{options or 'tiered'}"
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "ticklake", "job", "bronze", "silver", "gold",
                     "--until-caught-up", "--lake", str(lake), "--bootstrap-servers",
                     settings.bootstrap_servers],
                    env=child_environment({"TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS": options,
                                           "TICKLAKE_SPARK_UI_ENABLED": "false"}),
                    capture_output=True, text=True, check=False)
                wall = time.perf_counter() - started
                if done.returncode != 0:
                    sys.exit(f"{name}: the jobs failed (exit {done.returncode}):\n"
                             f"{done.stderr[-3000:]}")
                batches = [json.loads(line.split("progress ", 1)[1])["batch_duration_ms"]
                           for line in done.stderr.splitlines() if " progress {" in line]
                walls[name].append(wall)
                print(f"{name:<17} round {round_ + 1}: {wall:5.1f} s; micro-batches (ms): "
                      f"{batches}")
        medians = {name: statistics.median(values) for name, values in walls.items()}
        reference, c1 = medians.values()
        print(f"median wall time: tiered {reference:.1f} s, C1 only {c1:.1f} s "
              f"= {c1 / reference:.2f} x the reference")


if __name__ == "__main__":
    main()
