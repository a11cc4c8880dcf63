"""ticklake dashboard: markets, pipeline health, data quality and models, on four pages.

Run with ``ticklake dashboard`` or ``streamlit run visualization/app.py -- --lake DIR``.
Reads the Delta tables with delta-rs (filters pushed into the scan, reads cached on the
table's Delta version); never starts Spark. The sidebar holds the auto-refresh (every
``TICKLAKE_DASHBOARD_REFRESH_S`` seconds, with a pause toggle) and the light/dark theme.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from config.location import table_uri
from visualization import plot
from visualization.common import context

VIEWS = Path(__file__).resolve().parent / "views"
PAGES = [
    st.Page(VIEWS / "markets.py", title="Markets", icon=":material/candlestick_chart:",
            default=True),
    st.Page(VIEWS / "pipeline.py", title="Pipeline", icon=":material/monitor_heart:"),
    st.Page(VIEWS / "quality.py", title="Data quality", icon=":material/fact_check:"),
    st.Page(VIEWS / "models.py", title="Models", icon=":material/model_training:"),
]
# Streamlit's theme is fixed when the server starts; the dark toggle restyles the page and
# switches the charts to Plotly's dark template.
DARK_CSS = """<style>
.stApp, [data-testid="stSidebar"], [data-testid="stHeader"] {background-color: #0e1117;
 color: #fafafa;}
.stApp p, .stApp h1, .stApp h2, .stApp h3, .stApp label, .stApp span,
[data-testid="stMetricValue"], [data-testid="stCaptionContainer"] {color: #fafafa !important;}
</style>"""

st.set_page_config(page_title="ticklake", layout="wide")
page = st.navigation(PAGES)
with st.sidebar:
    st.toggle("Auto-refresh", value=True, key="auto_refresh",
              help="Re-read what changed every TICKLAKE_DASHBOARD_REFRESH_S seconds.")
    st.radio("Theme", ["light", "dark"], key="theme", horizontal=True)
    ctx = context()
    st.caption(f"lake: {table_uri(ctx.lake)}  \nrefresh every "
               f"{ctx.settings.dashboard_refresh_s:g} s")
    plot.preload()  # before the page's reads: the browser fetches plotly.js meanwhile
if st.session_state.get("theme") == "dark":
    st.markdown(DARK_CSS, unsafe_allow_html=True)
page.run()
