"""The Delta stream source: each appended row exactly once, compaction replays nothing."""

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from config.tables import SILVER_QUARANTINE
from pipeline.schemas import spark_schema
from storage.delta import ensure_table

pytestmark = pytest.mark.spark


def rows(offsets: range) -> pa.Table:
    n = len(offsets)
    data = {f.name: pa.nulls(n, f.type) for f in SILVER_QUARANTINE.schema}
    data["offset"] = pa.array(list(offsets), pa.int64())
    data["reason"] = pa.array(["not_json"] * n)
    return pa.table(data, schema=SILVER_QUARANTINE.schema)


def drain(spark, path: Path, checkpoint: Path) -> list[int]:
    seen: list[int] = []
    query = (
        spark.readStream.format("ticklake-delta").schema(spark_schema(SILVER_QUARANTINE))
        .option("versionsPerPartition", "2").load(str(path))
        .writeStream.option("checkpointLocation", str(checkpoint))
        .foreachBatch(lambda df, _id: seen.extend(r.offset for r in df.collect()))
        .trigger(availableNow=True).start()
    )
    query.awaitTermination()
    return seen


def test_streams_appends_once_across_restarts_and_optimize(spark, lake: Path) -> None:
    """Five appends, a restart, compaction, two more appends: each offset is seen once."""
    ensure_table(replace(SILVER_QUARANTINE, change_data_feed=True), lake)
    path = SILVER_QUARANTINE.path(lake)
    for i in range(5):
        write_deltalake(str(path), rows(range(i * 10, i * 10 + 10)), mode="append")
    first = drain(spark, path, lake / "_ckpt")
    assert sorted(first) == list(range(50))
    DeltaTable(str(path)).optimize.compact()
    for i in range(5, 7):
        write_deltalake(str(path), rows(range(i * 10, i * 10 + 10)), mode="append")
    second = drain(spark, path, lake / "_ckpt")
    assert sorted(second) == list(range(50, 70))


def test_a_missing_table_yields_nothing_until_created(spark, lake: Path) -> None:
    """Reading a table that does not exist yet is not an error: there is no data."""
    assert drain(spark, lake / "nothing_here", lake / "_ckpt2") == []


def test_small_files_share_a_task_and_big_ones_spread_over_the_cores() -> None:
    """Packing as Spark's file sources do (4 MiB open cost per file): 40 files of 30 kB (a
    live micro-batch) make one task per core, not 40; 4 backlog files of 9 MiB on 2 cores
    make 2 tasks of 2 files; a file larger than the task limit is a task of its own; every
    file is read exactly once."""
    from pipeline.connectors.delta_source import pack_files

    mib = 2**20
    small = [(f"s{i}.parquet", 30_000, ()) for i in range(40)]
    assert [len(g) for g in pack_files(small, 2, 128 * mib)] == [20, 20]  # not 40 tasks
    big = [(f"b{i}.parquet", 9 * mib, ()) for i in range(4)]
    groups = pack_files(big, 2, 128 * mib)
    assert sorted(len(g) for g in groups) == [2, 2]
    mixed = [("huge.parquet", 300 * mib, (("d", "2013-03-01"),)), *big, *small]
    packed = pack_files(mixed, 2, 128 * mib)
    assert (("huge.parquet", (("d", "2013-03-01"),)),) in packed
    names = sorted(name for group in packed for name, _ in group)
    assert names == sorted(name for name, _, _ in mixed)
