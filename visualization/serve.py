"""Serve the dashboard: load what its pages import, then hand over to ``streamlit run``.

    python -m visualization.serve visualization/app.py --server.port 8501 -- --lake ./lake

Streamlit runs the page scripts inside the server process, so a module loaded here is already
in ``sys.modules`` when the first browser connects, instead of the first page after a start
paying for the imports (pandas, pyarrow, delta-rs, Plotly). It also draws one market figure:
Plotly loads its trace and layout validators on the first figure of a process. The arguments
are those of ``streamlit run``.
"""

from __future__ import annotations

import importlib
import sys

PRELOAD = (
    "pandas", "pyarrow", "deltalake", "plotly.graph_objects", "plotly.subplots",
    "visualization.charts", "visualization.data", "visualization.plot", "analytics.registry",
    "analytics.realised", "pipeline.monitoring", "storage.facts",
)
"""Modules the pages import, loaded before the server opens its port. Not
``visualization.common``: its ``st.cache_data`` must be created under Streamlit's runtime."""


def warm_up() -> None:
    """Build and serialise one small market figure (candlesticks, volume, an overlay, an RSI
    panel, an anomaly mark and a forecast), so that Plotly has loaded the validators of the
    traces and layout properties the pages use before the first browser connects."""
    import pandas as pd

    from visualization import charts

    days = pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC")
    bars = pd.DataFrame({"window_start": days, "open": 1.0, "high": 2.0, "low": 0.5,
                         "close": 1.5, "volume": 10.0})
    indicators = pd.DataFrame({"window_start": days, "sma_7": 1.0, "rsi_14": 50.0})
    anomalies = pd.DataFrame({"window_start": days[:1], "metric": ["close"], "z_score": [3.5]})
    forecasts = pd.DataFrame({"target_date": [days[1].date()], "horizon": [1],
                              "model": ["lstm"], "predicted_avg_price": [1.5],
                              "lower_80": [1.0], "upper_80": [2.0], "naive_avg_price": [1.4]})
    charts.market_figure(bars, indicators, ["SMA 7"], "RSI", anomalies, forecasts).to_json()


def main(argv: list[str] | None = None) -> None:
    """Import :data:`PRELOAD` and :func:`warm_up`, then run ``streamlit run *argv`` in this
    process (exits with Streamlit's status)."""
    for name in PRELOAD:
        importlib.import_module(name)
    warm_up()
    from streamlit.web import cli

    cli.main(args=["run", *(sys.argv[1:] if argv is None else argv)], prog_name="streamlit")


if __name__ == "__main__":
    main()
