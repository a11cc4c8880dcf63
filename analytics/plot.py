"""Backtest plot: actual vs LSTM vs naive next-day avg_price with the LSTM's 80% interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def backtest_plot(frame: pd.DataFrame, ticker: str, overall: dict[str, Any], path: Path) -> Path:
    """Write a PNG of the walk-forward test days.

    Args:
        frame: :attr:`analytics.backtest.BacktestResult.frame` (date, actual, lstm, naive,
            lower, upper, fold).
        ticker: for the title.
        overall: pooled metrics (skill and coverage go in the title).
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
        ax.fill_between(d, f["lower"], f["upper"], color="tab:blue", alpha=0.18, linewidth=0,
                        label="LSTM 80% interval")
        ax.plot(d, f["actual"], color="black", linewidth=1.0, label="actual avg_price")
        ax.plot(d, f["lstm"], color="tab:blue", linewidth=0.9, label="LSTM")
        ax.plot(d, f["naive"], color="tab:orange", linewidth=0.9, linestyle="--",
                label="naive (last value)")
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for start in frame.groupby("fold")["date"].min().iloc[1:]:
        axes[0].axvline(pd.Timestamp(start), color="grey", linewidth=0.6, linestyle=":")
    lstm, naive = overall["lstm"], overall["naive"]
    skill = "n/a (naive is exact)" if lstm["skill"] is None else f"{lstm['skill']:+.4f}"
    axes[0].set_title(
        f"{ticker}: walk-forward backtest, {frame['fold'].nunique()} folds (dotted), "
        f"{len(frame)} test days; RMSE LSTM {lstm['rmse']:.3f} vs naive {naive['rmse']:.3f} "
        f"(skill {skill}), 80% interval coverage {overall['coverage_80']:.1%}",
        fontsize=9,
    )
    axes[1].set_title("last 60 test days", fontsize=9)
    axes[0].set_ylabel("avg_price")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
