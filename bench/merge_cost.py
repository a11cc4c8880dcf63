"""What one idempotent MERGE costs with delta-spark, against delta-rs' (``DeltaSink.upsert``).

    .venv/bin/python bench/merge_cost.py                 # 20 batches
    .venv/bin/python bench/merge_cost.py --batches 50

The floor under moving Gold's bars and ``silver/watermarks`` onto ``DeltaTable.merge``. Two
new ``silver/watermarks`` tables; for each batch id, alternating, five tickers'
watermarks are merged on ``ticker`` into each:

* the reference: :meth:`storage.sink.DeltaSink.upsert` (delta-rs, the app transaction checked,
  then MERGE with the (app, batch id) transaction), as the jobs write the table today;
* delta-spark: ``DeltaTable.forPath(...).merge(...)`` with Delta's idempotent-DML session
  settings ``spark.databricks.delta.write.txnAppId`` / ``txnVersion`` set on a new session
  (``spark.newSession()``), in this process's SparkSession (local[2], as the jobs build it).

Prints the median milliseconds per MERGE of each and the ratio (delta-spark / delta-rs), then
what delta-spark does with a batch id it has committed (a replay) and with an empty source.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from common import ROOT  # noqa: F401 (puts the project on sys.path)

from config.settings import Settings
from config.tables import SILVER_WATERMARKS
from storage.sink import DeltaSink

TICKERS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")
APP_ID = "bench"


def watermarks(batch_id: int) -> pa.Table:
    """One row per ticker of :data:`TICKERS`, the watermark one minute later per batch id."""
    mark = datetime(2026, 1, 5, 14, 30, tzinfo=UTC) + timedelta(minutes=batch_id)
    return pa.Table.from_pylist([{"ticker": t, "watermark": mark, "updated_at": mark}
                                 for t in TICKERS], schema=SILVER_WATERMARKS.schema)


def spark_merge(spark: Any, path: str, rows: pa.Table, batch_id: int) -> None:
    """MERGE ``rows`` into the table at ``path`` on ``ticker`` as (APP_ID, ``batch_id``)."""
    from delta.tables import DeltaTable

    from pipeline.schemas import spark_schema

    session = spark.newSession()
    session.conf.set("spark.databricks.delta.write.txnAppId", APP_ID)
    session.conf.set("spark.databricks.delta.write.txnVersion", str(batch_id))
    source = session.createDataFrame(rows.to_pandas(), spark_schema(SILVER_WATERMARKS))
    (DeltaTable.forPath(session, path).alias("t").merge(source.alias("s"), "t.ticker = s.ticker")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="MERGEs per table (>= 2)")
    args = parser.parse_args()
    if args.batches < 2:
        parser.error(f"--batches {args.batches}: must be >= 2")
    from deltalake import DeltaTable as RsTable

    from pipeline.spark import spark_session

    with tempfile.TemporaryDirectory(prefix="ticklake-merges-") as work:
        spark = spark_session(Settings(lake_dir=Path(work), spark_ui_enabled=False),
                              "ticklake-bench-merge")
        reference = DeltaSink(SILVER_WATERMARKS, Path(work) / "rs", APP_ID)
        onto_spark = DeltaSink(SILVER_WATERMARKS, Path(work) / "spark", "create")
        onto_spark.append(watermarks(-1), None)  # the table, created as the jobs create it
        seconds: dict[str, list[float]] = {"delta-rs (DeltaSink.upsert)": [],
                                           "delta-spark (DeltaTable.merge)": []}
        for batch_id in range(args.batches):
            rows = watermarks(batch_id)
            started = time.perf_counter()
            reference.upsert(rows, batch_id)
            seconds["delta-rs (DeltaSink.upsert)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            spark_merge(spark, onto_spark.path, rows, batch_id)
            seconds["delta-spark (DeltaTable.merge)"].append(time.perf_counter() - started)
        medians = {name: statistics.median(s[1:]) for name, s in seconds.items()}
        for name, median in medians.items():
            print(f"{name:31s} median {median * 1000:.0f} ms per MERGE "
                  f"(first {seconds[name][0] * 1000:.0f} ms, left out of the median)")
        reference_s, spark_s = medians.values()
        print(f"ratio delta-spark / delta-rs: {spark_s / reference_s:.1f}")

        def version() -> int:
            return int(RsTable(onto_spark.path).version())

        last = args.batches - 1
        before = version()
        spark_merge(spark, onto_spark.path, watermarks(last + 100), last)
        print(f"delta-spark, batch {last} again with other rows: version {before} -> "
              f"{version()}")
        before = version()
        spark_merge(spark, onto_spark.path, watermarks(0).slice(0, 0), last + 1)
        txn = RsTable(onto_spark.path).transaction_version(APP_ID)
        print(f"delta-spark, an empty source as batch {last + 1}: version {before} -> "
              f"{version()}, the table's transaction of {APP_ID!r}: {txn}")
        spark.stop()


if __name__ == "__main__":
    main()
