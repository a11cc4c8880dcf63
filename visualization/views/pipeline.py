"""Pipeline: ingest freshness, each job's newest micro-batch, Kafka lag per partition, broker
state, files and versions per table."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from config.settings import Settings
from pipeline import monitoring
from storage.facts import lake_status
from visualization import charts, data, plot
from visualization.common import Context, live, table


@st.cache_data(ttl=5, show_spinner=False)
def _broker(bootstrap: str, topic: str, _settings: Settings) -> tuple[dict[int, int] | None, str]:
    return monitoring.broker_end_offsets(_settings)


def render(ctx: Context) -> None:
    st.title("Pipeline")
    status = lake_status(ctx.lake)
    recon = status["reconciliation"]
    last = (datetime.fromisoformat(status["last_ingest_time"]) if status["last_ingest_time"]
            else None)
    s = ctx.settings
    health = data.ingestion_health(last, ctx.now, s.healthy_ingest_age_s, s.stalled_ingest_age_s)
    cols = st.columns([3, 2, 2, 2])
    cols[0].metric("Last ingestion (UTC)", f"{last:%Y-%m-%d %H:%M:%S}" if last else "never")
    cols[1].metric("Ingestion health", health,
                   help=f"healthy: newest Bronze row <= {s.healthy_ingest_age_s:g} s old; late: "
                        f"<= {s.stalled_ingest_age_s:g} s; stalled beyond")
    cols[2].metric("Total ingested records", f"{recon['bronze']:,}")
    cols[3].metric("Silver ticks", f"{recon['silver']:,}")
    st.caption(f"health thresholds: healthy <= {s.healthy_ingest_age_s:g} s, late <= "
               f"{s.stalled_ingest_age_s:g} s, stalled beyond · clock {ctx.now:%Y-%m-%d %H:%M:%S}"
               " UTC")

    st.subheader("Streaming jobs: newest micro-batch")
    jobs = data.job_table(ctx.lake, ctx.now)
    if jobs.empty:
        st.info("No micro-batch recorded yet (<lake>/_progress).")
    else:
        table(jobs)
        history = data.batch_history(ctx.lake)
        plot.show(charts.batches_figure(history, ctx.theme), key="batches")

    st.subheader("Tables")
    facts = pd.DataFrame([{"table": name, **(t or {"rows": None, "version": None,
                                                   "files": None})}
                          for name, t in status["tables"].items()])
    table(facts)

    st.subheader(f"Kafka: topic {s.topic}, per partition")
    ends, broker = _broker(s.bootstrap_servers, s.topic, s)  # last: may wait for a timeout
    st.metric("Broker", "up" if broker == "up" else "unreachable",
              help=f"{s.bootstrap_servers}: {broker}")
    lag = monitoring.lag_table(ends, monitoring.processed_offsets(ctx.lake, s.topic))
    if lag.empty:
        st.info(f"Broker {broker}; no partition known yet.")
    else:
        st.table(lag.set_index("partition"))  # static HTML: a handful of rows
        known = lag["lag"].dropna()
        st.caption(f"broker {broker} · processed = next offset Bronze reads (its newest "
                   f"micro-batch) · total lag {int(known.sum()) if len(known) else 'unknown'}")


live(render)
