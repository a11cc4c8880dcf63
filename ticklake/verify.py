"""Round-trip check: do the Gold daily bars equal the bars the replay source started from?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from config.tables import GOLD_BARS_1D
from storage.delta import read_table

OHLCV = ["open", "high", "low", "close", "volume"]


def compare_bars(source_bars: pd.DataFrame, gold_bars: pd.DataFrame) -> dict[str, Any]:
    """Compare source daily bars with Gold bars, exactly (no tolerance).

    Args:
        source_bars: columns ticker, day (``datetime.date``), open, high, low, close, volume.
        gold_bars: ``gold/bars_1d`` rows (window_start is the UTC day).

    Returns:
        ``{"tickers": {ticker: {"source_bars", "gold_bars", "equal", "missing", "extra",
        "different"}}, "all_equal": bool}``, where ``equal`` counts days whose OHLCV is
        identical, ``missing`` source days without a Gold bar, ``extra`` Gold days not in the
        source, ``different`` days present in both whose values differ.
    """
    gold = gold_bars.assign(day=pd.to_datetime(gold_bars["window_start"], utc=True).dt.date)
    merged = source_bars[["ticker", "day", *OHLCV]].merge(
        gold[["ticker", "day", *OHLCV]], on=["ticker", "day"], how="outer",
        suffixes=("_src", "_gold"), indicator=True,
    )
    report: dict[str, Any] = {}
    for ticker, group in merged.groupby("ticker"):
        both = group[group["_merge"] == "both"]
        same = pd.Series(True, index=both.index)
        for column in OHLCV:
            same &= both[f"{column}_src"].astype(float) == both[f"{column}_gold"].astype(float)
        report[str(ticker)] = {
            "source_bars": int((group["_merge"] != "right_only").sum()),
            "gold_bars": int((group["_merge"] != "left_only").sum()),
            "equal": int(same.sum()),
            "missing": int((group["_merge"] == "left_only").sum()),
            "extra": int((group["_merge"] == "right_only").sum()),
            "different": int((~same).sum()),
        }
    all_equal = bool(report) and all(
        r["missing"] == r["extra"] == r["different"] == 0 for r in report.values()
    )
    return {"tickers": report, "all_equal": all_equal}


def compare_with_lake(source_bars: pd.DataFrame, lake_dir: Path) -> dict[str, Any]:
    """:func:`compare_bars` against the current ``gold/bars_1d`` of ``lake_dir``,
    restricted to the tickers of ``source_bars``."""
    gold = read_table(GOLD_BARS_1D, lake_dir).to_pandas()
    gold = gold[gold["ticker"].isin(source_bars["ticker"].unique())]
    return compare_bars(source_bars, gold)


def main() -> int:
    """``python -m ticklake.verify``: compare ``gold/bars_1d`` of ``TICKLAKE_LAKE_DIR`` with
    the bokeh-sampledata bars of ``TICKLAKE_TICKERS`` (what ``ticklake produce --source
    replay`` publishes); print one JSON line per ticker's counts and exit 0 only when every
    bar is equal (what ``make compose-test`` waits for)."""
    import json

    from config.settings import load_settings
    from producer.sources.replay import load_bokeh_bars

    settings = load_settings()
    report = compare_with_lake(load_bokeh_bars(settings.tickers), settings.lake_dir)
    print(json.dumps(report))
    return 0 if report["all_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
