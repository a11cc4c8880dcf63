"""Silver: typed, validated, deduplicated ticks; every rejected record goes to quarantine.

Runnable as ``spark-submit pipeline/silver.py [--lake DIR] [--until-caught-up]``.

Per micro-batch of Bronze rows: each value is validated (:mod:`pipeline.validation`); valid
ticks whose ``tick_id`` is new go to ``silver/ticks``; invalid ones and duplicates (same
``tick_id`` earlier in the batch or already in Silver) go to ``silver/quarantine`` with their
reason. So ``bronze = silver + quarantine`` always, and the duplicates are the quarantine rows
with reason ``duplicate_tick_id``. Ticks behind their ticker's event-time watermark are
quarantined as ``late``, so a Gold bar whose window ends before the watermark is final.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from config.reasons import Reason
from config.settings import Settings
from config.tables import BRONZE_TICKS, SILVER_QUARANTINE, SILVER_TICKS, UTC_TS
from pipeline.runner import Job, main
from pipeline.schemas import table_stream
from pipeline.validation import validate_value
from producer.messages import MESSAGE_FIELDS
from storage.delta import read_table
from storage.sink import DeltaSink

CLASSIFIED_SCHEMA = pa.schema(
    [
        *[(f.name, f.type) for f in SILVER_TICKS.schema],
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_value", pa.binary()),
        ("checked_at", UTC_TS),
    ]
)
"""Silver's columns plus the verdict: ``reason`` is null for a valid tick."""


def _classify_batches(
    batches: Iterator[pa.RecordBatch], max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None,
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows = batch.to_pylist()
        out: dict[str, list[object]] = {name: [] for name in CLASSIFIED_SCHEMA.names}
        for row in rows:
            tick, reason, detail = validate_value(
                row["value"], row["checked_at"], max_message_bytes, max_future_skew_s,
                allowed_tickers,
            )
            fields = tick.model_dump() if tick else {}
            for name in MESSAGE_FIELDS:
                out[name].append(fields.get(name))
            out["kafka_timestamp"].append(row["timestamp"])
            for name in ("topic", "partition", "offset", "ingest_time", "checked_at"):
                out[name].append(row[name])
            out["reason"].append(reason)
            out["detail"].append(detail)
            out["raw_value"].append(row["value"])
        yield pa.RecordBatch.from_pydict(out, schema=CLASSIFIED_SCHEMA)


def classify_ticks(
    bronze: DataFrame, max_message_bytes: int, max_future_skew_s: float,
    allowed_tickers: frozenset[str] | None = None,
) -> DataFrame:
    """Bronze rows -> one row each with the parsed tick and its verdict.

    Args:
        bronze: rows with Bronze's columns (``value`` binary, Kafka position, ``ingest_time``).
        max_message_bytes: see :func:`pipeline.validation.validate_value`.
        max_future_skew_s: see :func:`pipeline.validation.validate_value`.
        allowed_tickers: see :func:`pipeline.validation.validate_value`.

    Returns:
        DataFrame with :data:`CLASSIFIED_SCHEMA`; ``checked_at`` is the micro-batch time used
        as "now" (the same when a batch is replayed).
    """
    staged = bronze.withColumn("checked_at", F.current_timestamp())
    return staged.mapInArrow(
        lambda it: _classify_batches(it, max_message_bytes, max_future_skew_s, allowed_tickers),
        from_arrow_schema(CLASSIFIED_SCHEMA),
    )


def split_batch(
    classified: pa.Table,
    existing_ids: set[str],
    watermarks: dict[str, datetime] | None = None,
    allowed_lateness_s: float = 0.0,
) -> tuple[pa.Table, pa.Table]:
    """Split a classified micro-batch into (silver rows, quarantine rows).

    A valid tick is a duplicate if its ``tick_id`` is in ``existing_ids`` or appeared earlier in
    the batch (order: Kafka partition, offset); duplicates are quarantined as
    ``duplicate_tick_id``. A valid, new tick whose event time is more than
    ``allowed_lateness_s`` behind its ticker's watermark (the latest event time Silver held
    before this batch) is quarantined as ``late``, with how late it is. Watermarks advance
    between micro-batches, as Spark's do.
    """
    classified = classified.sort_by([("partition", "ascending"), ("offset", "ascending")])
    reasons: list[Any] = classified.column("reason").to_pylist()
    details: list[Any] = classified.column("detail").to_pylist()
    ids: list[Any] = classified.column("tick_id").to_pylist()
    tickers: list[Any] = classified.column("ticker").to_pylist()
    times: list[Any] = classified.column("event_time").to_pylist()
    marks = watermarks or {}
    seen = set(existing_ids)
    for i, (reason, tick_id) in enumerate(zip(reasons, ids, strict=True)):
        if reason is not None:
            continue
        if tick_id in seen:
            reasons[i] = Reason.DUPLICATE_TICK_ID
            details[i] = (
                "already in silver.ticks" if tick_id in existing_ids
                else "earlier in the same micro-batch"
            )
        elif tickers[i] in marks:
            behind_s = (marks[tickers[i]] - times[i]).total_seconds()
            if behind_s > allowed_lateness_s:
                reasons[i] = Reason.LATE
                details[i] = (
                    f"{behind_s:.0f} s behind the {tickers[i]} watermark "
                    f"{marks[tickers[i]].isoformat()} (allowed lateness {allowed_lateness_s:.0f} s)"
                )
        seen.add(tick_id)
    verdict = pa.array(reasons, pa.string())
    classified = classified.set_column(
        classified.schema.get_field_index("reason"), "reason", verdict
    ).set_column(classified.schema.get_field_index("detail"), "detail",
                 pa.array(details, pa.string()))
    accepted = classified.filter(pc.is_null(verdict))
    rejected = classified.filter(pc.is_valid(verdict))
    quarantine = rejected.append_column(
        "quarantined_at", rejected.column("checked_at")
    )
    return accepted.select(SILVER_TICKS.schema.names), quarantine.select(
        SILVER_QUARANTINE.schema.names
    )


def ticker_watermarks(lake_dir: Path, tickers: list[str]) -> dict[str, datetime]:
    """Latest event time (UTC) per ticker in Silver, for ``tickers`` that have any."""
    if not tickers:
        return {}
    data = read_table(SILVER_TICKS, lake_dir, ["ticker", "event_time"],
                      where=pc.field("ticker").isin(tickers))
    if not len(data):
        return {}
    latest = data.group_by("ticker").aggregate([("event_time", "max")])
    tickers_found: list[Any] = latest.column("ticker").to_pylist()
    marks: list[Any] = latest.column("event_time_max").to_pylist()
    return dict(zip(tickers_found, marks, strict=True))


def existing_tick_ids(lake_dir: Path, candidate_ids: list[str]) -> set[str]:
    """The ``candidate_ids`` already in Silver (reads only the ``tick_id`` column)."""
    if not candidate_ids:
        return set()
    found = read_table(SILVER_TICKS, lake_dir, ["tick_id"],
                       where=pc.field("tick_id").isin(candidate_ids))
    ids: list[Any] = found.column("tick_id").to_pylist()
    return set(ids)


def silver_writer(settings: Settings, app_id: str) -> Callable[[DataFrame, int], None]:
    """foreachBatch function: quarantine first, then Silver, each exactly once.

    Quarantine is committed before Silver, so after a crash between the two the replayed batch
    classifies duplicates and late ticks against the same Silver state and gives the same split.
    """
    silver = DeltaSink(SILVER_TICKS, settings.lake_dir, app_id)
    quarantine = DeltaSink(SILVER_QUARANTINE, settings.lake_dir, app_id)

    def write(batch: DataFrame, batch_id: int) -> None:
        if silver.committed(batch_id):
            return
        classified = batch.toArrow()
        valid = classified.filter(pc.is_null(classified.column("reason")))
        ids: list[Any] = valid.column("tick_id").to_pylist()
        tickers: list[Any] = valid.column("ticker").to_pylist()
        accepted, rejected = split_batch(
            classified,
            existing_tick_ids(settings.lake_dir, ids),
            ticker_watermarks(settings.lake_dir, sorted(set(tickers))),
            settings.allowed_lateness_s,
        )
        quarantine.append(rejected, batch_id)
        silver.append(accepted, batch_id)

    return write


def stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """This job's streaming DataFrame: Bronze through :func:`classify_ticks`."""
    return classify_ticks(
        table_stream(spark, BRONZE_TICKS, settings.lake_dir),
        settings.max_message_bytes,
        settings.max_future_skew_s,
        frozenset(settings.ticker_allowlist) if settings.ticker_allowlist else None,
    )


JOB = Job("silver", stream, silver_writer)
"""The silver job (registered in :mod:`pipeline.jobs`)."""

if __name__ == "__main__":  # spark-submit pipeline/silver.py: import this file as its module
    from pipeline import silver as this_job

    main([this_job.JOB])
