"""The Streamlit dashboard, run headless with AppTest against a small lake."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import small_lake

APP = Path(__file__).resolve().parents[2] / "visualization" / "app.py"


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_dashboard_shows_the_lake_counts(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Health metrics, reconciliation and the quarantine log show what the lake holds."""
    counts = small_lake.build(lake)
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Total ingested records"] == "12" and shown["Bronze"] == "12"
    assert shown["Silver ticks"] == str(counts["silver"])
    assert shown["Rejected"] == "1" and shown["Duplicates"] == "1" and shown["Reconciled"] == "yes"
    assert shown["Late"] == "0"
    assert shown["Last ingestion (UTC)"] == "2026-11-21 09:11:00"
    assert shown["Ingestion health"] == "stalled"  # the fixture was ingested days ago
    quarantine = at.dataframe[0].value
    assert sorted(quarantine["reason"]) == ["duplicate_tick_id", "not_json"]
    assert at.selectbox[0].value == "AAA"


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
    """With a registered, promoted model for AAA: the backtest table lists the LSTM and the
    three baselines with their skill, and the caption names the champion and coverage."""
    from datetime import UTC, datetime

    from analytics.registry import Registry
    from tests.model_registry import register_constant_model

    small_lake.build(lake)
    register_constant_model(lake, "AAA", "v1", 0.04)
    assert Registry(lake).consider("AAA", "v1", datetime.now(UTC))[0]
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    backtest = next(d.value for d in at.dataframe if "skill" in d.value.columns)
    assert list(backtest["model"]) == ["lstm", "naive", "sma", "linear"]
    assert list(backtest["skill"]) == [0.04, 0.0, 0.0, 0.0]
    caption = " ".join(c.value for c in at.caption)
    assert "champion v1" in caption and "coverage 80.0%" in caption
