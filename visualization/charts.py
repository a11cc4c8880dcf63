"""Plotly figures of the dashboard (pure functions of data frames; testable without Streamlit).

The market chart follows the layout of trading screens: candlesticks with overlays on top, the
volume bars below, then an oscillator panel (RSI 14 with its 30/70 bands, or MACD 12/26/9);
anomaly flags are marks on the bars and the forecasts of each horizon are points with their 80%
interval as error bars at the target date, next to the naive forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

THEMES = {"light": "plotly_white", "dark": "plotly_dark"}
"""Dashboard theme -> Plotly template."""
OVERLAYS = {
    "SMA 7": ["sma_7"], "SMA 14": ["sma_14"], "SMA 30": ["sma_30"], "EMA 12": ["ema_12"],
    "EMA 26": ["ema_26"], "Bollinger 20/2": ["bb_upper", "bb_middle", "bb_lower"],
    "MA 3 (1h)": ["ma_3"],
}
"""Overlay name -> indicator columns (``gold/indicators_1d``; ``ma_3`` from
``gold/indicators_1h``)."""
RSI_BANDS = (30.0, 70.0)
"""Wilder's oversold/overbought levels for RSI 14 (Wilder 1978, *New Concepts in Technical
Trading Systems*)."""


def market_figure(
    bars: pd.DataFrame, indicators: pd.DataFrame | None = None,
    overlays: Sequence[str] = (), panel: str | None = None,
    anomalies: pd.DataFrame | None = None, forecasts: pd.DataFrame | None = None,
    theme: str = "light", title: str = "", currency: str | None = None,
) -> go.Figure:
    """Candlesticks, volume, an optional RSI or MACD panel, anomaly marks and forecasts.

    Args:
        bars: one ticker's bars in time order: window_start (UTC), open, high, low, close,
            volume.
        indicators: rows of ``gold/indicators_*`` for the same bars (window_start and the
            columns of the chosen overlays / panel); None or empty for none.
        overlays: names in :data:`OVERLAYS` drawn on the price panel.
        panel: ``"RSI"``, ``"MACD"`` or None.
        anomalies: ``gold/anomalies`` rows (window_start, metric, z_score) to mark; a mark sits
            at the bar's high.
        forecasts: ``gold/predictions`` rows to draw (target_date, horizon, model,
            predicted_avg_price, lower_80, upper_80, naive_avg_price).
        theme: ``"light"`` or ``"dark"`` (:data:`THEMES`).
        title: the figure's title.
        currency: the prices' quote currency, named on the price axis (``price (USD)``).

    Returns:
        The figure; trace names: ``"OHLC"``, ``"volume"``, each overlay column, ``"RSI 14"`` or
        ``"MACD"``/``"signal"``/``"histogram"``, ``"anomaly"``, ``"h=<h> <model>"`` and
        ``"h=<h> naive"``.

    Raises:
        ValueError: an unknown overlay, panel or theme.
    """
    unknown = [o for o in overlays if o not in OVERLAYS]
    if unknown or panel not in (None, "RSI", "MACD") or theme not in THEMES:
        raise ValueError(f"unknown overlay {unknown}, panel {panel!r} or theme {theme!r}; "
                         f"overlays: {list(OVERLAYS)}, panels: RSI, MACD, themes: "
                         f"{list(THEMES)}")
    rows = 3 if panel else 2
    heights = [0.6, 0.15, 0.25] if panel else [0.78, 0.22]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=heights)
    x = pd.to_datetime(bars["window_start"], utc=True)
    fig.add_trace(go.Candlestick(x=x, open=bars["open"], high=bars["high"], low=bars["low"],
                                 close=bars["close"], name="OHLC"), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=bars["volume"], name="volume", marker_color="#7f7f7f"),
                  row=2, col=1)
    ind = indicators if indicators is not None and not indicators.empty else None
    if ind is not None:
        ix = pd.to_datetime(ind["window_start"], utc=True)
        for overlay in overlays:
            for column in OVERLAYS[overlay]:
                if column in ind:
                    fig.add_trace(go.Scatter(x=ix, y=ind[column], name=column, mode="lines",
                                             line={"width": 1}), row=1, col=1)
        if panel == "RSI" and "rsi_14" in ind:
            fig.add_trace(go.Scatter(x=ix, y=ind["rsi_14"], name="RSI 14", mode="lines"),
                          row=3, col=1)
            for level in RSI_BANDS:
                fig.add_hline(y=level, line_dash="dot", line_width=1, row=3, col=1)
        if panel == "MACD" and "macd" in ind:
            fig.add_trace(go.Bar(x=ix, y=ind["macd_hist"], name="histogram"), row=3, col=1)
            fig.add_trace(go.Scatter(x=ix, y=ind["macd"], name="MACD", mode="lines"),
                          row=3, col=1)
            fig.add_trace(go.Scatter(x=ix, y=ind["macd_signal"], name="signal", mode="lines"),
                          row=3, col=1)
    if anomalies is not None and not anomalies.empty:
        high = bars.set_index(x)["high"]
        when = pd.to_datetime(anomalies["window_start"], utc=True)
        at = when[when.isin(high.index)]
        if len(at):
            shown = anomalies.loc[at.index]
            fig.add_trace(go.Scatter(
                x=at, y=high.loc[at].to_numpy() * 1.01, mode="markers", name="anomaly",
                marker={"symbol": "triangle-down", "size": 10, "color": "#d62728"},
                text=[f"{m}: z = {z:+.1f}" for m, z in zip(shown["metric"], shown["z_score"],
                                                           strict=True)],
                hoverinfo="text+x"), row=1, col=1)
    if forecasts is not None and not forecasts.empty:
        for _, row in forecasts.iterrows():
            target = pd.Timestamp(row["target_date"], tz="UTC")
            h = int(row["horizon"]) if pd.notna(row.get("horizon")) else 1
            model = row.get("model") if isinstance(row.get("model"), str) else "lstm"
            fig.add_trace(go.Scatter(
                x=[target], y=[row["predicted_avg_price"]], mode="markers",
                name=f"h={h} {model}", marker={"size": 9, "symbol": "diamond"},
                error_y={"type": "data", "symmetric": False,
                         "array": [row["upper_80"] - row["predicted_avg_price"]],
                         "arrayminus": [row["predicted_avg_price"] - row["lower_80"]]}),
                row=1, col=1)
            if model != "naive":
                fig.add_trace(go.Scatter(x=[target], y=[row["naive_avg_price"]],
                                         mode="markers", name=f"h={h} naive",
                                         marker={"size": 7, "symbol": "x"}), row=1, col=1)
    fig.update_layout(template=THEMES[theme], title={"text": title, "y": 0.98},
                      height=740 if panel else 620, xaxis_rangeslider_visible=False,
                      margin={"l": 40, "r": 20, "t": 90, "b": 30},
                      legend={"orientation": "h", "y": 1.01, "yanchor": "bottom"})
    fig.update_yaxes(title_text=f"price ({currency})" if currency else "price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    if panel:
        fig.update_yaxes(title_text=panel, row=3, col=1)
    return fig


def quarantine_figure(by_day: pd.DataFrame, theme: str = "light") -> go.Figure:
    """Stacked bars of quarantined records per UTC day and reason (columns day, reason,
    records)."""
    fig = go.Figure()
    for reason, rows in by_day.groupby("reason", sort=True):
        fig.add_trace(go.Bar(x=rows["day"], y=rows["records"], name=str(reason)))
    fig.update_layout(barmode="stack", template=THEMES[theme], height=320,
                      xaxis_title="quarantined (UTC day)", yaxis_title="records",
                      margin={"l": 40, "r": 20, "t": 20, "b": 30})
    return fig


def batches_figure(progress: pd.DataFrame, theme: str = "light") -> go.Figure:
    """Micro-batch durations over time, one line per job (columns job, timestamp,
    batch_duration_ms)."""
    fig = go.Figure()
    for job, rows in progress.groupby("job", sort=True):
        fig.add_trace(go.Scatter(x=pd.to_datetime(rows["timestamp"], utc=True),
                                 y=rows["batch_duration_ms"] / 1000, mode="lines+markers",
                                 name=str(job)))
    fig.update_layout(template=THEMES[theme], height=320, yaxis_title="batch duration (s)",
                      margin={"l": 40, "r": 20, "t": 20, "b": 30})
    return fig
