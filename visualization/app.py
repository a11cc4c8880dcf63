"""ticklake dashboard: ingestion health, data quality, bars and forecasts.

Run with ``ticklake dashboard`` or ``streamlit run visualization/app.py -- --lake DIR``.
Reads the Delta tables with delta-rs; never starts Spark.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from analytics.realised import realised_summary
from analytics.registry import Registry
from config.settings import load_settings
from config.tables import BRONZE_TICKS
from storage.delta import read_table
from storage.facts import lake_status
from visualization import data

st.set_page_config(page_title="ticklake", layout="wide")


def _lake_dir() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--lake", type=Path)
    args, _ = parser.parse_known_args()
    return args.lake or load_settings().lake_dir


settings = load_settings()
lake = _lake_dir()
st.title("ticklake")
# The clock: the wall clock, unless a test injected one as st.session_state["now"] (UTC).
now: datetime = st.session_state.get("now") or datetime.now(UTC)
st.caption(f"lake: {Path(lake).resolve()} · refreshed {now:%Y-%m-%d %H:%M:%S} UTC")
if st.button("Refresh"):
    st.rerun()

status = lake_status(lake)
recon = status["reconciliation"]
last = datetime.fromisoformat(status["last_ingest_time"]) if status["last_ingest_time"] else None
health = data.ingestion_health(last, now, settings.healthy_ingest_age_s,
                               settings.stalled_ingest_age_s)

st.header("Ingestion health")
cols = st.columns([3, 2, 2, 2])
cols[0].metric("Last ingestion (UTC)", f"{last:%Y-%m-%d %H:%M:%S}" if last else "never")
cols[1].metric("Total ingested records", f"{recon['bronze']:,}")
cols[2].metric("Ingestion health", health)
cols[3].metric("Silver ticks", f"{recon['silver']:,}")
ingest = read_table(BRONZE_TICKS, lake, ["ingest_time"]).to_pandas()["ingest_time"]
per_day = data.ingestion_per_day(ingest)
st.subheader("Ingestion volume per day")
if per_day.empty:
    st.info("No records ingested yet.")
else:
    st.altair_chart(
        alt.Chart(per_day.assign(day=per_day["day"].astype(str))).mark_bar().encode(
            x=alt.X("day:O", title="ingest day (UTC)"), y=alt.Y("records:Q", title="records")),
        use_container_width=True,
    )

st.header("Data quality")
quality = st.columns(5)
quality[0].metric("Bronze", f"{recon['bronze']:,}")
quality[1].metric("Rejected", f"{recon['rejected']:,}", help="all quarantine reasons but duplicates")
quality[2].metric("Late", f"{recon['by_reason'].get('late', 0):,}",
               help="ticks behind their ticker's event-time watermark (part of Rejected)")
quality[3].metric("Duplicates", f"{recon['duplicates']:,}")
quality[4].metric("Reconciled", "yes" if recon["balanced"] else "NO",
               help="bronze = silver + rejected + duplicates")
if recon["by_reason"]:
    reasons = pd.DataFrame({"reason": list(recon["by_reason"]),
                            "records": list(recon["by_reason"].values())})
    st.altair_chart(alt.Chart(reasons).mark_bar().encode(x="records:Q", y="reason:N"),
                    use_container_width=True)
st.subheader("Quarantine log")
st.dataframe(data.quarantine_log(lake), use_container_width=True, hide_index=True)

st.header("Latest rows")
st.subheader("Bronze")
st.dataframe(data.latest_bronze(lake), use_container_width=True, hide_index=True)
bars = data.bars(lake)
st.subheader("Gold: daily bars")
st.dataframe(bars.sort_values("updated_at", ascending=False).head(20),
             use_container_width=True, hide_index=True)

st.header("Prices and forecasts")
preds = data.predictions(lake)
tickers = sorted(bars["ticker"].unique())
if not tickers:
    st.info("No Gold bars yet.")
else:
    ticker = st.selectbox("Ticker", tickers)
    chart = data.price_chart_frame(bars, preds, ticker)
    st.altair_chart(
        alt.Chart(chart).mark_line(point=True).encode(
            x=alt.X("date:T", title="date (UTC)"),
            y=alt.Y("price:Q", title="price", scale=alt.Scale(zero=False)),
            color="series:N",
        ),
        use_container_width=True,
    )
    flags = data.anomalies(lake, ticker)
    st.caption(f"{len(flags)} anomalies (|z| > 3 over the previous 30 days) for {ticker}")
    if not flags.empty:
        st.dataframe(flags.head(20), use_container_width=True, hide_index=True)
    registry = Registry(lake)
    meta = registry.latest(ticker)
    if meta and meta.get("horizons"):
        horizon = st.radio("Horizon (trading days ahead)", list(meta["horizons"]),
                           horizontal=True)
        entry = meta["horizons"][horizon]
        champion = entry["champion"]
        st.subheader(f"{ticker}: walk-forward backtest, {horizon} day(s) ahead")
        st.dataframe(data.backtest_table(meta, horizon), hide_index=True)
        serving = registry.champion(ticker)
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
            st.image(str(plot))
        realised = realised_summary(lake).get(ticker, {}).get(horizon)
        if realised:
            st.caption(f"realised: {realised['forecasts']} forecasts, MAE model "
                       f"{realised['mae_model']:.4f} vs naive {realised['mae_naive']:.4f}, "
                       f"coverage {realised['coverage_80']:.0%}")
    else:
        st.info(f"No model for {ticker} yet (ticklake train).")
