"""Models: registry versions and champions per ticker, walk-forward tables and plots, the
realised error of past forecasts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.realised import realised_errors
from analytics.registry import Registry
from config.tables import GOLD_DAILY_METRICS, GOLD_PREDICTIONS
from storage.delta import read_table
from visualization import data
from visualization.common import Context, live, table


def render(ctx: Context) -> None:
    st.title("Models")
    registry = Registry(ctx.lake)
    tickers = registry.tickers()
    if not tickers:
        st.info("No model trained yet (ticklake train).")
        return
    ticker = st.selectbox("Ticker", tickers, key="model_ticker")
    serving = registry.champion(ticker)
    versions = []
    for version in reversed(registry.versions(ticker)):
        old = registry.metadata(ticker, version)
        versions.append({
            "version": version, "created_at": old.get("created_at"),
            "format": old.get("format", 1),
            "serving": bool(serving and serving["version"] == version),
            **{f"champion h={h}": e["champion"]["model"]
               for h, e in old.get("horizons", {}).items()},
            "gold rows": old.get("data", {}).get("rows"),
            "decision": old.get("promotion", {}).get("reason"),
        })
    st.subheader(f"{ticker}: versions, newest first (champion history)")
    table(pd.DataFrame(versions))
    meta = registry.latest(ticker)
    if not meta or not meta.get("horizons"):
        st.info(f"The newest version of {ticker} is of an older format: run ticklake train.")
        return
    horizon = st.radio("Horizon (trading days ahead)", list(meta["horizons"]), horizontal=True,
                       key="model_horizon")
    entry = meta["horizons"][horizon]
    champion = entry["champion"]
    st.subheader(f"Walk-forward backtest, {horizon} day(s) ahead")
    table(data.backtest_table(meta, horizon), column_config={
        "dm_p_value": st.column_config.NumberColumn(format="%.3g"),
        "coverage_80": st.column_config.NumberColumn(format="percent")})
    state = "serving" if serving and serving["version"] == meta["version"] else "not serving"
    coverage = entry["backtest"]["overall"][champion["model"]]["coverage_80"]
    st.caption(
        f"version {meta['version']} ({state}) · champion {champion['model']}: "
        f"{champion['reason']} · its 80% interval (conformal) covered {coverage:.1%} "
        f"of {entry['backtest']['test_days']} test days · trained on "
        f"{meta['data']['gold_table']} v{meta['data']['gold_version']} · skill = 1 - "
        "RMSE / RMSE(naive); DM p = two-sided Diebold-Mariano p-value vs naive")
    plot = registry.version_dir(ticker, meta["version"]) / f"h{horizon}" / "backtest.png"
    if plot.exists():
        st.image(plot.read_bytes())
    st.subheader("Realised error of past forecasts")
    errors = realised_errors(
        read_table(GOLD_PREDICTIONS, ctx.lake).to_pandas(),
        read_table(GOLD_DAILY_METRICS, ctx.lake, ["ticker", "trading_date",
                                                  "avg_price"]).to_pandas())
    mine = errors[(errors["ticker"] == ticker) & (errors["horizon"] == int(horizon))]
    if mine.empty:
        st.info("No forecast has reached its target day in Gold yet.")
    else:
        st.caption(f"{len(mine)} forecasts · MAE model {mine['error'].abs().mean():.4f} vs naive "
                   f"{mine['naive_error'].abs().mean():.4f} · 80% interval coverage "
                   f"{mine['inside_80'].mean():.0%}")
        table(mine)


live(render)
