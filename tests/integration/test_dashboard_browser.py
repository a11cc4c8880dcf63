"""The dashboard in a real browser (Debian chromium driven by Playwright)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from config.settings import Settings
from tests import small_lake
from tests.conftest import free_port
from ticklake.processes import stop_pid
from ticklake.services import wait_for_dashboard
from visualization.server import dashboard_command

pytestmark = [pytest.mark.integration]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def test_dashboard_renders_metrics_and_charts(lake: Path, tmp_path: Path) -> None:
    """Served by Streamlit and opened in chromium, the page shows the lake's counts, the
    charts and the quarantine log."""
    assert os.path.exists(CHROMIUM), "chromium is missing: run `make test` (it installs it)"
    from playwright.sync_api import sync_playwright

    small_lake.build(lake)
    settings = Settings(lake_dir=lake, dashboard_port=free_port())
    log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(dashboard_command(settings), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        assert wait_for_dashboard(settings), "streamlit did not come up"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 2600})
                page.goto(f"http://127.0.0.1:{settings.dashboard_port}")
                page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
                # the three charts (ingestion per day, quarantine reasons, price + forecast)
                # and the quarantine log: wait for the elements, not for a fixed time
                page.wait_for_function(
                    "document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] canvas, "
                    "[data-testid=\"stVegaLiteChart\"] svg').length >= 3", timeout=60_000)
                page.get_by_text("Quarantine log").wait_for(timeout=60_000)
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                text = page.inner_text("body")
                charts = page.locator('[data-testid="stVegaLiteChart"]').count()
            finally:
                browser.close()
    finally:
        stop_pid(server.pid)
        log.close()
    assert "Total ingested records" in text and "Ingestion health" in text
    assert "stalled" in text and "Quarantine log" in text
    metrics = text.split("Total ingested records", 1)[1].split("\n")
    assert "12" in [m.strip() for m in metrics[:3]]
    assert charts >= 3  # ingestion per day, quarantine reasons, price + forecast
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
