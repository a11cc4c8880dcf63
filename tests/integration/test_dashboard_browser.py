"""The dashboard in a real browser (Debian chromium driven by Playwright): every page."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from config.settings import Settings
from tests import small_lake
from tests.conftest import free_port
from ticklake.processes import stop_pid
from ticklake.services import wait_for_dashboard
from visualization.plotlyjs import BUNDLE_URL
from visualization.server import dashboard_command

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SCRIPT_IDLE = """document.querySelector('[data-testid="stApp"]')
  ?.getAttribute('data-test-script-state') === 'notRunning'"""
IDLE = "() => " + SCRIPT_IDLE
DONE = """([title, bars]) => {
  if (!(""" + SCRIPT_IDLE + """)) return false;
  if (![...document.querySelectorAll('h1')].some(h => h.innerText.trim() === title)) return false;
  if (!bars) return true;
  const plot = document.querySelector('.js-plotly-plot');
  return !!(plot && plot._fullData && plot.layout.title.text.includes(bars + ' bars'));
}"""
TRACES = """() => Object.fromEntries(document.querySelector('.js-plotly-plot')._fullData
  .map(t => [t.name, (t.x || []).length]))"""

PAPER = """(colors) => colors.includes((document.querySelector('.js-plotly-plot')
  ?._fullLayout?.paper_bgcolor || '').replace(/ /g, ''))"""
LIGHT_PAPER = ["white", "rgb(255,255,255)", "#fff", "#ffffff"]  # plotly_white says "white"
LAG_ROWS = """() => document.querySelectorAll('[data-testid="stTable"] tbody tr').length"""
SHOWS = "(needles) => needles.every(n => document.body.innerText.includes(n))"


def choose(page: Page, radio: str, option: str) -> None:
    """Click ``option`` of the radio labelled ``radio`` once the app's script has finished:
    while a rerun is in flight Streamlit keeps the stale copy of an element beside the new one,
    so the option's text can match twice (a CI run on 2026-12-03)."""
    page.wait_for_function(IDLE, timeout=60_000)
    page.locator('[data-testid="stRadio"]').filter(has_text=radio) \
        .get_by_text(option, exact=True).click()


def body_once_shown(page: Page, *needles: str) -> str:
    """The page's text once it shows every one of ``needles``: a page's script writes its
    elements one by one (the Pipeline page's lag table only after the broker probe times out),
    so a read straight after the title appears can miss the last ones (CI run of 00cd981)."""
    page.wait_for_function(SHOWS, arg=list(needles), timeout=60_000)
    return page.inner_text("body")


def test_every_page_in_chromium(lake: Path, tmp_path: Path, monkeypatch) -> None:
    """Markets: the candlestick trace has the 30 bars of the default range, the SMA 7 overlay,
    two anomaly marks and the forecasts of both horizons; the theme flips the chart to dark.
    Pipeline: health, and the lag table has one row per partition. Data quality: reconciled.
    Models: the serving version's champion. A screenshot of each page is written."""
    assert os.path.exists(CHROMIUM), "chromium is missing: run `make test` (it installs it)"
    from playwright.sync_api import sync_playwright

    from analytics.registry import Registry
    from tests.model_registry import register_model

    small_lake.build(lake)
    register_model(lake, "AAA", "v1", {1: "lstm", 5: "naive"})
    Registry(lake).consider("AAA", "v1", datetime.now(UTC))
    monkeypatch.setenv("TICKLAKE_TOPIC", "t")
    monkeypatch.setenv("TICKLAKE_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    settings = Settings(lake_dir=lake, dashboard_port=free_port())
    log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(dashboard_command(settings), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{settings.dashboard_port}"
    try:
        assert wait_for_dashboard(settings), "streamlit did not come up"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1400})
                scripts: list[str] = []
                page.on("requestfinished", lambda r: scripts.append(r.url)
                        if r.resource_type == "script" else None)
                page.goto(base)
                page.wait_for_function(DONE, arg=["Markets", "1d"], timeout=90_000)
                traces = page.evaluate(TRACES)
                page.screenshot(path=str(tmp_path / "markets.png"), full_page=True)
                choose(page, "Theme", "dark")
                page.wait_for_function(PAPER, arg=["rgb(17,17,17)"], timeout=60_000)
                choose(page, "Theme", "light")
                page.wait_for_function(PAPER, arg=LIGHT_PAPER, timeout=60_000)
                choose(page, "Interval", "1h")
                page.get_by_text("No 1h bars for AAA yet").wait_for(timeout=60_000)

                page.goto(f"{base}/pipeline")
                page.wait_for_function(DONE, arg=["Pipeline", None], timeout=90_000)
                pipeline_text = body_once_shown(page, "Kafka: topic t, per partition",
                                                "total lag")  # the caption under the lag table
                # the rows, once drawn: a rerun in flight can hold the caption and no table
                # yet (a run on 2026-12-04)
                page.wait_for_function(LAG_ROWS, timeout=60_000)
                lag_rows = page.evaluate(LAG_ROWS)
                page.screenshot(path=str(tmp_path / "pipeline.png"), full_page=True)

                page.goto(f"{base}/quality")
                page.wait_for_function(DONE, arg=["Data quality", None], timeout=90_000)
                quality_text = body_once_shown(page, "Reconciled", "not_json")
                page.screenshot(path=str(tmp_path / "quality.png"), full_page=True)

                page.goto(f"{base}/models")
                page.wait_for_function(DONE, arg=["Models", None], timeout=90_000)
                models_text = body_once_shown(page, "champion lstm", "v1 (serving)")
                page.screenshot(path=str(tmp_path / "models.png"), full_page=True)
            finally:
                browser.close()
    finally:
        stop_pid(server.pid)
        log.close()
    # the charts are drawn by plotly.js' finance bundle, never Streamlit's full Plotly chunk
    assert f"{base}/{BUNDLE_URL}" in scripts
    assert not [u for u in scripts if "PlotlyChart" in u], "a chart fell back to st.plotly_chart"
    assert traces["OHLC"] == small_lake.BARS and traces["volume"] == small_lake.BARS
    assert traces["sma_7"] == small_lake.BARS
    assert traces["anomaly"] == len(small_lake.ANOMALY_DAYS)
    assert traces["h=1 lstm"] == 1 and traces["h=5 naive"] == 1
    assert lag_rows == len(small_lake.PROCESSED)
    assert "Ingestion health" in pipeline_text and "stalled" in pipeline_text
    assert "Reconciled" in quality_text and "not_json" in quality_text
    assert "champion lstm" in models_text and "v1 (serving)" in models_text
    for name in ("markets", "pipeline", "quality", "models"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
