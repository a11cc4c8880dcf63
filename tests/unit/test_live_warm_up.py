"""The live job's warm-up: one synthetic micro-batch through every layer in a scratch lake."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyspark.sql import functions as F

from config.settings import Settings
from config.tables import BRONZE_TICKS, GOLD_BARS, SILVER_QUARANTINE, SILVER_TICKS
from storage.delta import read_table

pytestmark = pytest.mark.spark


def test_the_warm_up_batch_is_taken_by_silver_but_for_one_malformed_record(spark, lake) -> None:
    """Its ticks pass validation now (so the warm-up runs Silver's and Gold's code, not only
    quarantine's), on the configured tickers; the one malformed record does not."""
    from pipeline.live import warm_up_records
    from pipeline.silver import classify_with_settings

    settings = Settings(lake_dir=lake, tickers=["AAPL", "EURUSD", "BTC-USD"])
    rows = classify_with_settings(warm_up_records(spark, settings, ticks=30), settings,
                                  now=F.col("ingest_time")).collect()
    valid = [r for r in rows if r.reason is None]
    assert len(rows) == 31 and len(valid) == 30
    assert {r.ticker for r in valid} == {"AAPL", "EURUSD", "BTC-USD"}
    assert len({r.tick_id for r in valid}) == 30
    assert [r.reason for r in rows if r.reason is not None] == ["not_json"]


def test_the_warm_up_writes_every_layer_in_its_scratch_lake_and_leaves_the_lake_alone(
    spark, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scratch lake holds the batch in Bronze, Silver, quarantine and Gold bars when it is
    deleted; afterwards the lake holds exactly what it held before."""
    from pipeline import live

    (lake / "keep.txt").write_text("the lake's own file")
    seen: dict[str, int] = {}

    def rmtree(path: Path, ignore_errors: bool = False) -> None:
        if Path(path).exists():  # the deletion after the write, not the one before it
            seen.update({t.name: read_table(t, Path(path)).num_rows for t in
                         (BRONZE_TICKS, SILVER_TICKS, SILVER_QUARANTINE, GOLD_BARS["1m"])})
        shutil.rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(live, "shutil", SimpleNamespace(rmtree=rmtree))
    live.warm_up(spark, Settings(lake_dir=lake, tickers=["AAPL", "MSFT"]))
    assert seen[BRONZE_TICKS.name] == 201
    assert seen[SILVER_TICKS.name] == 200 and seen[SILVER_QUARANTINE.name] == 1
    assert seen[GOLD_BARS["1m"].name] >= 2 * 3  # 200 s of ticks per ticker: >= 3 minutes each
    assert sorted(p.name for p in lake.iterdir()) == ["keep.txt"]
