"""Incremental = batch: Gold built chunk by chunk, with restarts, equals a one-shot computation."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from config.settings import Settings
from config.tables import GOLD_ANOMALIES, GOLD_BARS_1H, GOLD_INDICATORS_1D, GOLD_INDICATORS_1H
from pipeline.indicators import anomalies, indicators_1d, indicators_1h
from producer.publisher import publish
from producer.sources.replay import ReplaySource
from storage.delta import read_table
from ticklake.broker import ensure_topic
from ticklake.verify import compare_with_lake

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def frame(table, lake) -> pd.DataFrame:
    return read_table(table, lake).to_pandas().sort_values(
        [c for c in ("ticker", "window_start", "metric") if c in table.schema.names]
    ).reset_index(drop=True)


def test_chunked_replay_with_restarts_equals_one_shot(spark, broker: Settings, tmp_path) -> None:
    """AAPL 2000-2013 replayed in 3 chunks, the jobs restarted from their checkpoints after
    each: bars, daily and hourly indicators and anomalies equal one computation over the whole
    history (no window restarts at micro-batch boundaries)."""
    from pipeline.jobs import run_jobs

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="incremental.ticks")
    ensure_topic(settings)
    full = ReplaySource(["AAPL"])
    cuts = [0, 1000, 2200, len(full.bars)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        chunk = copy.copy(full)
        chunk.bars = full.bars.iloc[start:end]
        publish(chunk.ticks(), settings, progress=False)
        run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)

    lake = settings.lake_dir
    assert compare_with_lake(full.bars, lake)["all_equal"]
    bars = full.bars.assign(window_start=pd.to_datetime(full.bars["day"]).dt.tz_localize("UTC"))
    one_shot = indicators_1d(bars)
    got = frame(GOLD_INDICATORS_1D, lake)
    assert len(got) == 3270
    for column in one_shot.columns.drop(["ticker", "window_start"]):
        np.testing.assert_allclose(got[column].astype(float), one_shot[column].astype(float),
                                   rtol=1e-12, atol=0, equal_nan=True, err_msg=column)

    flags = frame(GOLD_ANOMALIES, lake)
    expected = anomalies(one_shot).sort_values(["ticker", "window_start", "metric"])
    assert len(flags) == len(expected) > 0
    assert list(flags["metric"]) == list(expected["metric"])
    np.testing.assert_allclose(flags["z_score"], expected["z_score"], rtol=1e-12)

    hourly = frame(GOLD_INDICATORS_1H, lake)
    expected_1h = indicators_1h(frame(GOLD_BARS_1H, lake))
    assert len(hourly) == 4 * 3270  # replay ticks fall in 4 distinct hours a day
    for column in ("return_1h", "ma_3", "vol_3", "avg_price"):
        np.testing.assert_allclose(hourly[column], expected_1h[column], rtol=1e-12,
                                   equal_nan=True, err_msg=column)


def test_backfill_writes_history_behind_the_watermark(spark, broker: Settings, tmp_path,
                                                      monkeypatch) -> None:
    """MSFT's last 60 days replayed first; one older day sent as a plain replay is quarantined
    as late; then ``ticklake backfill`` of everything up to 5 days into the replayed range:
    nothing is late (the late day is taken now), the 5 overlapping days are duplicates, Gold's
    bars and indicators equal one computation over the whole history, and the lake reconciles.
    The same backfill again changes no Silver or Gold row."""
    from datetime import timedelta

    from config.reasons import Reason
    from pipeline.jobs import run_jobs
    from storage.facts import lake_status
    from ticklake.cli import app

    settings = broker.with_overrides(lake_dir=tmp_path / "lake", topic="backfill.ticks")
    ensure_topic(settings)
    full = ReplaySource(["MSFT"])
    recent = ReplaySource(["MSFT"], limit_days=60)
    first_recent = recent.bars["day"].min()
    publish(recent.ticks(), settings, progress=False)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
    old_day = full.bars["day"].iloc[100]  # behind the watermark Silver now holds
    publish(ReplaySource(["MSFT"], first_day=old_day, last_day=old_day).ticks(), settings,
            progress=False)
    run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
    assert lake_status(settings.lake_dir)["reconciliation"]["by_reason"] == {Reason.LATE: 4}

    overlap_end = recent.bars["day"].iloc[4]
    monkeypatch.setenv("TICKLAKE_TOPIC", settings.topic)  # ticklake backfill's topic
    argv = ["backfill", "--tickers", "MSFT", "--to", str(overlap_end),
            "--bootstrap-servers", settings.bootstrap_servers]
    for run in (1, 2):
        app(argv, standalone_mode=False)
        run_jobs(settings, ["bronze", "silver", "gold"], until_caught_up=True)
        recon = lake_status(settings.lake_dir)["reconciliation"]
        backfilled = int((full.bars["day"] <= overlap_end).sum()) * 4
        assert recon["silver"] == full.expected_count() and recon["balanced"]
        assert recon["by_reason"] == {
            Reason.LATE: 4, Reason.DUPLICATE_TICK_ID: 5 * 4 + (run - 1) * backfilled}
        assert compare_with_lake(full.bars, settings.lake_dir)["all_equal"]
        got = frame(GOLD_INDICATORS_1D, settings.lake_dir)
        bars = full.bars.assign(
            window_start=pd.to_datetime(full.bars["day"]).dt.tz_localize("UTC"))
        one_shot = indicators_1d(bars)
        assert len(got) == len(full.bars) == 3270 and first_recent - old_day > timedelta(0)
        for column in one_shot.columns.drop(["ticker", "window_start"]):
            np.testing.assert_allclose(got[column].astype(float),
                                       one_shot[column].astype(float), rtol=1e-12, atol=0,
                                       equal_nan=True, err_msg=column)
