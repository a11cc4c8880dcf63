"""The JSON summary that ``ticklake up --until-caught-up`` prints as its last line."""

from __future__ import annotations

from typing import Any

from analytics.train import latest_model_metadata
from config.settings import Settings
from producer.publisher import PublishReport
from producer.sources import TickSource
from ticklake.status import lake_status
from ticklake.verify import compare_with_lake


def build_summary(
    settings: Settings,
    source: TickSource,
    report: PublishReport,
    wall_time_s: float,
    dashboard_url: str | None,
    dashboard_ok: bool | None,
) -> dict[str, Any]:
    """Counts per table, reconciliation, the bar round trip, model metrics and ``ok``.

    ``ok`` is true when: Bronze holds exactly the produced ticks; bronze = silver + quarantine;
    for a replay, ``gold/bars_1d`` equals the source bars; every ticker has a model.
    """
    status = lake_status(settings.lake_dir)
    recon = status["reconciliation"]
    bars = getattr(source, "bars", None)
    round_trip = compare_with_lake(bars, settings.lake_dir) if bars is not None else None
    tickers = sorted(bars["ticker"].unique()) if bars is not None else list(settings.tickers)
    models = {
        ticker: {
            "version": meta["version"],
            "model": meta["metrics"]["model"],
            "naive": meta["metrics"]["naive"],
            "rmse_ratio_vs_naive": meta["metrics"]["rmse_ratio_vs_naive"],
        }
        for ticker, meta in latest_model_metadata(settings.lake_dir).items()
        if ticker in tickers
    }
    checks = {
        "bronze_equals_produced": recon["bronze"] == report.produced,
        "reconciled": recon["balanced"],
        "bars_equal_source": round_trip["all_equal"] if round_trip else None,
        "every_ticker_has_model": set(models) == set(tickers),
    }
    return {
        "ok": all(v is not False for v in checks.values()),
        "checks": checks,
        "wall_time_s": round(wall_time_s, 1),
        "produced": report.produced,
        "tables": {name: (t or {}).get("rows", 0) for name, t in status["tables"].items()},
        "reconciliation": recon,
        "bars_round_trip": round_trip,
        "models": models,
        "dashboard": {"url": dashboard_url, "healthy": dashboard_ok},
        "lake": status["lake"],
    }
