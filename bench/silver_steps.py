"""Silver's steps on a lake's Bronze, timed one by one: where a silver micro-batch spends it.

Runs the silver job's steps (pipeline/silver.py, ``silver_writer``) on the whole of
``bronze/ticks`` of an existing lake, in one SparkSession, for ``--rounds`` rounds (the first
pays the JVM's and the Python workers' start), writing into a scratch lake: classification
and summary (Python workers), the duplicate ranking, the quarantine append, and the Silver
append with delta-spark next to a plain Parquet write of the same rows (the reference).

    .venv/bin/python bench/backlog.py --ticks 500000     # leaves a lake; its path is printed
    .venv/bin/python bench/silver_steps.py --lake /tmp/ticklake-backlog-XXXX/lake
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import ROOT  # noqa: F401  (puts the repository on sys.path)
from pyspark import StorageLevel
from pyspark.sql import functions as F

from config.settings import load_settings
from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS
from pipeline import silver_state
from pipeline.silver import classify_with_settings, duplicate_keys, judge
from pipeline.spark import spark_session
from storage.delta import ensure_table


class Laps:
    """Seconds between successive :meth:`lap` calls, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = now - self._since
        self._since = now


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake with bronze/ticks")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (default 2)")
    args = parser.parse_args()
    settings = load_settings(lake_dir=args.lake)
    spark = spark_session(settings, "bench-silver-steps")
    bronze = spark.read.format("delta").load(str(BRONZE_TICKS.path(args.lake)))
    scratch = Path(tempfile.mkdtemp(prefix="ticklake-silver-steps-"))
    try:
        for round_no in range(1, args.rounds + 1):
            out = scratch / f"round{round_no}"
            ensure_table(SILVER_TICKS, out)
            ensure_table(SILVER_QUARANTINE, out)
            laps = Laps()
            lap = laps.lap
            classified = classify_with_settings(bronze, settings).persist(
                StorageLevel.MEMORY_AND_DISK)
            summary = silver_state.summarize(classified, None)
            lap("classify + summary")
            duplicates = duplicate_keys(classified, None).persist()
            duplicates.count()
            lap("duplicate ranking")
            judged = judge(classified, duplicates, None, settings.allowed_lateness_s)
            rejected = F.col("reason").isNotNull()
            (judged.where(rejected).select(*SILVER_QUARANTINE.schema.names).write
             .format("delta").mode("append").save(str(SILVER_QUARANTINE.path(out))))
            lap("quarantine append (delta-spark)")
            ticks = judged.where(~rejected).select(*SILVER_TICKS.schema.names)
            ticks.write.mode("overwrite").parquet(str(out / "plain-parquet"))
            lap("ticks: plain Parquet write (reference)")
            ticks.write.format("delta").mode("append").save(str(SILVER_TICKS.path(out)))
            lap("ticks append (delta-spark)")
            duplicates.unpersist()
            classified.unpersist()
            print(f"round {round_no}: {summary.invalid} rejected by validation")
            for name, seconds in laps.seconds.items():
                print(f"  {name:<40} {seconds:6.1f} s")
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
