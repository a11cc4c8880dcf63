"""How the dashboard is served: the ``streamlit run`` command line for a lake."""

from __future__ import annotations

import sys
from pathlib import Path

from config.location import table_uri
from config.settings import Settings

APP = Path(__file__).resolve().parent / "app.py"
"""The Streamlit script of the dashboard."""


def dashboard_command(settings: Settings) -> list[str]:
    """The ``streamlit run`` command line of the dashboard over ``settings.lake_dir``, bound to
    ``settings.dashboard_host:dashboard_port``, headless, without usage statistics, serving
    ``visualization/static`` (the plotly.js bundle of :mod:`visualization.plot`); run through
    :mod:`visualization.serve`, which loads the pages' modules before the port opens."""
    return [
        sys.executable, "-m", "visualization.serve", str(APP),
        "--server.address", settings.dashboard_host,
        "--server.port", str(settings.dashboard_port),
        "--server.headless", "true",
        "--server.enableStaticServing", "true",  # visualization/static: visualization.plotlyjs
        "--browser.gatherUsageStats", "false",
        "--", "--lake", table_uri(settings.lake_dir),
    ]
