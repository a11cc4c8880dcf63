"""Serve the dashboard: load what its pages import, then hand over to ``streamlit run``.

    python -m visualization.serve visualization/app.py --server.port 8501 -- --lake ./lake

Streamlit runs the page scripts inside the server process, so a module loaded here is already
in ``sys.modules`` when the first browser connects. Without it, the first page after a server
start paid ~0.7 s of imports (pandas, pyarrow, delta-rs, Plotly; measured by
``bench/dashboard.py``, "fresh server" line). The arguments are those of ``streamlit run``.
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


def main(argv: list[str] | None = None) -> None:
    """Import :data:`PRELOAD`, then run ``streamlit run *argv`` in this process (exits with
    Streamlit's status)."""
    for name in PRELOAD:
        importlib.import_module(name)
    from streamlit.web import cli

    cli.main(args=["run", *(sys.argv[1:] if argv is None else argv)], prog_name="streamlit")


if __name__ == "__main__":
    main()
