"""Backtest plot: actual vs the champion vs LSTM vs naive avg_price at one horizon, with the
champion's conformal 80% interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def backtest_plot(frame: pd.DataFrame, ticker: str, horizon: int, overall: dict[str, Any],
                  champion: str, path: Path) -> Path:
    """Write a PNG of the walk-forward test days.

    Args:
        frame: :attr:`analytics.backtest.BacktestResult.frame` (date, actual, one column per
            model, ``<model>_lower`` / ``<model>_upper``, fold).
        ticker: for the title.
        horizon: trading days ahead (title).
        overall: pooled metrics (RMSE, skill, coverage, DM p-value go in the title).
        champion: the model whose forecast and interval are drawn next to the LSTM and naive.
        path: the PNG to write (parent must exist).

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dates = pd.to_datetime(frame["date"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), dpi=110, width_ratios=[3, 1])
    zoom = slice(max(0, len(frame) - 60), len(frame))
    for ax, rows in ((axes[0], slice(None)), (axes[1], zoom)):
        d, f = dates.iloc[rows], frame.iloc[rows]
        ax.fill_between(d, f[f"{champion}_lower"], f[f"{champion}_upper"], color="tab:green",
                        alpha=0.18, linewidth=0, label=f"{champion} 80% interval (conformal)")
        ax.plot(d, f["actual"], color="black", linewidth=1.0, label="actual avg_price")
        for model, color, style in (("lstm", "tab:blue", "-"), ("naive", "tab:orange", "--")):
            if model != champion:
                ax.plot(d, f[model], color=color, linewidth=0.8, linestyle=style, label=model)
        ax.plot(d, f[champion], color="tab:green", linewidth=1.0,
                label=f"{champion} (champion)")
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for start in frame.groupby("fold")["date"].min().iloc[1:]:
        axes[0].axvline(pd.Timestamp(start), color="grey", linewidth=0.6, linestyle=":")
    lstm, naive, best = overall["lstm"], overall["naive"], overall[champion]
    skill = "n/a (naive is exact)" if lstm["skill"] is None else f"{lstm['skill']:+.4f}"
    p_value = "n/a" if not lstm["dm"] else f"{lstm['dm']['p_value']:.3f}"
    axes[0].set_title(
        f"{ticker}, {horizon} trading day(s) ahead: walk-forward backtest, "
        f"{frame['fold'].nunique()} folds (dotted), {len(frame)} test days\n"
        f"RMSE LSTM {lstm['rmse']:.3f} vs naive {naive['rmse']:.3f} (skill {skill}, "
        f"Diebold-Mariano p {p_value}); champion {champion}, its 80% interval covers "
        f"{best['coverage_80']:.1%}",
        fontsize=9,
    )
    axes[1].set_title("last 60 test days", fontsize=9)
    axes[0].set_ylabel("avg_price")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
