"""Silver's one-pass write (live mode) against its two-pass write, on small batches."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS, SILVER_WATERMARKS
from pipeline.schemas import spark_schema
from storage.delta import open_table, read_table

pytestmark = pytest.mark.spark
T = datetime(2012, 1, 3, 14, 30, tzinfo=UTC)
RECEIVED = T + timedelta(days=1)  # the batches' ingest time: no tick is in the future


def tick(tick_id: str, ticker: str = "AAA", at: datetime = T, **extra: object) -> bytes:
    body = {"schema_version": 1, "tick_id": tick_id, "ticker": ticker,
            "event_time": at.isoformat().replace("+00:00", "Z"), "price": 10.0, "volume": 5,
            "source": "test", "seq": 1, **extra}
    return json.dumps(body).encode()


def bronze_rows(spark, values: list[bytes | None], first_offset: int = 0, partitions: int = 3):
    """Bronze rows spread over three Kafka partitions, in ``partitions`` Spark partitions."""
    rows = [{"key": None, "value": v, "topic": "t", "partition": i % 3,
             "offset": first_offset + i, "timestamp": RECEIVED, "timestampType": 0,
             "ingest_time": RECEIVED} for i, v in enumerate(values)]
    arrow = pa.Table.from_pylist(rows, schema=BRONZE_TICKS.schema)
    return spark.createDataFrame(arrow.to_pandas(),
                                 schema=spark_schema(BRONZE_TICKS)).repartition(partitions)


def test_one_pass_verdicts_equal_the_two_pass_ones_when_every_tick_is_after_its_watermark(
    spark,
) -> None:
    """200 ticks on three tickers (two with a watermark before all of them), 20 of them sent
    twice or three times at other Kafka positions, and malformed records: the one pass gives
    every row the verdict of :func:`pipeline.silver.verdicts`, and marks no row as at or
    before its watermark; a tick at its ticker's watermark is marked."""
    from pipeline.silver import (
        STALE_COLUMN,
        VALID_COLUMN,
        classify_ticks,
        single_pass_verdicts,
        verdicts,
    )
    from pipeline.silver_state import watermark_frame

    rng = random.Random(5)
    ticks = [tick(f"{i:032x}", rng.choice(["AAA", "BBB", "CCC"]), T + timedelta(seconds=i))
             for i in range(200)]
    values = ticks + rng.sample(ticks, 20) + rng.sample(ticks, 5) + [b"{", None, b"[1]"]
    rng.shuffle(values)
    marks = watermark_frame(spark, {"AAA": T - timedelta(hours=2),
                                    "BBB": T - timedelta(seconds=1)})
    classified = classify_ticks(bronze_rows(spark, values), 65536, 300, now=F.col("ingest_time"))
    one = single_pass_verdicts(classified, marks, 4).toArrow().sort_by("offset")
    two = verdicts(classified, None, marks, 3600).toArrow().sort_by("offset")
    assert one.drop_columns([VALID_COLUMN, STALE_COLUMN]).to_pylist() == two.to_pylist()
    reasons = one.column("reason").to_pylist()
    assert reasons.count(None) == 200 and reasons.count("duplicate_tick_id") == 25
    assert one.column(VALID_COLUMN).to_pylist() == [r is None or r == "duplicate_tick_id"
                                                    for r in reasons]
    assert not any(one.column(STALE_COLUMN).to_pylist())

    at_mark = watermark_frame(spark, {"AAA": T + timedelta(seconds=3)})
    flagged = single_pass_verdicts(classified, at_mark, 4).where(F.col(STALE_COLUMN)).toArrow()
    assert sorted(set(flagged.column("tick_id").to_pylist())) == sorted(
        {f"{i:032x}" for i in range(4) if json.loads(ticks[i])["ticker"] == "AAA"})


def write_batches(spark, lake: Path, single_pass: bool, batches: list[list[bytes | None]]):
    from pipeline.silver import classify_with_settings, silver_batch_writer

    settings = Settings(lake_dir=lake)
    write = silver_batch_writer(settings, "app", single_pass=single_pass)
    offset = 0
    for batch_id, values in enumerate(batches):
        frame = classify_with_settings(bronze_rows(spark, values, offset), settings,
                                       now=F.col("ingest_time"))
        write(frame, batch_id, None, ())
        offset += len(values)


def test_the_one_pass_writer_gives_the_two_pass_lake_and_falls_back_on_a_repeated_tick(
    spark, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Four micro-batches written once in one pass (falling back to two) and once in two
    passes give the same Silver, quarantine and watermarks. Batch 1 repeats a tick of batch
    0 and holds a tick 2 h behind its watermark: its one pass is called off, and the repeat is
    quarantined as already in Silver, the old tick as late; batch 2 is written in two passes
    (the one before needed them), batch 3 in one again. The called-off pass leaves no file."""
    first = [tick(f"a{i:031x}", "AAA" if i % 2 else "BBB", T + timedelta(seconds=i))
             for i in range(40)]
    batches = [
        [*first, first[3], b"{not json"],  # an in-batch duplicate, a malformed record
        [*(tick(f"b{i:031x}", "AAA", T + timedelta(minutes=5, seconds=i)) for i in range(20)),
         first[7], tick("c" * 32, "AAA", T - timedelta(hours=2))],
        [tick(f"d{i:031x}", "BBB", T + timedelta(minutes=10, seconds=i)) for i in range(20)],
        [tick(f"e{i:031x}", "AAA", T + timedelta(minutes=15, seconds=i)) for i in range(20)],
    ]
    with caplog.at_level(logging.INFO, logger="pipeline.silver"):
        write_batches(spark, tmp_path / "one", True, batches)
    passes = [m for m in caplog.messages if m.startswith("silver micro-batch")]
    assert ["one pass" in m for m in passes] == [True, False, False, False, True]
    assert "at or before its ticker's watermark" in passes[1]
    write_batches(spark, tmp_path / "two", False, batches)

    def table(name: str, lake: Path) -> list[dict[str, object]]:
        spec = {"ticks": SILVER_TICKS, "quarantine": SILVER_QUARANTINE,
                "watermarks": SILVER_WATERMARKS}[name]
        rows = read_table(spec, lake).to_pylist()
        for r in rows:
            r.pop("updated_at", None)
        return sorted(rows, key=lambda r: str(r.get("offset", r.get("ticker"))))

    for name in ("ticks", "quarantine", "watermarks"):
        assert table(name, tmp_path / "one") == table(name, tmp_path / "two"), name
    held = {r["offset"]: (r["reason"], r["detail"]) for r in
            read_table(SILVER_QUARANTINE, tmp_path / "one").to_pylist()}
    assert held == {
        40: ("duplicate_tick_id", "earlier in the same micro-batch"),
        41: ("not_json", held[41][1]),
        62: ("duplicate_tick_id", "already in silver.ticks"),
        63: ("late", held[63][1]),
    }
    assert read_table(SILVER_TICKS, tmp_path / "one").num_rows == 40 + 20 + 20 + 20
    marks = {r["ticker"]: r["watermark"]
             for r in read_table(SILVER_WATERMARKS, tmp_path / "one").to_pylist()}
    assert marks == {"AAA": T + timedelta(minutes=15, seconds=19),
                     "BBB": T + timedelta(minutes=10, seconds=19)}
    for spec in (SILVER_TICKS, SILVER_QUARANTINE):
        delta = open_table(spec, tmp_path / "one")
        assert delta is not None
        on_disk = {p.resolve().as_uri() for p in spec.path(tmp_path / "one").rglob("*.parquet")}
        assert on_disk == {Path(u.removeprefix("file://")).resolve().as_uri()
                           for u in delta.file_uris()}, spec.name
