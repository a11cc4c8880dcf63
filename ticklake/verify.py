"""Round-trip check: do the Gold bars equal the bars the replay source started from?"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from config.tables import DAY_S, bar_interval_name, bar_table
from storage.delta import read_table

OHLCV = ["open", "high", "low", "close", "volume"]


def _exact(volume: object) -> Decimal | None:
    """A volume (int, numpy integer, float or Decimal) as an exact Decimal; None if missing."""
    if volume is None or (isinstance(volume, float) and math.isnan(volume)):
        return None
    return Decimal(repr(volume)) if isinstance(volume, float) else Decimal(str(volume))


def compare_bars(source_bars: pd.DataFrame, gold_bars: pd.DataFrame) -> dict[str, Any]:
    """Compare source bars with Gold bars, exactly (no tolerance).

    Args:
        source_bars: columns ticker, open, high, low, close, volume and either day
            (``datetime.date``; daily bars, matched to Gold's UTC day) or, for intraday bars,
            start (UTC) and seconds < 86,400 (matched to Gold's window_start).
        gold_bars: rows of the Gold bar table of the same length (window_start UTC).

    Returns:
        ``{"tickers": {ticker: {"source_bars", "gold_bars", "equal", "missing", "extra",
        "different"}}, "all_equal": bool}``, where ``equal`` counts bars whose OHLCV is
        identical (the volume compared as an exact decimal with Gold's ``volume_decimal``, or
        its ``volume`` where that is null), ``missing`` source bars without a Gold bar,
        ``extra`` Gold bars not in the source, ``different`` bars present in both whose values
        differ.
    """
    if "volume_decimal" in gold_bars:  # the exact volume (null on a bar a v1 release wrote)
        gold_bars = gold_bars.assign(volume=[
            exact if exact is not None and not pd.isna(exact) else volume
            for exact, volume in zip(gold_bars["volume_decimal"], gold_bars["volume"],
                                     strict=True)])
    starts = pd.to_datetime(gold_bars["window_start"], utc=True).astype("datetime64[ns, UTC]")
    intraday = "seconds" in source_bars and bool((source_bars["seconds"] < DAY_S).all())
    if intraday:
        key = "start"
        source = source_bars.assign(start=source_bars["start"].astype("datetime64[ns, UTC]"))
        gold = gold_bars.assign(start=starts)
    else:
        key, source, gold = "day", source_bars, gold_bars.assign(day=starts.dt.date)
    merged = source[["ticker", key, *OHLCV]].merge(
        gold[["ticker", key, *OHLCV]], on=["ticker", key], how="outer",
        suffixes=("_src", "_gold"), indicator=True,
    )
    report: dict[str, Any] = {}
    for ticker, group in merged.groupby("ticker"):
        both = group[group["_merge"] == "both"]
        same = pd.Series(True, index=both.index)
        for column in OHLCV[:-1]:
            same &= both[f"{column}_src"].astype(float) == both[f"{column}_gold"].astype(float)
        same &= pd.Series([_exact(a) == _exact(b) for a, b in zip(
            both["volume_src"], both["volume_gold"], strict=True)], index=both.index, dtype=bool)
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


def compare_with_lake(source_bars: pd.DataFrame, lake_dir: Path,
                      intervals: tuple[str, ...] | None = None) -> dict[str, Any]:
    """:func:`compare_bars` against the current Gold bars of ``lake_dir`` of the same length
    (``gold/bars_1d`` for daily bars, ``bars_1h`` for hourly bars, ``bars_5m`` for 5-minute
    bars...), restricted to the tickers of ``source_bars``; one report over every length.

    Args:
        intervals: the bar intervals Gold keeps (``Settings.bar_intervals``; None: whatever
            the bars' length, its table is read, and a missing table counts every bar as
            missing).

    Raises:
        ValueError: the source has bars of a length that is no bar interval, or not one of
            ``intervals`` (the message says which setting adds it).
    """
    lengths = source_bars["seconds"] if "seconds" in source_bars else pd.Series([DAY_S])
    report: dict[str, Any] = {"tickers": {}, "all_equal": not source_bars.empty}
    for seconds in sorted(set(lengths.astype(int))):
        name = bar_interval_name(seconds)
        if intervals is not None and name not in intervals:
            raise ValueError(f"the source has {name} bars and Gold keeps "
                             f"{', '.join(intervals)}: add {name} to TICKLAKE_BAR_INTERVALS")
        table = bar_table(name)
        part = source_bars if "seconds" not in source_bars else (
            source_bars[source_bars["seconds"] == seconds])
        gold = read_table(table, lake_dir).to_pandas()
        one = compare_bars(part, gold[gold["ticker"].isin(part["ticker"].unique())])
        report["tickers"].update(one["tickers"])
        report["all_equal"] = report["all_equal"] and one["all_equal"]
    return report


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
