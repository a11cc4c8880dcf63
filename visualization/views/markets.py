"""Markets: candlesticks with volume, overlays, RSI/MACD, anomaly marks and forecasts."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from analytics.registry import Registry
from config.instruments import asset_class, currency
from config.tables import (
    GOLD_ANOMALIES,
    GOLD_BARS_1D,
    GOLD_PREDICTIONS,
    bar_interval_seconds,
    bar_table,
    bar_tables,
)
from visualization import charts, plot
from visualization.common import Context, cached, live, table
from visualization.data import INDICATORS

# How much history a chart shows at first, per interval (ending at the ticker's last bar):
# one day of 1m bars (1,440 candles for a 24/7 market; two days are slow for Plotly to draw:
# docs/benchmarks.md, "Dashboard").
# Other intervals: 1,440 bars (5m: 5 days).
DEFAULT_SPAN = {"1m": timedelta(days=1), "1h": timedelta(days=30), "1d": timedelta(days=365)}


def default_span(interval: str) -> timedelta:
    """How far back a chart of ``interval`` bars starts (see :data:`DEFAULT_SPAN`)."""
    return DEFAULT_SPAN.get(interval, timedelta(seconds=1_440 * bar_interval_seconds(interval)))


def render(ctx: Context) -> None:
    st.title("Markets")
    tickers = cached("bar_tickers", ctx, (GOLD_BARS_1D,))
    if not tickers:
        st.info("No Gold bars yet: run the pipeline (ticklake up, or ticklake job gold).")
        return
    top = st.columns([2, 2, 3])
    ticker = top[0].selectbox("Ticker", tickers, key="ticker")
    intervals = list(bar_tables(ctx.settings.bar_intervals))
    interval = top[1].radio("Interval", intervals, index=intervals.index("1d"),
                            horizontal=True, key="interval")
    bars_table = bar_table(interval)
    span = cached("bar_span", ctx, (bars_table,), interval, ticker)
    if span is None:
        st.info(f"No {interval} bars for {ticker} yet.")
        return
    first, last = span
    default_start = max(first, last - default_span(interval)).date()
    picked = top[2].date_input("Date range (UTC)", (default_start, last.date()),
                               min_value=first.date(), max_value=last.date(),
                               key=f"range_{ticker}_{interval}")
    start_day, end_day = (picked if isinstance(picked, tuple) and len(picked) == 2
                          else (default_start, last.date()))
    start = pd.Timestamp(start_day, tz="UTC")
    end = pd.Timestamp(end_day, tz="UTC") + pd.Timedelta(days=1)
    indicator_table = INDICATORS.get(interval)
    options = ([o for o in charts.OVERLAYS if o != "MA 3 (1h)"] if interval == "1d"
               else ["MA 3 (1h)"] if interval == "1h" else [])
    controls = st.columns([4, 2])
    overlays = controls[0].multiselect(
        "Overlays", options, default=options[:1], key=f"overlays_{interval}",
        help="From gold/indicators_1d (1d) or gold/indicators_1h (1h); 1m bars have none.")
    panel = controls[1].radio("Panel", ["none", "RSI", "MACD"] if interval == "1d" else ["none"],
                              horizontal=True, key=f"panel_{interval}")
    bars = cached("read_bars", ctx, (bars_table,), interval, ticker, start, end)
    indicators = (cached("read_indicators", ctx, (indicator_table,), interval, ticker, start,
                         end) if indicator_table is not None else pd.DataFrame())
    anomalies = (cached("read_anomalies", ctx, (GOLD_ANOMALIES,), ticker, start, end)
                 if interval == "1d" else pd.DataFrame())
    forecasts = cached("latest_forecasts", ctx, (GOLD_PREDICTIONS,), ticker)
    fig = charts.market_figure(
        bars, indicators, overlays, None if panel == "none" else panel, anomalies,
        forecasts if interval == "1d" else None, ctx.theme,
        f"{ticker} ({asset_class(ticker)}, {currency(ticker)}) · {interval} bars · "
        f"{len(bars):,} shown", currency(ticker))
    plot.show(fig, key="market")
    st.caption(f"{len(bars):,} bars from {start_day} to {end_day} (UTC) · "
               f"{len(anomalies)} anomaly flags (|z| > 3 over the previous 30 days) · "
               "forecasts drawn on the 1d chart at their target date")
    if forecasts.empty:
        st.info(f"No forecast for {ticker} yet (ticklake train).")
        return
    registry = Registry(ctx.lake)
    rows = []
    for _, f in forecasts.iterrows():
        meta = registry.metadata(ticker, f["model_version"]) \
            if f["model_version"] in registry.versions(ticker) else {}
        entry = meta.get("horizons", {}).get(str(f["horizon"]), {})
        model = f["model"] if isinstance(f["model"], str) else "lstm"
        overall = entry.get("backtest", {}).get("overall", {}).get(model, {})
        rows.append({"horizon": f["horizon"], "model": model, "as_of": f["as_of"],
                     "target_date": f["target_date"], "forecast": f["predicted_avg_price"],
                     "lower_80": f["lower_80"], "upper_80": f["upper_80"],
                     "naive": f["naive_avg_price"], "backtest_coverage_80":
                     overall.get("coverage_80"), "dm_p_value":
                     (overall.get("dm") or {}).get("p_value")})
    st.subheader("Forecasts (the champion of each horizon)")
    table(pd.DataFrame(rows))


live(render)
