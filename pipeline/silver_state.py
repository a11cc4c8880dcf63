"""Silver's bounded state: per-ticker watermarks and the Silver files a batch can duplicate.

A micro-batch's classification must not read Silver's whole history:

* **Watermarks** (the latest accepted event time per ticker) live in ``silver/watermarks``, one
  row per ticker. A batch reads it (a few rows) and, after its ticks are committed, raises it
  to the latest event time of its valid ticks: late ticks and duplicates never lie after the
  watermark, so that maximum does not depend on the classification, and a replayed batch
  updates it the same way.
* **Duplicate candidates**: a tick's ``tick_id`` is derived from its content, event time
  included, so a duplicate has the same event time, and Silver holds no tick of a ticker
  after its watermark. Only the ticks at or before their watermark can repeat a Silver tick,
  and only the Silver files whose event-time statistics (from the Delta log) overlap those
  ticks' event times can hold one; Spark reads just those, on the executors (none at all
  while the feed is live).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from config.tables import SILVER_TICKS, SILVER_WATERMARKS
from storage.delta import files_overlapping, open_table, read_table
from storage.sink import DeltaSink

log = logging.getLogger(__name__)

RANGE_GAP = timedelta(days=1)
"""Event-time ranges of a batch closer than this are merged into one before file pruning."""


def watermarks(lake_dir: Path) -> dict[str, datetime]:
    """Silver's watermark per ticker (UTC).

    While ``silver/watermarks`` holds no row (a new lake, or one whose Silver predates the
    table: the Silver writer creates it empty), the watermarks come from Silver's ``ticker``
    and ``event_time`` columns; on a new lake that read is of an empty table.
    """
    rows = read_table(SILVER_WATERMARKS, lake_dir, ["ticker", "watermark"]).to_pylist()
    if not rows:
        return _bootstrap(lake_dir)
    return {str(r["ticker"]): r["watermark"] for r in rows}


def _bootstrap(lake_dir: Path) -> dict[str, datetime]:
    if open_table(SILVER_TICKS, lake_dir) is None:
        return {}
    data = read_table(SILVER_TICKS, lake_dir, ["ticker", "event_time"])
    if not data.num_rows:
        return {}
    latest = data.group_by("ticker").aggregate([("event_time", "max")]).to_pylist()
    marks = {str(r["ticker"]): r["event_time_max"] for r in latest}
    log.info("silver/watermarks bootstrapped from silver/ticks: %d tickers", len(marks))
    return marks


def watermark_frame(spark: SparkSession, marks: dict[str, datetime]) -> DataFrame:
    """``marks`` as a small DataFrame (ticker, watermark) for a broadcast join."""
    table = pa.table({"ticker": pa.array(list(marks), pa.string()),
                      "watermark": pa.array(list(marks.values()), SILVER_WATERMARKS.schema
                                            .field("watermark").type)})
    return spark.createDataFrame(table.to_pandas(), "ticker string, watermark timestamp")


def raise_watermarks(
    sink: DeltaSink, before: dict[str, datetime], batch_latest: dict[str, datetime],
    batch_id: int, now: datetime,
) -> dict[str, datetime]:
    """Raise each ticker's watermark to the batch's latest valid event time; commit the rows
    that changed as batch ``batch_id``. When none changed, delta-rs's MERGE of no rows commits
    nothing and the batch id is not recorded here: a replay of such a batch finds it in
    ``silver/ticks`` instead (:func:`pipeline.silver.silver_writer`).

    Returns:
        The watermarks after the batch.
    """
    after = dict(before)
    changed = []
    for ticker, latest in batch_latest.items():
        if ticker not in before or latest > before[ticker]:
            after[ticker] = latest
            changed.append({"ticker": ticker, "watermark": latest, "updated_at": now})
    sink.upsert(pa.Table.from_pylist(changed, schema=SILVER_WATERMARKS.schema), batch_id)
    return after


def merge_ranges(ranges: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sort and merge event-time ranges that overlap or lie within :data:`RANGE_GAP`."""
    merged: list[tuple[datetime, datetime]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + RANGE_GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def duplicate_candidates(
    spark: SparkSession, lake_dir: Path, ranges: Sequence[tuple[datetime, datetime]]
) -> DataFrame | None:
    """The ``tick_id`` of Silver rows in the files that overlap ``ranges`` (UTC event times),
    read by Spark on the executors; None when no file overlaps."""
    merged = merge_ranges(ranges)
    if not merged:
        return None
    files = files_overlapping(SILVER_TICKS, lake_dir, "event_time", merged)
    if not files:
        return None
    log.info("silver duplicate check reads %d file(s) overlapping %d event-time range(s)",
             len(files), len(merged))
    return spark.read.schema("tick_id string").parquet(*files)


@dataclass(frozen=True)
class BatchSummary:
    """What Silver's state needs to know of a micro-batch's valid ticks.

    Attributes:
        event_ranges: per UTC event date, the (min, max) event time (UTC) of the ticks that
            can repeat a Silver tick (:func:`summarize`).
        latest: per ticker, the latest event time (UTC).
        invalid: how many rows validation rejected.
    """

    event_ranges: list[tuple[datetime, datetime]]
    latest: dict[str, datetime]
    invalid: int = 0


def summarize(classified: DataFrame, marks: DataFrame | None = None) -> BatchSummary:
    """One aggregation of the ``classified`` rows (``reason`` null: valid) by (ticker, UTC
    event date): a few rows reach the driver (tickers x dates), never the ticks.

    ``event_ranges`` cover only the valid ticks at or before their ticker's watermark in
    ``marks`` (``(ticker, watermark)`` rows, :func:`watermark_frame`; None: no ticker has
    one): Silver holds no tick of a ticker after its watermark, and a duplicate has its
    original's event time, so a later tick cannot repeat a Silver tick. On a live feed almost
    every tick is after its watermark, and the duplicate check reads no Silver file at all.
    """
    frame = classified
    valid = F.col("reason").isNull()
    below: Column = F.lit(False)
    if marks is not None:
        frame = classified.join(F.broadcast(marks.withColumnRenamed("watermark", "_mark")),
                                "ticker", "left")
        below = F.col("event_time") <= F.col("_mark")
    rows: list[Any] = (frame.groupBy("ticker", F.to_date("event_time").alias("d"))
                       .agg(F.min(F.when(valid & below, F.col("event_time"))).alias("lo"),
                            F.max(F.when(valid & below, F.col("event_time"))).alias("hi"),
                            F.max(F.when(valid, F.col("event_time"))).alias("latest"),
                            F.count(F.when(~valid, 1)).alias("invalid"))
                       .collect())
    by_date: dict[Any, tuple[datetime, datetime]] = {}
    latest: dict[str, datetime] = {}
    for r in rows:
        if r.latest is None:  # only rejected rows
            continue
        top = _utc(r.latest)
        latest[str(r.ticker)] = max(latest.get(str(r.ticker), top), top)
        if r.lo is None:
            continue
        lo, hi = _utc(r.lo), _utc(r.hi)
        known = by_date.get(r.d)
        by_date[r.d] = (min(known[0], lo), max(known[1], hi)) if known else (lo, hi)
    return BatchSummary(sorted(by_date.values()), latest, sum(int(r.invalid) for r in rows))


def _utc(value: datetime) -> datetime:
    """Spark returns naive datetimes in the session time zone, which is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
