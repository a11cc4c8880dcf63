"""Verbs over the lake: ``train``, ``serve``, ``status``, ``maintain``, ``upgrade``,
``dashboard``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from config.options import Host, Lake, StartAfter, Tickers, split_tickers
from config.runtime import quiet_tensorflow, setup_logging
from config.settings import load_settings


def _console() -> Console:
    """A console that does not wrap tables when the output is a file or a pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def train(
    tickers: Tickers = None,
    lake: Lake = None,
    changed_only: Annotated[bool, typer.Option(
        "--changed-only", help="Skip tickers whose Gold rows are unchanged since their newest "
        "model version.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Tickers trained in parallel processes \\[default: 2].")] = None,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", help="Maximum epochs per LSTM fit \\[default: 20].")] = None,
    folds: Annotated[int | None, typer.Option(
        "--folds", help="Walk-forward test folds \\[default: 4].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    start_after: StartAfter = None,
) -> None:
    """Walk-forward backtest of one LSTM per ticker and horizon next to the naive, SMA and
    linear baselines, with conformal 80% intervals and a Diebold-Mariano test of each model
    against naive; register a new version per ticker, which then serves; each horizon's
    champion (the lowest RMSE among naive and the models that beat it significantly) writes
    its forecast to gold/predictions."""
    quiet_tensorflow()  # before TensorFlow is imported
    from analytics.backtest import MODELS
    from analytics.train import train_all

    setup_logging()
    settings = load_settings(lake_dir=lake, train_workers=workers, epochs=epochs,
                             backtest_folds=folds)
    results = train_all(settings, split_tickers(tickers), changed_only=changed_only,
                        start_after=start_after)
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=2, default=str))
        return
    table = Table("ticker", "h", "test days", "model", "RMSE", "skill", "DM p vs naive",
                  "cover80", "champion",
                  title=f"walk-forward backtest ({settings.backtest_folds} test folds pooled, "
                        f"LSTM fits of at most {settings.epochs} epochs; h = trading days ahead; "
                        "DM p two-sided, HLN-corrected)")
    for r in results:
        if r.skipped:
            table.add_row(r.ticker, "", "", f"skipped: {r.skipped}")
            continue
        for h, entry in r.horizons.items():
            o: dict[str, Any] = entry["overall"]
            for i, m in enumerate(MODELS):
                skill, dm, cover = o[m]["skill"], o[m]["dm"], o[m]["coverage_80"]
                table.add_row(
                    r.ticker if i == 0 else "", str(h) if i == 0 else "",
                    str(entry["test_days"]) if i == 0 else "", m, f"{o[m]['rmse']:.4f}",
                    f"{skill:+.4f}" if skill is not None else "n/a",
                    f"{dm['p_value']:.3f}" if dm else "-",
                    f"{cover:.1%}" if cover is not None else "n/a",
                    "champion" if m == entry["champion"]["model"] else "",
                    end_section=i == len(MODELS) - 1)
    _console().print(table)
    for r in results:
        for h, entry in r.horizons.items():
            print(f"{r.ticker} h={h}: {entry['champion']['reason']}")
    for h, line in pooled_coverage(results, MODELS).items():
        print(f"80% interval coverage pooled over tickers, h={h}: {line}")


def pooled_coverage(results: list[Any], models: tuple[str, ...]) -> dict[int, str]:
    """Per horizon, each model's interval coverage over the test days of every trained ticker
    (a test-day-weighted mean of the per-ticker coverages), as one printable line."""
    out = {}
    horizons = sorted({h for r in results for h in r.horizons})
    for h in horizons:
        entries = [r.horizons[h] for r in results if h in r.horizons]
        days = sum(e["test_days"] for e in entries)
        parts = [f"{m} {sum(e['overall'][m]['coverage_80'] * e['test_days'] for e in entries) / days:.1%}"
                 for m in models]
        out[h] = ", ".join(parts) + f" ({days} test days)"
    return out


def serve(
    lake: Lake = None,
    host: Host = None,
    port: Annotated[int | None, typer.Option("--port", help="Port \\[default: 8000].")] = None,
) -> None:
    """The prediction API (FastAPI): GET /health, GET /predict/{ticker}, POST /predict.
    OpenAPI docs at /docs."""
    quiet_tensorflow()
    import uvicorn

    from analytics.api import create_app

    settings = load_settings(lake_dir=lake, serve_host=host, serve_port=port)
    app = create_app(settings)  # refuses a non-loopback host without an API key
    print(f"ticklake prediction API on http://{settings.serve_host}:{settings.serve_port}/docs"
          + (" (X-API-Key required)" if settings.api_key else ""), flush=True)
    uvicorn.run(app, host=settings.serve_host, port=settings.serve_port,
                log_level="info")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    lake: Lake = None,
) -> None:
    """Row counts of every table, reconciliation (bronze = silver + quarantine), last ingest,
    each streaming job's newest micro-batch, champions, and the realised error of forecasts
    whose actual has arrived in Gold."""
    from analytics.realised import realised_summary
    from analytics.registry import Registry
    from storage.facts import lake_status
    from storage.progress import latest_progress

    settings = load_settings(lake_dir=lake)
    info = lake_status(settings.lake_dir)
    info["champions"] = {t: {"version": c["version"],
                             **{f"h{h}": e["model"] for h, e in c["horizons"].items()}}
                         for t, c in Registry(settings.lake_dir).champions().items()}
    info["realised_forecasts"] = realised_summary(settings.lake_dir)
    info["jobs"] = latest_progress(settings.lake_dir)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    console = _console()
    tables = Table("table", "rows", "version", "files", title=f"lake: {info['lake']}")
    for name, t in info["tables"].items():
        tables.add_row(name, *([f"{t['rows']:,}", f"v{t['version']}", str(t["files"])] if t
                               else ["(not created yet)", "", ""]))
    console.print(tables)
    r = info["reconciliation"]
    console.print(f"reconciliation: bronze {r['bronze']:,} = silver {r['silver']:,} + rejected "
                  f"{r['rejected']:,} + duplicates {r['duplicates']:,} -> "
                  f"{'balanced' if r['balanced'] else 'NOT BALANCED'}", highlight=False)
    if r["by_reason"]:
        console.print("quarantine by reason: " + ", ".join(
            f"{k} {v}" for k, v in r["by_reason"].items()), highlight=False)
    console.print(f"last ingest: {info['last_ingest_time'] or 'never'}", highlight=False)
    if info["jobs"]:
        jobs = Table("job", "batch", "at (UTC)", "rows", "rows/s", "batch ms",
                     title="newest micro-batch per streaming job")
        for name, p in info["jobs"].items():
            rate = p.get("processed_rows_per_s")
            jobs.add_row(name, str(p.get("batch_id")), str(p.get("timestamp")),
                         f"{p.get('rows') or 0:,}", f"{rate:,.0f}" if rate else "-",
                         f"{p.get('batch_duration_ms') or 0:,}")
        console.print(jobs)
    console.print("champions: " + (", ".join(
        f"{t} {c['version']} (" + ", ".join(f"{k}: {v}" for k, v in c.items() if k != "version")
        + ")" for t, c in info["champions"].items())
                                   or "none yet (ticklake train)"), highlight=False)
    for ticker, horizons in info["realised_forecasts"].items():
        for h, e in horizons.items():
            console.print(f"  realised {ticker} h={h}: {e['forecasts']} forecasts, MAE model "
                          f"{e['mae_model']:.4f} vs naive {e['mae_naive']:.4f}, 80% interval "
                          f"coverage {e['coverage_80']:.0%}", highlight=False)


def maintain(
    lake: Lake = None,
    retention_hours: Annotated[int, typer.Option(
        help="Vacuum files unreferenced for longer than this (>= 168).")] = 168,
) -> None:
    """Compact small files, write Delta log checkpoints and vacuum; safe while jobs run."""
    from storage.maintenance import maintain as run_maintenance

    setup_logging()
    settings = load_settings(lake_dir=lake)
    report = run_maintenance(settings.lake_dir, retention_hours)
    table = Table("table", "files before", "files after", "vacuumed", "note")
    for name, entry in report.items():
        table.add_row(name, str(entry["files_before"]), str(entry["files_after"]),
                      str(entry["vacuumed"]), entry["skipped"] or "")
    _console().print(table)


def upgrade(
    lake: Lake = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Upgrade a lake made by an older ticklake in place: add the columns its tables lack
    (tick message v2: asset_class, currency, volume_decimal) in one metadata commit per table,
    and rewrite the Silver and Gold checkpoints' offsets of the earlier Delta source as
    delta-spark's. No data file is rewritten; safe to run twice; the jobs also do both when
    they start."""
    from pipeline.checkpoints import convert_lake_checkpoints
    from storage.maintenance import upgrade as run_upgrade

    setup_logging()
    settings = load_settings(lake_dir=lake)
    report = run_upgrade(settings.lake_dir)
    for job, rewritten in convert_lake_checkpoints(settings).items():
        if rewritten and not as_json:
            print(f"checkpoint of {job}: {rewritten} offset(s) rewritten for delta-spark's source")
    if not report and not as_json:
        print(f"no Delta table under {settings.lake_dir}: nothing to upgrade")
        return
    if as_json:
        print(json.dumps(report))
        return
    table = Table("table", "version before", "version after", "columns added")
    for name, entry in report.items():
        table.add_row(name, str(entry["version_before"]), str(entry["version_after"]),
                      ", ".join(entry["added"]) or "(up to date)")
    _console().print(table)


def dashboard(
    lake: Lake = None,
    host: Host = None,
    port: Annotated[int | None, typer.Option("--port", help="Port \\[default: 8501].")] = None,
) -> None:
    """Serve the Streamlit dashboard alone (reads the Delta tables; never starts Spark)."""
    import subprocess

    from visualization.server import dashboard_command

    settings = load_settings(lake_dir=lake, dashboard_host=host, dashboard_port=port)
    print(f"dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}")
    raise typer.Exit(subprocess.call(dashboard_command(settings)))


def alerts(
    lake: Lake = None,
    webhook: Annotated[str | None, typer.Option(
        "--webhook", help="URL to POST alerts to \\[default: TICKLAKE_ALERT_WEBHOOK_URL].")] = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=1.0, help="Seconds between checks.")] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
) -> None:
    """Post new anomaly flags and a stalled ingestion to a webhook, each once (also across
    restarts: <lake>/_alerts/sent.jsonl). JSON with a Slack-compatible 'text'. Stops on
    Ctrl-C or SIGTERM."""
    import signal
    import threading
    from datetime import UTC, datetime

    from visualization.alerts import check_alerts

    setup_logging()
    settings = load_settings(lake_dir=lake, alert_webhook_url=webhook)
    if not settings.alert_webhook_url:
        raise typer.BadParameter("no webhook: pass --webhook URL or set "
                                 "TICKLAKE_ALERT_WEBHOOK_URL", param_hint="--webhook")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while True:
        delivered = check_alerts(settings, settings.lake_dir, datetime.now(UTC))
        print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: {len(delivered)} alert(s) delivered",
              flush=True)
        if once or stop.wait(interval):
            return
