"""Checkpoints of the earlier Delta source carried onto delta-spark's offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.tables import BRONZE_TICKS
from pipeline.checkpoints import convert_delta_offsets
from storage.delta import ensure_table

HEADER = ['v1', '{"batchWatermarkMs":0,"batchTimestampMs":1795560138206,"conf":{}}']


def old_checkpoint(root: Path, versions: list[int], committed: int) -> Path:
    """A Spark checkpoint as the earlier release left it: an offsets file per batch (with a
    Hadoop checksum file) and the first ``committed`` batches in the commit log."""
    checkpoint = root / "silver" / "spark"
    (checkpoint / "offsets").mkdir(parents=True)
    (checkpoint / "commits").mkdir()
    for batch, version in enumerate(versions):
        (checkpoint / "offsets" / str(batch)).write_text(
            "\n".join([*HEADER, json.dumps({"version": version})]))
        (checkpoint / "offsets" / f".{batch}.crc").write_bytes(b"crc")
        if batch < committed:
            (checkpoint / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    return checkpoint


def test_old_offsets_become_delta_offsets_after_the_last_version_read(tmp_path) -> None:
    table_id = ensure_table(BRONZE_TICKS, tmp_path / "lake").metadata().id
    checkpoint = old_checkpoint(tmp_path / "cp", [1, 4], committed=1)
    source = BRONZE_TICKS.path(tmp_path / "lake")

    assert convert_delta_offsets(checkpoint, source, "silver") == 2

    for batch, version in enumerate([1, 4]):
        lines = (checkpoint / "offsets" / str(batch)).read_text().splitlines()
        assert lines[:2] == HEADER  # Spark's own lines unchanged
        assert json.loads(lines[2]) == {
            "sourceVersion": 1, "reservoirId": table_id, "reservoirVersion": version + 1,
            "index": -1, "isStartingVersion": False}
        assert not (checkpoint / "offsets" / f".{batch}.crc").exists()
    assert sorted(p.name for p in (checkpoint / "offsets").iterdir()) == ["0", "1"]
    assert convert_delta_offsets(checkpoint, source, "silver") == 0  # idempotent


def test_a_checkpoint_without_old_offsets_is_left_alone(tmp_path) -> None:
    source = BRONZE_TICKS.path(tmp_path / "lake")
    ensure_table(BRONZE_TICKS, tmp_path / "lake")
    assert convert_delta_offsets(tmp_path / "none", source, "silver") == 0
    checkpoint = old_checkpoint(tmp_path / "cp", [2], committed=1)
    converted = (checkpoint / "offsets" / "0")
    convert_delta_offsets(checkpoint, source, "silver")
    before = converted.read_text()
    assert convert_delta_offsets(checkpoint, source, "silver") == 0
    assert converted.read_text() == before


def test_an_old_query_stopped_in_its_first_batch_is_refused_with_the_way_out(tmp_path) -> None:
    source = BRONZE_TICKS.path(tmp_path / "lake")
    ensure_table(BRONZE_TICKS, tmp_path / "lake")
    checkpoint = old_checkpoint(tmp_path / "cp", [3], committed=0)
    with pytest.raises(ConfigError, match="first micro-batch") as raised:
        convert_delta_offsets(checkpoint, source, "silver")
    assert str(checkpoint.parent) in str(raised.value)
    assert json.loads((checkpoint / "offsets" / "0").read_text().splitlines()[2]) == {
        "version": 3}  # untouched


def test_a_lost_checkpoint_is_restored_from_the_lakes_newest_record(tmp_path: Path) -> None:
    """Each commit of a job that reads a Delta table records the offsets its batch ran
    between. Quarantine committed batches 3 and 4, the watermarks only batch 3 (a crash in
    between); the checkpoint is then lost. The restored one plans batch 4 again, from the
    offsets of batch 3 to those of batch 4, under the old app id: every table that holds
    batch 4 skips it. A checkpoint that holds a batch, and a job reading Kafka, are left as
    they are; a table that committed a later batch than any record found is refused."""
    import shutil
    from datetime import UTC, datetime

    import pyarrow as pa

    from config.settings import Settings
    from config.tables import SILVER_QUARANTINE, SILVER_WATERMARKS
    from pipeline.checkpoints import (
        APP_ID_FILE,
        replay_record,
        restore_checkpoint,
        spark_checkpoint,
    )
    from storage.sink import DeltaSink

    settings = Settings(lake_dir=tmp_path / "lake")
    checkpoint = spark_checkpoint(settings, "silver")
    (checkpoint / "offsets").mkdir(parents=True)
    offsets = {batch: "\n".join([*HEADER, json.dumps({"sourceVersion": 1, "index": -1,
                                                      "reservoirVersion": batch + 1})])
               for batch in range(5)}
    for batch, text in offsets.items():
        (checkpoint / "offsets" / str(batch)).write_text(text)
    app_id = "silver-0123456789abcdef"

    def sink(table):
        return DeltaSink(table, settings.lake_dir, app_id,
                         user_metadata=lambda batch: replay_record(settings, app_id, batch))

    quarantine, marks = sink(SILVER_QUARANTINE), sink(SILVER_WATERMARKS)
    for batch in (3, 4):
        quarantine.append(SILVER_QUARANTINE.schema.empty_table(), batch)
    now = datetime(2026, 12, 7, tzinfo=UTC)
    marks.upsert(pa.Table.from_pylist([{"ticker": "FB", "watermark": now, "updated_at": now}],
                                      schema=SILVER_WATERMARKS.schema), 3)
    assert marks.committed(3) and not marks.committed(4)
    assert restore_checkpoint(settings, "silver") is None  # the checkpoint has its batches

    shutil.rmtree(checkpoint.parent)
    assert restore_checkpoint(settings, "silver") == 4
    assert (checkpoint / "offsets" / "4").read_text() == offsets[4]
    assert (checkpoint / "offsets" / "3").read_text() == offsets[3]
    assert sorted(p.name for p in (checkpoint / "offsets").iterdir()) == ["3", "4"]
    assert [p.name for p in (checkpoint / "commits").iterdir()] == ["3"]
    assert (checkpoint.parent / APP_ID_FILE).read_text() == app_id
    assert set(json.loads((checkpoint / "metadata").read_text())) == {"id"}
    assert restore_checkpoint(settings, "bronze") is None  # its source is Kafka
    assert replay_record(settings, "bronze-0123456789abcdef", 4) is None

    # a table ahead of every record found (its own record out of reach): refused, not guessed
    shutil.rmtree(checkpoint.parent)
    DeltaSink(SILVER_QUARANTINE, settings.lake_dir, app_id).append(
        SILVER_QUARANTINE.schema.empty_table(), 5)  # no record
    with pytest.raises(ConfigError, match="committed batch 5 of app id silver-0123"):
        restore_checkpoint(settings, "silver")
