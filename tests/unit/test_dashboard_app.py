"""The Streamlit dashboard, run headless with AppTest against a small lake."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests import small_lake

APP = Path(__file__).resolve().parents[2] / "visualization" / "app.py"
LAST_INGEST = datetime(2026, 11, 21, 9, 11, tzinfo=UTC)
"""The newest ingest_time of tests/small_lake.py."""


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_dashboard_shows_the_lake_counts(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Health metrics, reconciliation and the quarantine log show what the lake holds."""
    counts = small_lake.build(lake)
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["now"] = LAST_INGEST + timedelta(days=3)  # the injected clock
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Total ingested records"] == "12" and shown["Bronze"] == "12"
    assert shown["Silver ticks"] == str(counts["silver"])
    assert shown["Rejected"] == "1" and shown["Duplicates"] == "1" and shown["Reconciled"] == "yes"
    assert shown["Late"] == "0"
    assert shown["Last ingestion (UTC)"] == "2026-11-21 09:11:00"
    assert shown["Ingestion health"] == "stalled"  # ingested 3 days before "now"
    quarantine = at.dataframe[0].value
    assert sorted(quarantine["reason"]) == ["duplicate_tick_id", "not_json"]
    assert at.selectbox[0].value == "AAA"


@pytest.mark.parametrize(("age_s", "health"), [(30, "healthy"), (120, "late"), (601, "stalled")])
def test_ingestion_health_follows_the_clock(lake: Path, monkeypatch: pytest.MonkeyPatch,
                                            age_s: int, health: str) -> None:
    """With the clock injected 30 s / 2 min / 601 s after the last ingestion, health is
    healthy / late / stalled (thresholds 60 s and 600 s)."""
    small_lake.build(lake)
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["now"] = LAST_INGEST + timedelta(seconds=age_s)
    at.run()
    assert not at.exception and metrics(at)["Ingestion health"] == health


def test_dashboard_on_an_empty_lake_says_so(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new lake renders with zero counts and 'no data', not an error."""
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert metrics(at)["Ingestion health"] == "no data"
    assert metrics(at)["Total ingested records"] == "0"
    assert any("No Gold bars yet" in i.value for i in at.info)


def test_dashboard_shows_the_backtest_and_the_champion(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a serving version for AAA: the backtest table lists the LSTM and the three
    baselines with skill, coverage and DM p-value per horizon; the caption names the champion
    and its coverage; switching the horizon shows that horizon's champion."""
    from datetime import UTC, datetime

    from analytics.registry import Registry
    from tests.model_registry import register_model

    small_lake.build(lake)
    register_model(lake, "AAA", "v1", {1: "lstm", 5: "linear"})
    assert Registry(lake).consider("AAA", "v1", datetime.now(UTC))[0]
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    backtest = next(d.value for d in at.dataframe if "skill" in d.value.columns)
    assert list(backtest["model"]) == ["lstm", "naive", "sma", "linear"]
    assert list(backtest["skill"]) == [0.01, 0.0, 0.03, 0.04]
    assert list(backtest["champion"]) == [True, False, False, False]
    assert backtest["dm_p_value"].iloc[0] == 0.04 and pd.isna(backtest["dm_p_value"].iloc[1])
    caption = " ".join(c.value for c in at.caption)
    assert "v1 (serving)" in caption and "champion lstm" in caption and "covered 79.0%" in caption
    at.radio[0].set_value("5").run()
    caption = " ".join(c.value for c in at.caption)
    assert "champion linear" in caption and "covered 82.0%" in caption
