"""Dashboard render time in a real browser (chromium via Playwright) over a big lake.

    .venv/bin/python bench/dashboard.py                 # builds a lake of 1,000,000 1m bars
    .venv/bin/python bench/dashboard.py --lake ./lake   # or measures an existing lake
    .venv/bin/python bench/dashboard.py --screenshots docs/   # and saves a PNG per page

The built lake has 5 tickers x 200,000 one-minute bars (random walks, 24/7 minutes from
2024-01-01), their 1h and 1d rollups, and the 1d indicators the pipeline would compute
(SMA/EMA/Bollinger/RSI/MACD, pipeline.indicators). It times navigation -> the page drawn
(:data:`DONE`): ``--new-browsers`` times a new browser on a fresh server (Streamlit's
frontend fetched and compiled), alternating the dashboard as served (charts drawn with
plotly.js' finance bundle, :mod:`visualization.plot`) with the same server run without static
serving, whose charts fall back to ``st.plotly_chart`` (Streamlit's full Plotly chunk), and
prints their ratio; then, in a browser that has loaded the dashboard once, after a server
restart, ``--repeat`` + 1 visits per page: the first reads the tables (the server's caches are
cold, the first page also runs first in the new process), later ones read only what has a new
Delta version. On Markets it also times switching to 1m
bars (the last day out of the 200,000 bars of a ticker). It prints the median and the maximum per
line.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np  # noqa: E402 (after common puts the project on sys.path)
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from common import ROOT, free_port

from config.settings import Settings  # noqa: E402
from config.tables import GOLD_BARS, GOLD_INDICATORS_1D  # noqa: E402
from storage.sink import DeltaSink  # noqa: E402
from ticklake.processes import stop_pid  # noqa: E402
from ticklake.services import wait_for_dashboard  # noqa: E402
from visualization.plotlyjs import BUNDLE_URL  # noqa: E402
from visualization.server import dashboard_command  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PAGES = {"markets": ("", "Markets"), "pipeline": ("pipeline", "Pipeline"),
         "quality": ("quality", "Data quality"), "models": ("models", "Models")}
DONE = """([title, bars]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (![...document.querySelectorAll('h1')].some(h => h.innerText.trim() === title)) return false;
  if (title !== 'Markets') return true;
  const plot = document.querySelector('.js-plotly-plot');
  return !!(plot && plot._fullData && plot._fullData.length > 1
            && plot.layout.title.text.includes(bars + ' bars'));
}"""
"""The page is drawn: Streamlit idle, the page's title shown, on Markets the chart plotted by
Plotly with the wanted interval's bars."""
PLOTLY_CHUNKS = ("/static/js/PlotlyChart.", "/" + BUNDLE_URL)
"""Streamlit's lazily loaded Plotly chunk (4.7 MB in Streamlit 1.67) and the finance bundle
(1.3 MB, :mod:`visualization.plotlyjs`): the new browser's lines say when the chart's
plotly.js was requested and received, counted from the navigation."""
VARIANTS = {"finance bundle": True, "st.plotly_chart": False}
"""New-browser variant -> ``server.enableStaticServing`` (off: charts via st.plotly_chart)."""


def build_lake(lake: Path, tickers: int, minutes: int) -> int:
    """Write ``tickers`` x ``minutes`` 1m bars and their rollups; return the 1m row count."""
    from pipeline.indicators import indicators_1d

    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for i in range(tickers):
        ticker = f"T{i:03d}"
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, minutes)))
        times = start + pd.to_timedelta(np.arange(minutes), unit="min")
        one = pd.DataFrame({"ticker": ticker, "window_start": times,
                            "window_end": times + pd.Timedelta(minutes=1),
                            "open": np.r_[close[0], close[:-1]], "close": close,
                            "volume": rng.integers(100, 10_000, minutes)})
        one["high"] = np.maximum(one["open"], one["close"]) * 1.0002
        one["low"] = np.minimum(one["open"], one["close"]) * 0.9998
        one["vwap"] = (one["open"] + one["close"]) / 2
        one["trade_count"] = 1
        one["avg_price"] = one["vwap"]
        frames = {"1m": one}
        for interval, rule in (("1h", "1h"), ("1d", "1D")):
            g = one.set_index("window_start").resample(rule)
            bars = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(),
                                 "low": g["low"].min(), "close": g["close"].last(),
                                 "volume": g["volume"].sum(), "vwap": g["vwap"].mean(),
                                 "trade_count": g["trade_count"].sum()}).reset_index()
            bars["ticker"], bars["avg_price"] = ticker, bars["vwap"]
            bars["window_end"] = bars["window_start"] + pd.Timedelta(rule)
            frames[interval] = bars
        for interval, frame in frames.items():
            table = GOLD_BARS[interval]
            for name in table.schema.names:
                if name not in frame:
                    frame[name] = None
            DeltaSink(table, lake, "bench").append(
                pa.Table.from_pandas(frame[table.schema.names], schema=table.schema,
                                     preserve_index=False), None)
        daily = indicators_1d(frames["1d"][["ticker", "window_start", "close", "volume"]])
        for name in GOLD_INDICATORS_1D.schema.names:
            if name not in daily:
                daily[name] = None
        DeltaSink(GOLD_INDICATORS_1D, lake, "bench").append(
            pa.Table.from_pandas(daily[GOLD_INDICATORS_1D.schema.names],
                                 schema=GOLD_INDICATORS_1D.schema, preserve_index=False), None)
    return tickers * minutes


def start_server(settings: Settings, static: bool = True) -> subprocess.Popen[bytes]:
    """A fresh dashboard process (no module loaded, no read cached); exits if it does not
    come up. ``static=False``: without static serving (charts via st.plotly_chart)."""
    command = dashboard_command(settings)
    command[command.index("--server.enableStaticServing") + 1] = str(static).lower()
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    if not wait_for_dashboard(settings):
        stop_pid(server.pid)
        sys.exit("the dashboard did not come up")
    return server


def visit(page: Any, port: int, path: str, title: str, bars: str = "1d") -> float:
    """Seconds from navigation to the page drawn (:data:`DONE`)."""
    started = time.perf_counter()
    page.goto(f"http://127.0.0.1:{port}/{path}")
    page.wait_for_function(DONE, arg=[title, bars], timeout=120_000, polling=20)
    return time.perf_counter() - started


def new_browser(pw: Any, settings: Settings, static: bool) -> dict[str, float]:
    """One new browser (an empty profile: nothing cached) on a fresh server: seconds from the
    navigation to Streamlit's frontend up, to the chart's plotly.js requested and received,
    and to the Markets page drawn."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    server = start_server(settings, static)
    times: dict[str, float] = {}
    started = 0.0  # set at the navigation below

    def chunk(event: str) -> Any:
        def seen(request: Any) -> None:
            if any(c in request.url for c in PLOTLY_CHUNKS):
                times.setdefault(f"plotly.js {event}", time.perf_counter() - started)
        return seen

    page.on("request", chunk("requested"))
    page.on("requestfinished", chunk("received"))
    try:
        started = time.perf_counter()
        page.goto(f"http://127.0.0.1:{settings.dashboard_port}/", wait_until="commit")
        page.wait_for_selector('[data-testid="stApp"]', timeout=120_000)
        times["frontend up"] = time.perf_counter() - started
        page.wait_for_function(DONE, arg=["Markets", "1d"], timeout=120_000, polling=20)
        times["markets drawn"] = time.perf_counter() - started
    finally:
        stop_pid(server.pid)
        browser.close()
    return times


def measure(settings: Settings, repeat: int, new_browsers: int,
            screenshots: Path | None) -> dict[str, list[float]]:
    """Time the pages in Chromium. First ``new_browsers`` new browsers per variant
    (:data:`VARIANTS`, alternating; nothing cached: Streamlit's frontend, ~26 MB of
    JavaScript, and the chart's plotly.js are fetched and compiled), each on a fresh server;
    then one browser loads the dashboard once and, on a second fresh server (a restart:
    nothing loaded, nothing cached on the server; the browser keeps the frontend and plotly.js
    in its cache), times each page's first visit and ``repeat`` more."""
    from playwright.sync_api import sync_playwright

    port = settings.dashboard_port
    times: dict[str, list[float]] = {}
    with sync_playwright() as pw:
        for _ in range(new_browsers):
            for variant, static in VARIANTS.items():
                for event, seconds in new_browser(pw, settings, static).items():
                    times.setdefault(f"new browser, {variant}: {event}", []).append(seconds)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        server = start_server(settings)  # this browser loads the frontend and plotly.js once
        try:
            visit(page, port, "", "Markets")
        finally:
            stop_pid(server.pid)
        server = start_server(settings)  # the restart: nothing loaded or cached on the server
        try:
            for name, (path, title) in PAGES.items():
                for attempt in range(repeat + 1):  # the first visit reads the tables
                    key = name if attempt else f"{name} (first visit)"
                    times.setdefault(key, []).append(visit(page, port, path, title))
                if screenshots:
                    page.screenshot(path=str(screenshots / f"dashboard-{name}.png"),
                                    full_page=True)
            visit(page, port, "", "Markets")
            for attempt in range(repeat + 1):
                started = time.perf_counter()
                page.get_by_text("1m", exact=True).click()
                page.wait_for_function(DONE, arg=["Markets", "1m"], timeout=120_000,
                                       polling=20)
                key = "markets: switch to 1m" + ("" if attempt else " (first)")
                times.setdefault(key, []).append(time.perf_counter() - started)
                page.get_by_text("1d", exact=True).click()
                page.wait_for_function(DONE, arg=["Markets", "1d"], timeout=120_000,
                                       polling=20)
        finally:
            stop_pid(server.pid)
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, help="measure this lake instead of building one")
    parser.add_argument("--tickers", type=int, default=5)
    parser.add_argument("--minutes", type=int, default=200_000,
                        help="1m bars per ticker in the built lake")
    parser.add_argument("--repeat", type=int, default=3, help="timed visits per page")
    parser.add_argument("--new-browsers", type=int, default=3,
                        help="new browsers per variant (finance bundle / st.plotly_chart)")
    parser.add_argument("--screenshots", type=Path, help="save dashboard-<page>.png here")
    args = parser.parse_args()
    lake = args.lake
    if lake is None:
        built = tempfile.TemporaryDirectory(prefix="ticklake-dashboard-")
        lake = Path(built.name) / "lake"
        started = time.perf_counter()
        rows = build_lake(lake, args.tickers, args.minutes)
        print(f"built {lake}: {rows:,} gold/bars_1m rows in {time.perf_counter() - started:.1f} s",
              flush=True)
    settings = Settings(lake_dir=lake, dashboard_port=free_port(),
                        bootstrap_servers=f"127.0.0.1:{free_port()}")
    times = measure(settings, args.repeat, args.new_browsers, args.screenshots)
    print(f"render time after navigation, {args.repeat} visits each after a first one "
          "(target <= 2 s; the new browser's line fetches and compiles Streamlit's frontend):")
    for name, values in times.items():
        print(f"  {name:48s} median {statistics.median(values):.2f} s, max {max(values):.2f} s")
    drawn = {v: times.get(f"new browser, {v}: markets drawn") for v in VARIANTS}
    if all(drawn.values()):
        ours, reference = (statistics.median(drawn[v] or []) for v in VARIANTS)
        print(f"new browser's Markets page, finance bundle / st.plotly_chart: "
              f"{ours / reference:.2f} (medians {ours:.2f} s / {reference:.2f} s over "
              f"{args.new_browsers} each, alternating)")


if __name__ == "__main__":
    main()
