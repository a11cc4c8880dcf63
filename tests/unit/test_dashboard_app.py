"""The Streamlit dashboard's four pages, run headless with AppTest against a small lake."""

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from tests import small_lake
from tests.conftest import free_port
from visualization import plot, plotlyjs

APP = Path(__file__).resolve().parents[2] / "visualization" / "app.py"
LAST_INGEST = datetime(2026, 11, 21, 9, 11, tzinfo=UTC)
"""The newest ingest_time of tests/small_lake.py."""


@pytest.fixture
def app(lake: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> AppTest:
    """The app over ``lake`` (topic ``t`` as the small lake's, no broker listening)."""
    monkeypatch.setenv("TICKLAKE_LAKE_DIR", str(lake))
    monkeypatch.setenv("TICKLAKE_TOPIC", "t")
    monkeypatch.setenv("TICKLAKE_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    static = config.get_option("server.enableStaticServing")
    config.set_option("server.enableStaticServing", True)  # as ticklake dashboard serves it
    request.addfinalizer(lambda: config.set_option("server.enableStaticServing", static))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["auto_refresh"] = False
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def figure(at: AppTest) -> dict:
    """The page's chart as Plotly's JSON: the data of visualization.plot's component (the
    plotly.js bundle is there, as scripts/setup.sh fetches it)."""
    assert plotlyjs.installed(), "run python -m visualization.plotlyjs"
    assert not at.get("plotly_chart"), "the chart fell back to st.plotly_chart"
    charts = [e for e in at.get("bidi_component")
              if e.proto.component_name == plot.COMPONENT]  # type: ignore[attr-defined]
    proto = charts[0].proto  # type: ignore[attr-defined]
    data = json.loads(proto.json if proto.WhichOneof("data") == "json" else proto.mixed.json)
    assert data["bundle"] == plotlyjs.BUNDLE_URL
    return json.loads(data["figure"])


def values(v: object) -> list:
    """A trace's data as a list: Plotly sends NumPy arrays as base64 typed arrays."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)  # type: ignore[call-overload]


def test_markets_draws_the_range_with_overlays_anomalies_and_forecasts(
        lake: Path, app: AppTest) -> None:
    """1d bars of AAA: all 30 candlesticks in the default range (a year back from the last
    bar), the SMA 7 overlay, two anomaly marks at the bars' highs, the forecasts of both
    horizons with their intervals; RSI adds its panel; a narrower range shows fewer bars."""
    small_lake.build(lake)
    app.run()
    assert not app.exception
    assert app.selectbox(key="ticker").value == "AAA"
    traces = {t["name"]: t for t in figure(app)["data"]}
    assert len(values(traces["OHLC"]["x"])) == small_lake.BARS
    assert values(traces["sma_7"]["y"])[:2] == [7.5, 8.5]
    marks = traces["anomaly"]
    assert len(values(marks["x"])) == len(small_lake.ANOMALY_DAYS)
    assert sorted(values(marks["y"])) == pytest.approx(
        [(11.0 + d) * 1.01 for d in small_lake.ANOMALY_DAYS])
    assert values(traces["h=1 lstm"]["y"]) == [41.0]
    assert values(traces["h=1 lstm"]["error_y"]["array"]) == [1.0]
    assert values(traces["h=5 naive"]["y"]) == [40.0]
    forecasts = next(d.value for d in app.dataframe if "target_date" in d.value.columns)
    assert list(forecasts["horizon"]) == [1, 5] and list(forecasts["model"]) == ["lstm", "naive"]
    app.radio(key="panel_1d").set_value("RSI").run()
    assert "RSI 14" in {t["name"] for t in figure(app)["data"]}
    app.date_input(key="range_AAA_1d").set_value(
        (date(2012, 1, 10), date(2012, 1, 19))).run()
    assert len(values(next(t for t in figure(app)["data"] if t["name"] == "OHLC")["x"])) == 10


def test_without_static_serving_the_chart_falls_back_to_st_plotly_chart(
        lake: Path, app: AppTest) -> None:
    """A server run without --server.enableStaticServing cannot serve the finance bundle: the
    same figure goes to st.plotly_chart, and no component is mounted."""
    small_lake.build(lake)
    config.set_option("server.enableStaticServing", False)  # the fixture restores it
    app.run()
    assert not app.exception
    assert not [e for e in app.get("bidi_component")
                if e.proto.component_name == plot.COMPONENT]  # type: ignore[attr-defined]
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)  # type: ignore[attr-defined]
    ohlc = next(t for t in spec["data"] if t["name"] == "OHLC")
    assert len(values(ohlc["x"])) == small_lake.BARS


def test_the_theme_switches_the_chart_template(lake: Path, app: AppTest) -> None:
    small_lake.build(lake)
    app.run()
    light = figure(app)["layout"]["template"]["layout"]["paper_bgcolor"]
    app.radio(key="theme").set_value("dark").run()
    dark = figure(app)["layout"]["template"]["layout"]["paper_bgcolor"]
    assert light != dark and dark.lower() in ("rgb(17,17,17)", "#111111")


@pytest.mark.parametrize(("age_s", "health"), [(30, "healthy"), (120, "late"), (601, "stalled")])
def test_pipeline_health_follows_the_clock_and_lag_has_a_row_per_partition(
        lake: Path, app: AppTest, age_s: int, health: str) -> None:
    """With the clock injected 30 s / 2 min / 601 s after the last ingestion, health is
    healthy / late / stalled (thresholds 60 s and 600 s); with no broker, the lag table still
    lists each partition Bronze has read, with its processed offset."""
    small_lake.build(lake)
    app.session_state["now"] = LAST_INGEST + timedelta(seconds=age_s)
    app.switch_page("views/pipeline.py").run()
    assert not app.exception
    shown = metrics(app)
    assert shown["Ingestion health"] == health and shown["Broker"] == "unreachable"
    assert shown["Total ingested records"] == "12"
    assert shown["Last ingestion (UTC)"] == "2026-11-21 09:11:00"
    lag = app.table[0].value
    assert list(lag.index) == [0, 1, 2, 3]
    assert list(lag["processed_offset"]) == [int(v) for v in small_lake.PROCESSED.values()]
    jobs = next(d.value for d in app.dataframe if "rows_per_s" in d.value.columns)
    assert list(jobs["job"]) == ["bronze"] and jobs["rows_per_s"].iloc[0] == 240.0


def test_quality_reconciles_and_shows_each_reasons_raw_record(lake: Path, app: AppTest) -> None:
    small_lake.build(lake)
    app.switch_page("views/quality.py").run()
    assert not app.exception
    shown = metrics(app)
    assert shown["Bronze"] == "12" and shown["Rejected"] == "1" and shown["Duplicates"] == "1"
    assert shown["Reconciled"] == "yes" and shown["Late"] == "0"
    samples = app.dataframe[0].value
    assert dict(zip(samples["reason"], samples["raw_value"], strict=True)) == {
        "duplicate_tick_id": "{}", "not_json": "garbage"}


def test_models_shows_the_backtest_and_the_champion_per_horizon(
        lake: Path, app: AppTest) -> None:
    """With a serving version for AAA: the backtest table lists the LSTM and the three
    baselines with skill, coverage and DM p-value per horizon; the caption names the champion
    and its coverage; switching the horizon shows that horizon's champion."""
    from analytics.registry import Registry
    from tests.model_registry import register_model

    small_lake.build(lake)
    register_model(lake, "AAA", "v1", {1: "lstm", 5: "linear"})
    assert Registry(lake).consider("AAA", "v1", datetime.now(UTC))[0]
    app.switch_page("views/models.py").run()
    assert not app.exception
    versions = app.dataframe[0].value
    assert list(versions["version"]) == ["v1"] and versions["serving"].iloc[0]
    backtest = next(d.value for d in app.dataframe if "skill" in d.value.columns)
    assert list(backtest["model"]) == ["lstm", "naive", "sma", "linear"]
    assert list(backtest["skill"]) == [0.01, 0.0, 0.03, 0.04]
    assert list(backtest["champion"]) == [True, False, False, False]
    assert backtest["dm_p_value"].iloc[0] == 0.04 and pd.isna(backtest["dm_p_value"].iloc[1])
    caption = " ".join(c.value for c in app.caption)
    assert "v1 (serving)" in caption and "champion lstm" in caption and "covered 79.0%" in caption
    app.radio(key="model_horizon").set_value("5").run()
    caption = " ".join(c.value for c in app.caption)
    assert "champion linear" in caption and "covered 82.0%" in caption


def test_an_empty_lake_says_so_on_every_page(lake: Path, app: AppTest) -> None:
    app.run()
    assert not app.exception and any("No Gold bars yet" in i.value for i in app.info)
    app.switch_page("views/pipeline.py").run()
    assert not app.exception and metrics(app)["Ingestion health"] == "no data"
    app.switch_page("views/quality.py").run()
    assert not app.exception and any("Nothing quarantined" in s.value for s in app.success)
    app.switch_page("views/models.py").run()
    assert not app.exception and any("No model trained" in i.value for i in app.info)
