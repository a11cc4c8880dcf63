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
