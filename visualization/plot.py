"""Draw a Plotly figure on a dashboard page with plotly.js' finance bundle.

A Streamlit custom component (``st.components.v2``, in the page's own DOM, not an iframe)
that loads :data:`visualization.plotlyjs.BUNDLE` once per browser tab and draws the figure's
JSON with ``Plotly.react``. The plot is a ``.js-plotly-plot`` element of the page, as with
``st.plotly_chart``, so the browser tests and the render benchmark read it the same way.
Without the bundle (``python -m visualization.plotlyjs`` not run) it falls back to
``st.plotly_chart``, and says so once in the server's log.
"""

from __future__ import annotations

import logging
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from visualization import plotlyjs

log = logging.getLogger(__name__)

COMPONENT = "ticklake_plotly"
"""The component's name (one registration per script run; Streamlit keeps one definition)."""

JS = """
export default function ({ parentElement, data }) {
  const load = window.__ticklakePlotly || (window.__ticklakePlotly = new Promise(
    (resolve, reject) => {
      if (window.Plotly) { resolve(window.Plotly); return; }
      const script = document.createElement("script");
      script.src = data.bundle;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { window.__ticklakePlotly = undefined;
                               reject(new Error("could not load " + data.bundle)); };
      document.head.appendChild(script);
    }));
  if (data.figure === undefined) return;  // preload(): only fetch the bundle
  let plot = parentElement.querySelector("div.ticklake-plot");
  if (!plot) {
    plot = document.createElement("div");
    plot.className = "ticklake-plot";
    plot.style.width = "100%";
    parentElement.appendChild(plot);
  }
  const figure = JSON.parse(data.figure);
  plot.style.height = (figure.layout.height || 450) + "px";
  load.then((Plotly) => Plotly.react(plot, figure.data, figure.layout,
                                      { responsive: true, displaylogo: false }))
      .catch((error) => { plot.textContent = String(error); });
}
"""
"""The component's code: ``data`` is ``{"figure": <the figure's JSON>, "bundle": <URL>}``;
without ``figure`` it only loads the bundle (:func:`preload`)."""

_warned: list[bool] = []


def _fallback() -> str | None:
    """Why charts must fall back to ``st.plotly_chart``, or None."""
    if not plotlyjs.installed():
        return ("the plotly.js finance bundle is missing (python -m visualization.plotlyjs "
                f"fetches it into {plotlyjs.STATIC_DIR})")
    if not st.get_option("server.enableStaticServing"):
        return ("the server does not serve static files (ticklake dashboard runs it with "
                "--server.enableStaticServing true)")
    return None


def preload() -> None:
    """Start fetching the bundle in the browser now (an empty element): called before a
    page's reads, so that it is evaluated by the time the page's first chart arrives (rather
    than asked for when that chart arrives). Nothing when charts fall back."""
    if _fallback() is None:
        draw: Any = st.components.v2.component(COMPONENT, js=JS, isolate_styles=False)
        draw(data={"bundle": plotlyjs.BUNDLE_URL}, key="plotly_preload")


def show(fig: go.Figure, key: str) -> None:
    """Draw ``fig`` (a figure with its layout height set) in the page, under ``key``.

    The figure goes to the browser as Plotly's JSON (``fig.to_json()``: NumPy arrays as
    base64 typed arrays), as ``st.plotly_chart`` sends it.
    """
    why = _fallback()
    if why is not None:
        if not _warned:
            log.warning("charts use st.plotly_chart, whose first page in a new browser is "
                        "~1 s slower: %s", why)
            _warned.append(True)
        st.plotly_chart(fig, theme=None, key=key)
        return
    draw: Any = st.components.v2.component(COMPONENT, js=JS, isolate_styles=False)
    draw(data={"figure": fig.to_json(), "bundle": plotlyjs.BUNDLE_URL}, key=key)
