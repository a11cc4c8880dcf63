"""The ``ticklake`` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from config.settings import Settings, load_settings
from ticklake.errors import ConfigError, TicklakeError

app = typer.Typer(
    help="ticklake: a real-time market-data lakehouse. Kafka topic -> Spark Structured "
    "Streaming -> Bronze/Silver/Gold Delta tables -> per-ticker LSTM forecasts -> Streamlit. "
    "Settings come from TICKLAKE_* environment variables; flags override them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
broker_app = typer.Typer(help="The embedded tansu broker on 127.0.0.1 (memory or s3 storage).",
                         no_args_is_help=True)
app.add_typer(broker_app, name="broker")

Lake = Annotated[Path | None, typer.Option("--lake", help="Lake directory [default: ./lake].")]
Bootstrap = Annotated[
    str | None,
    typer.Option("--bootstrap-servers", help="Kafka HOST:PORT [default: 127.0.0.1:9092]."),
]
Tickers = Annotated[
    str | None,
    typer.Option("--tickers", help="Comma-separated symbols [default: AAPL,IBM,MSFT,GOOG,FB]."),
]
SOURCES = ("replay", "synthetic")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from None


def _tickers(value: str | None) -> list[str] | None:
    return [t for t in value.replace(" ", ",").split(",") if t] if value else None


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "ticklake.librdkafka", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise ConfigError(f"--source {source!r} is not one of {', '.join(SOURCES)}")
    return source


@app.command()
def up(
    until_caught_up: Annotated[bool, typer.Option(
        "--until-caught-up",
        help="Stop once every produced tick is in Gold and every ticker has a model; print a "
        "JSON summary as the last line.")] = False,
    lake: Lake = None,
    source: Annotated[str, typer.Option(help="Tick source: replay | synthetic.")] = "replay",
    csv: Annotated[list[Path] | None, typer.Option(
        "--csv", help="Replay these CSVs (yfinance layout) instead of bokeh-sampledata.")] = None,
    tickers: Tickers = None,
    rate: Annotated[float | None, typer.Option(help="Ticks per second (default: as fast as "
                                               "possible for replay, 50 for synthetic).")] = None,
    count: Annotated[int | None, typer.Option(help="Synthetic: stop after N ticks.")] = None,
    bootstrap_servers: Bootstrap = None,
    dashboard: Annotated[bool, typer.Option(help="Serve the Streamlit dashboard.")] = True,
    api: Annotated[bool, typer.Option(help="Serve the prediction API (FastAPI).")] = True,
) -> None:
    """Run the whole lakehouse: broker, Spark jobs, producer, training, dashboard, API.

    Ctrl-C stops everything it started. With --until-caught-up it stops by itself.
    """
    from ticklake.up import UpOptions, run_up

    _setup_logging()
    settings = _settings(lake_dir=lake, bootstrap_servers=bootstrap_servers,
                         tickers=_tickers(tickers))
    options = UpOptions(
        source=_check_source(source), csv=list(csv or []),
        tickers=_tickers(tickers), rate=rate, count=count,
        until_caught_up=until_caught_up, dashboard=dashboard, api=api,
    )
    summary = run_up(settings, options)
    if summary is not None:
        print(json.dumps(summary, default=str))
        if not summary.get("ok"):
            raise typer.Exit(1)


Storage = Annotated[
    str | None,
    typer.Option("--storage", help="Broker storage: memory (lost on restart) or s3 (kept in an "
                 "S3 bucket across broker restarts; an embedded moto S3 unless "
                 "TICKLAKE_S3_ENDPOINT is set) [default: memory]."),
]


@broker_app.command("start")
def broker_start(bootstrap_servers: Bootstrap = None, storage: Storage = None) -> None:
    """Start the embedded broker in the background and create the topic."""
    from ticklake.broker import EmbeddedBroker, ensure_topic

    _setup_logging()
    settings = _settings(bootstrap_servers=bootstrap_servers, broker_storage=storage)
    pid = EmbeddedBroker(settings).start()
    partitions = ensure_topic(settings)
    print(f"broker running on {settings.bootstrap_servers} (pid {pid}, storage "
          f"{settings.broker_storage}); topic {settings.topic} has {partitions} partitions")


@broker_app.command("stop")
def broker_stop(
    bootstrap_servers: Bootstrap = None,
    with_storage: Annotated[bool, typer.Option(
        "--with-storage", help="Also stop the embedded S3 server of the s3 storage (its "
        "topics and messages are then gone).")] = False,
) -> None:
    """Stop the embedded broker started by `ticklake broker start` (by its PID file)."""
    from ticklake.broker import EmbeddedBroker

    settings = _settings(bootstrap_servers=bootstrap_servers)
    stopped = EmbeddedBroker(settings).stop(with_storage=with_storage)
    print("broker stopped" if stopped else "no embedded broker was running")


@broker_app.command("status")
def broker_status(bootstrap_servers: Bootstrap = None) -> None:
    """Say whether a broker answers, and the embedded broker's (and S3 server's) PID."""
    from ticklake.broker import EmbeddedBroker, EmbeddedS3, broker_reachable

    settings = _settings(bootstrap_servers=bootstrap_servers)
    pid = EmbeddedBroker(settings).pid()
    s3 = EmbeddedS3(settings)
    up_ = broker_reachable(settings)
    print(f"{settings.bootstrap_servers}: {'reachable' if up_ else 'not reachable'}"
          + (f" (embedded tansu, pid {pid})" if pid else ""))
    if s3.pid():
        print(f"embedded S3 storage: {s3.url} (pid {s3.pid()})")
    if not up_:
        raise typer.Exit(1)


@app.command()
def produce(
    source: Annotated[str, typer.Option(help="replay | synthetic.")] = "replay",
    csv: Annotated[list[Path] | None, typer.Option(
        "--csv", help="CSV file(s) in yfinance's layout; one ticker per file.")] = None,
    tickers: Tickers = None,
    rate: Annotated[float | None, typer.Option(help="Ticks per second (synthetic).")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after N ticks.")] = None,
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Publish ticks to the topic (key = ticker, idempotent producer, acks=all)."""
    from producer.publisher import publish
    from ticklake.broker import ensure_topic
    from ticklake.up import build_source

    _setup_logging()
    settings = _settings(bootstrap_servers=bootstrap_servers, tickers=_tickers(tickers))
    tick_source = build_source(settings, _check_source(source), list(csv or []),
                               _tickers(tickers), rate, count)
    ensure_topic(settings)
    ticks = tick_source.ticks()
    if count is not None:
        from itertools import islice

        ticks = islice(ticks, count)
    total = tick_source.expected_count()
    report = publish(ticks, settings, total=min(total, count) if total and count else total or count)
    print(json.dumps({"produced": report.produced, "failed": report.failed,
                      "end_offsets": report.end_offsets}))


@app.command()
def watch(
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Start at the earliest offset instead of the end.")] = False,
    count: Annotated[int | None, typer.Option(help="Exit after N messages.")] = None,
    idle_s: Annotated[float | None, typer.Option(
        "--idle-s", help="Exit after this many seconds without a message.")] = None,
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Print the topic's messages as they arrive: partition, offset, key, value."""
    from ticklake.broker import require_broker
    from ticklake.watch import watch_topic

    settings = _settings(bootstrap_servers=bootstrap_servers)
    require_broker(settings)
    for line in watch_topic(settings, from_beginning, count, idle_s):
        print(line, flush=True)


@app.command()
def job(
    names: Annotated[list[str], typer.Argument(help="bronze, silver and/or gold.")],
    until_caught_up: Annotated[bool, typer.Option(
        "--until-caught-up", help="Process what is available now (Trigger.AvailableNow), "
        "then exit.")] = False,
    lake: Lake = None,
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Run streaming jobs (one Spark application). Same as `spark-submit pipeline/<job>.py`."""
    from pipeline.runner import run_jobs

    _setup_logging()
    settings = _settings(lake_dir=lake, bootstrap_servers=bootstrap_servers)
    run_jobs(settings, names, until_caught_up)


@app.command()
def train(
    tickers: Tickers = None,
    lake: Lake = None,
    changed_only: Annotated[bool, typer.Option(
        "--changed-only", help="Skip tickers whose Gold rows are unchanged since their newest "
        "model version.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Tickers trained in parallel processes [default: 2].")] = None,
    epochs: Annotated[int | None, typer.Option(
        "--epochs", help="Maximum epochs per LSTM fit [default: 20].")] = None,
    folds: Annotated[int | None, typer.Option(
        "--folds", help="Walk-forward test folds [default: 4].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Walk-forward backtest and train one LSTM per ticker on gold/daily_metrics, next to the
    naive, SMA and linear baselines; register each version, promote it to champion only if its
    skill vs naive is > 0 and beats the current champion; write champion forecasts to
    gold/predictions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    from analytics.train import train_all

    _setup_logging()
    settings = _settings(lake_dir=lake, train_workers=workers, epochs=epochs,
                         backtest_folds=folds)
    results = train_all(settings, _tickers(tickers), changed_only=changed_only)
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=2, default=str))
        return
    print(f"{'ticker':<7}{'version':<24}{'RMSE lstm':>10}{'naive':>9}{'sma':>9}{'linear':>9}"
          f"{'skill':>9}{'cover80':>9}  champion")
    for r in results:
        if r.skipped:
            print(f"{r.ticker:<7}skipped: {r.skipped}")
            continue
        o = r.overall or {}
        print(f"{r.ticker:<7}{r.version:<24}" + "".join(
            f"{o[m]['rmse']:>{10 if m == 'lstm' else 9}.4f}" for m in ("lstm", "naive", "sma",
                                                                        "linear"))
              + (f"{o['lstm']['skill']:>+9.4f}" if o["lstm"]["skill"] is not None else
                 f"{'n/a':>9}") + f"{o['coverage_80']:>9.1%}  "
              + ("promoted" if r.promoted else "kept, not promoted") + f": {r.reason}")


@app.command()
def serve(
    lake: Lake = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address [default: "
                                             "127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port [default: 8000].")] = None,
) -> None:
    """The prediction API (FastAPI): GET /health, GET /predict/{ticker}, POST /predict.
    OpenAPI docs at /docs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import uvicorn

    from analytics.api import create_app

    settings = _settings(lake_dir=lake, serve_host=host, serve_port=port)
    print(f"ticklake prediction API on http://{settings.serve_host}:{settings.serve_port}/docs",
          flush=True)
    uvicorn.run(create_app(settings), host=settings.serve_host, port=settings.serve_port,
                log_level="info")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    lake: Lake = None,
) -> None:
    """Row counts of every table, reconciliation (bronze = silver + quarantine), last ingest,
    champions, and the realised error of forecasts whose actual has arrived in Gold."""
    from analytics.realised import realised_summary
    from analytics.registry import Registry
    from ticklake.status import lake_status

    settings = _settings(lake_dir=lake)
    info = lake_status(settings.lake_dir)
    info["champions"] = {t: c["version"] for t, c in Registry(settings.lake_dir).champions().items()}
    info["realised_forecasts"] = realised_summary(settings.lake_dir)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f"lake: {info['lake']}")
    for name, t in info["tables"].items():
        print(f"  {name:<20} " + (f"{t['rows']:>10,} rows  v{t['version']}  {t['files']} files"
                                  if t else "(not created yet)"))
    r = info["reconciliation"]
    print(f"reconciliation: bronze {r['bronze']:,} = silver {r['silver']:,} + rejected "
          f"{r['rejected']:,} + duplicates {r['duplicates']:,} -> "
          f"{'balanced' if r['balanced'] else 'NOT BALANCED'}")
    if r["by_reason"]:
        print("quarantine by reason: " + ", ".join(f"{k} {v}" for k, v in r["by_reason"].items()))
    print(f"last ingest: {info['last_ingest_time'] or 'never'}")
    print("champions: " + (", ".join(f"{t} {v}" for t, v in info["champions"].items())
                           or "none (ticklake train promotes a version that beats naive)"))
    for ticker, e in info["realised_forecasts"].items():
        print(f"  realised {ticker}: {e['forecasts']} forecasts, MAE model {e['mae_model']:.4f} "
              f"vs naive {e['mae_naive']:.4f}, 80% interval coverage {e['coverage_80']:.0%}")


@app.command()
def maintain(
    lake: Lake = None,
    retention_hours: Annotated[int, typer.Option(
        help="Vacuum files unreferenced for longer than this (>= 168).")] = 168,
) -> None:
    """Compact small files, write Delta log checkpoints and vacuum; safe while jobs run."""
    from ticklake.maintain import maintain as run_maintenance

    _setup_logging()
    settings = _settings(lake_dir=lake)
    try:
        report = run_maintenance(settings.lake_dir, retention_hours)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for name, entry in report.items():
        print(f"{name:<20} files {entry['files_before']:>5} -> {entry['files_after']:<5} "
              f"vacuumed {entry['vacuumed']}" + (f"  ({entry['skipped']})" if entry["skipped"]
                                                  else ""))


@app.command()
def dashboard(lake: Lake = None) -> None:
    """Serve the Streamlit dashboard alone (reads the Delta tables; never starts Spark)."""
    import subprocess

    from ticklake.up import dashboard_command

    settings = _settings(lake_dir=lake)
    print(f"dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}")
    raise typer.Exit(subprocess.call(dashboard_command(settings)))


def main() -> None:
    """Console entry point: ticklake errors become one clear line and exit code 2."""
    try:
        app()
    except TicklakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
