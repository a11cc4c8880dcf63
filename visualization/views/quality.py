"""Data quality: reconciliation, quarantine by reason over time, a decoded sample per reason."""

from __future__ import annotations

import streamlit as st

from config.tables import SILVER_QUARANTINE
from storage.facts import lake_status
from visualization import charts, plot
from visualization.common import Context, cached, live, table


def render(ctx: Context) -> None:
    st.title("Data quality")
    recon = lake_status(ctx.lake)["reconciliation"]
    quality = st.columns(6)
    quality[0].metric("Bronze", f"{recon['bronze']:,}")
    quality[1].metric("Silver", f"{recon['silver']:,}")
    quality[2].metric("Rejected", f"{recon['rejected']:,}",
                      help="all quarantine reasons but duplicates")
    quality[3].metric("Late", f"{recon['by_reason'].get('late', 0):,}",
                      help="ticks behind their ticker's event-time watermark (part of Rejected)")
    quality[4].metric("Duplicates", f"{recon['duplicates']:,}")
    quality[5].metric("Reconciled", "yes" if recon["balanced"] else "NO",
                      help="bronze = silver + rejected + duplicates")
    by_day = cached("quarantine_by_day", ctx, (SILVER_QUARANTINE,))
    if by_day.empty:
        st.success("Nothing quarantined.")
        return
    st.subheader("Quarantined records per day and reason")
    plot.show(charts.quarantine_figure(by_day, ctx.theme), key="quarantine")
    st.subheader("Newest records of each reason (raw value decoded)")
    table(cached("quarantine_samples", ctx, (SILVER_QUARANTINE,)))


live(render)
