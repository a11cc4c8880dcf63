"""Benchmark: delta-spark micro-batch appends at Delta's default snapshotPartitions and at ours.

Appends ``--rows`` Bronze-shaped rows (a cached DataFrame) ``--batches`` times, with
``txnAppId`` / ``txnVersion``, to a Bronze table created as the jobs create it (delta-rs,
change data feed on), once with ``spark.databricks.delta.snapshotPartitions`` at Delta's
default (50) and once at ticklake's (:data:`pipeline.spark.DELTA_TUNING`), alternating tables
in one Spark session; plain Parquet writes of the same rows are the reference. Prints the
first and the median later append per setting and the ratios.

    .venv/bin/python bench/delta_append.py [--rows 48000] [--batches 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)

from config.settings import Settings
from config.tables import BRONZE_TICKS
from pipeline.spark import DELTA_TUNING, spark_session
from storage.delta import ensure_table

SETTING = "spark.databricks.delta.snapshotPartitions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48_000, help="rows per append (>= 1)")
    parser.add_argument("--batches", type=int, default=4, help="appends per table (>= 2)")
    args = parser.parse_args()
    if args.rows < 1 or args.batches < 2:
        parser.error(f"--rows {args.rows} must be >= 1 and --batches {args.batches} >= 2")
    work = Path(tempfile.mkdtemp(prefix="delta-append-"))
    spark = spark_session(Settings(lake_dir=work, spark_ui_enabled=False), "ticklake-bench")
    rows = spark.range(args.rows).selectExpr(
        "cast(cast(id as string) as binary) as key", "cast(cast(id as string) as binary) as value",
        "'t' as topic", "cast(id % 4 as int) as partition", "id as offset",
        "current_timestamp() as timestamp", "0 as timestampType",
        "current_timestamp() as ingest_time").cache()
    rows.count()
    timings: dict[str, list[list[float]]] = {"50": [], DELTA_TUNING[SETTING]: []}
    parquet = []
    for round_ in range(2):
        for value in timings:
            spark.conf.set(SETTING, value)
            lake = work / f"{value}-{round_}"
            ensure_table(BRONZE_TICKS, lake)
            path = str(BRONZE_TICKS.path(lake))
            runs = []
            for batch in range(args.batches):
                started = time.perf_counter()
                (rows.write.format("delta").mode("append").option("txnAppId", "bench")
                 .option("txnVersion", batch).save(path))
                runs.append(time.perf_counter() - started)
            timings[value].append(runs)
        started = time.perf_counter()
        rows.write.format("parquet").save(str(work / f"parquet-{round_}"))
        parquet.append(time.perf_counter() - started)
    spark.stop()
    reference = statistics.median(parquet)
    print(f"plain Parquet, {args.rows:,} rows: median {reference:.2f} s (the reference)")
    later = {}
    for value, rounds in timings.items():
        later[value] = statistics.median(t for runs in rounds for t in runs[1:])
        firsts = ", ".join(f"{runs[0]:.2f}" for runs in rounds)
        print(f"{SETTING}={value}: first append {firsts} s; later appends median "
              f"{later[value]:.2f} s = {later[value] / reference:.1f} x Parquet")
    ours = DELTA_TUNING[SETTING]
    print(f"later appends at {ours} vs Delta's default 50: {later[ours] / later['50']:.2f} x")
    print(f"work directory (kept): {work}")


if __name__ == "__main__":
    main()
