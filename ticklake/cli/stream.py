"""Verbs that move ticks: ``up``, ``broker``, ``produce``, ``watch``, ``job``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from config.errors import ConfigError
from config.options import Bootstrap, Lake, StartAfter, Tickers, UntilCaughtUp, split_tickers
from config.runtime import setup_logging
from config.settings import load_settings
from producer.sources import SOURCE_NAMES

broker_app = typer.Typer(help="The embedded Apache Kafka broker on 127.0.0.1 (KRaft, one node; "
                         "its log directory kept under the run directory).", no_args_is_help=True)
cluster_app = typer.Typer(help="A Spark standalone cluster on this machine (master + workers on "
                          "127.0.0.1) to run the jobs on with --master spark://127.0.0.1:7077.",
                          no_args_is_help=True)
Source = Annotated[str, typer.Option(help=f"Tick source: {' | '.join(SOURCE_NAMES)}.")]
Csv = Annotated[list[Path] | None, typer.Option(
    "--csv", help="Replay these CSVs (yfinance layout, one ticker per file) instead of "
    "bokeh-sampledata.")]
Interval = Annotated[str | None, typer.Option(
    help="yfinance: bar interval, 1m 2m 5m 15m 30m 60m or 1h \\[default: 1m].")]
Fallback = Annotated[str | None, typer.Option(
    help="yfinance: publish this source instead if Yahoo cannot be reached: synthetic or "
    "replay \\[default: none, exit non-zero].")]
def _check_source(source: str) -> str:
    if source not in SOURCE_NAMES:
        raise ConfigError(f"--source {source!r} is not one of {', '.join(SOURCE_NAMES)}")
    return source


def up(
    until_caught_up: Annotated[bool, typer.Option(
        "--until-caught-up",
        help="Stop once every produced tick is in Gold and every ticker has a model; print a "
        "JSON summary as the last line.")] = False,
    lake: Lake = None,
    source: Source = "replay",
    csv: Csv = None,
    tickers: Tickers = None,
    rate: Annotated[float | None, typer.Option(help="Ticks per second (default: as fast as "
                                               "possible for replay, 50 for synthetic).")] = None,
    count: Annotated[int | None, typer.Option(help="Synthetic: stop after N ticks.")] = None,
    interval: Interval = None,
    fallback: Fallback = None,
    bootstrap_servers: Bootstrap = None,
    dashboard: Annotated[bool, typer.Option(help="Serve the Streamlit dashboard.")] = True,
    api: Annotated[bool, typer.Option(help="Serve the prediction API (FastAPI).")] = True,
    full_backtest: Annotated[bool, typer.Option(
        "--full-backtest", help="Train with the full walk-forward backtest of `ticklake train` "
        "(TICKLAKE_BACKTEST_FOLDS, 4; TICKLAKE_EPOCHS, 20) instead of 2 folds and at most 10 "
        "epochs per LSTM fit.")] = False,
    local_s3: Annotated[bool, typer.Option(
        "--local-s3", help="Serve the s3:// lake from a local S3 endpoint (moto, in memory: "
        "gone when up stops) on 127.0.0.1:9878, creating its bucket.")] = False,
) -> None:
    """Run the whole lakehouse: broker, Spark jobs, producer, training, dashboard, API.

    Ctrl-C stops everything it started. With --until-caught-up it stops by itself.
    """
    from ticklake.up import UpOptions, run_up

    setup_logging()
    settings = load_settings(lake_dir=lake, bootstrap_servers=bootstrap_servers,
                             tickers=split_tickers(tickers), yahoo_interval=interval,
                             yahoo_fallback=fallback)
    options = UpOptions(
        source=_check_source(source), csv=list(csv or []),
        tickers=split_tickers(tickers), rate=rate, count=count,
        until_caught_up=until_caught_up, dashboard=dashboard, api=api,
        full_backtest=full_backtest, local_s3=local_s3,
    )
    summary = run_up(settings, options)
    if summary is not None:
        print(json.dumps(summary, default=str))
        if not summary.get("ok"):
            raise typer.Exit(1)


@broker_app.command("start")
def broker_start(bootstrap_servers: Bootstrap = None) -> None:
    """Start the embedded Apache Kafka broker in the background and create the topic.

    The first start formats its log directory (<run dir>/broker-<port>/data); later starts
    serve what it holds. Watch the topic with `ticklake watch` or `kcat -b HOST:PORT -C -t TOPIC`.
    """
    from ticklake.broker import EmbeddedBroker, ensure_topic

    setup_logging()
    settings = load_settings(bootstrap_servers=bootstrap_servers)
    broker = EmbeddedBroker(settings)
    pid = broker.start()
    partitions = ensure_topic(settings)
    print(f"Apache Kafka running on {settings.bootstrap_servers} (pid {pid}, data in "
          f"{broker.home / 'data'}); topic {settings.topic} has {partitions} partitions")


@broker_app.command("serve")
def broker_serve(
    bootstrap_servers: Bootstrap = None,
    listen_host: Annotated[str, typer.Option(
        help="Address the client listener binds (0.0.0.0 inside a container).")] = "127.0.0.1",
    advertised_host: Annotated[str | None, typer.Option(
        help="Host name clients are told to connect to \\[default: the --listen-host].")] = None,
) -> None:
    """Run the embedded Apache Kafka broker in the foreground (for containers).

    The port is the one of --bootstrap-servers; SIGTERM stops it cleanly. Compose's broker
    service runs it.
    """
    from ticklake.broker import EmbeddedBroker

    setup_logging()
    settings = load_settings(bootstrap_servers=bootstrap_servers)
    EmbeddedBroker(settings).serve(listen_host, advertised_host or listen_host)


@broker_app.command("topic")
def broker_topic(
    bootstrap_servers: Bootstrap = None,
    wait_s: Annotated[float, typer.Option(
        "--wait-s", min=0, max=3600,
        help="Wait this long for the broker to answer first (0-3600 s).")] = 0.0,
) -> None:
    """Create the topic if it is missing, on any broker (the embedded one or your own)."""
    from ticklake.broker import broker_reachable, ensure_topic
    from ticklake.processes import wait_until

    setup_logging()
    settings = load_settings(bootstrap_servers=bootstrap_servers)
    if wait_s:
        wait_until(lambda: broker_reachable(settings, 1.0), wait_s)
    partitions = ensure_topic(settings)
    print(f"topic {settings.topic} on {settings.bootstrap_servers} has {partitions} partitions")


@broker_app.command("stop")
def broker_stop(bootstrap_servers: Bootstrap = None) -> None:
    """Stop the embedded broker started by `ticklake broker start` (by its PID file).

    Its log directory stays for the next start.
    """
    from ticklake.broker import EmbeddedBroker

    settings = load_settings(bootstrap_servers=bootstrap_servers)
    stopped = EmbeddedBroker(settings).stop()
    print("broker stopped" if stopped else "no embedded broker was running")


@broker_app.command("status")
def broker_status(bootstrap_servers: Bootstrap = None) -> None:
    """Say whether a broker answers, and the embedded broker's PID."""
    from ticklake.broker import EmbeddedBroker, broker_reachable

    settings = load_settings(bootstrap_servers=bootstrap_servers)
    pid = EmbeddedBroker(settings).pid()
    reachable = broker_reachable(settings)
    print(f"{settings.bootstrap_servers}: {'reachable' if reachable else 'not reachable'}"
          + (f" (embedded Apache Kafka, pid {pid})" if pid else ""))
    if not reachable:
        raise typer.Exit(1)


MasterPort = Annotated[int | None, typer.Option(
    "--port", help="Master port \\[default: 7077]. The local cluster binds 127.0.0.1 only.")]
WebUIPort = Annotated[int | None, typer.Option(
    "--webui-port", help="Master web UI port \\[default: 8080].")]


@cluster_app.command("start")
def cluster_start(
    workers: Annotated[int | None, typer.Option(help="Workers \\[default: 2].")] = None,
    port: MasterPort = None,
    webui_port: WebUIPort = None,
) -> None:
    """Start a standalone Spark master and its workers (spark-class) on 127.0.0.1, wait until
    every worker is ALIVE, and print the master URL."""
    from ticklake.cluster import LocalCluster

    setup_logging()
    cluster = LocalCluster(load_settings(cluster_workers=workers, cluster_master_port=port,
                                         cluster_webui_port=webui_port))
    url = cluster.start()
    print(f"Spark master {url} with {cluster.alive_workers()} worker(s); UI {cluster.web_url}")
    print(f"run the jobs on it: spark-submit --master {url} pipeline/bronze.py, or "
          f"TICKLAKE_SPARK_MASTER={url} ticklake job bronze silver gold")


@cluster_app.command("stop")
def cluster_stop(
    workers: Annotated[int | None, typer.Option(help="Workers \\[default: 2].")] = None,
) -> None:
    """Stop the workers and the master started by `ticklake cluster start` (by PID)."""
    from ticklake.cluster import LocalCluster

    stopped = LocalCluster(load_settings(cluster_workers=workers)).stop()
    print("cluster stopped" if stopped else "no cluster was running")


@cluster_app.command("status")
def cluster_status(port: MasterPort = None, webui_port: WebUIPort = None) -> None:
    """Workers and applications the standalone master knows (its /json/ status)."""
    from ticklake.cluster import LocalCluster

    cluster = LocalCluster(load_settings(cluster_master_port=port, cluster_webui_port=webui_port))
    state = cluster.state()
    if state is None:
        print(f"no Spark master answers on {cluster.web_url}")
        raise typer.Exit(1)
    print(f"{cluster.url}: {cluster.alive_workers()} ALIVE worker(s), "
          f"{len(state.get('activeapps', []))} running application(s)")
    for app in state.get("activeapps", []):
        print(f"  {app.get('id')} {app.get('name')} cores {app.get('cores')}")


def produce(
    source: Source = "replay",
    csv: Csv = None,
    tickers: Tickers = None,
    rate: Annotated[float | None, typer.Option(help="Ticks per second (synthetic).")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after N ticks.")] = None,
    interval: Interval = None,
    fallback: Fallback = None,
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Publish ticks to the topic (key = ticker, idempotent producer, acks=all)."""
    from producer.publisher import publish
    from producer.sources.factory import build_source
    from ticklake.broker import ensure_topic

    setup_logging()
    settings = load_settings(bootstrap_servers=bootstrap_servers, tickers=split_tickers(tickers),
                             yahoo_interval=interval, yahoo_fallback=fallback)
    tick_source = build_source(settings, _check_source(source), list(csv or []),
                               split_tickers(tickers), rate, count)
    ensure_topic(settings)
    ticks = tick_source.ticks()
    if count is not None:
        ticks = islice(ticks, count)
    total = tick_source.expected_count()
    report = publish(ticks, settings, total=min(total, count) if total and count else total or count)
    print(json.dumps({"produced": report.produced, "failed": report.failed,
                      "end_offsets": report.end_offsets}))


def backfill(
    csv: Csv = None,
    tickers: Tickers = None,
    first_day: Annotated[datetime | None, typer.Option(
        "--from", formats=["%Y-%m-%d"],
        help="First day to send (YYYY-MM-DD) \\[default: the input's first; required with "
        "--source yfinance].")] = None,
    last_day: Annotated[datetime | None, typer.Option(
        "--to", formats=["%Y-%m-%d"],
        help="Last day to send, inclusive \\[default: the input's last; yesterday (UTC) with "
        "--source yfinance].")] = None,
    source: Annotated[str, typer.Option(
        "--source", help="replay (--csv files, else bokeh-sampledata) or yfinance (Yahoo's "
        "history of --tickers).")] = "replay",
    interval: Annotated[str, typer.Option(
        help="yfinance: bar interval, 1d 1m 2m 5m 15m 30m 60m or 1h.")] = "1d",
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Publish history older than a ticker's watermark on purpose (--csv bars, bokeh's, or
    Yahoo's with --source yfinance --from D).

    The ticks carry source "backfill": Silver does not quarantine them as late.

    Gold merges them into the past bars they touch and recomputes the indicators from there.

    Ids are the replay's: a re-run adds only duplicates to quarantine, no Silver or Gold row.

    The running jobs (ticklake up, or ticklake job ...) read them from the topic.
    """
    from producer.publisher import publish
    from producer.sources.replay import ReplaySource
    from ticklake.broker import ensure_topic

    setup_logging()
    settings = load_settings(bootstrap_servers=bootstrap_servers, tickers=split_tickers(tickers))
    first = first_day.date() if first_day else None
    last = last_day.date() if last_day else None
    if source == "yfinance":
        from producer.sources.yahoo import backfill_bars

        if first is None or csv:
            raise ConfigError("backfill --source yfinance needs --from YYYY-MM-DD (and takes "
                              "no --csv); --to defaults to yesterday")
        last = last or (datetime.now(UTC) - timedelta(days=1)).date()
        symbols = split_tickers(tickers) or list(settings.tickers)
        bars = backfill_bars(symbols, interval, first, last, settings.yahoo_deadline_s)
        replay = ReplaySource(symbols, backfill=True, first_day=first, last_day=last, bars=bars)
    elif source == "replay":
        replay = ReplaySource(split_tickers(tickers) or ([] if csv else list(settings.tickers)),
                              list(csv or []), backfill=True, first_day=first, last_day=last)
    else:
        raise ConfigError(f"--source {source!r} is not one of replay, yfinance")
    ensure_topic(settings)
    report = publish(replay.ticks(), settings, total=replay.expected_count())
    days = replay.bars["day"]
    print(json.dumps({"produced": report.produced, "failed": report.failed,
                      "bars": len(replay.bars), "first_day": str(days.min()),
                      "last_day": str(days.max()), "end_offsets": report.end_offsets}))


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

    settings = load_settings(bootstrap_servers=bootstrap_servers)
    require_broker(settings)
    for line in watch_topic(settings, from_beginning, count, idle_s):
        print(line, flush=True)


def job(
    names: Annotated[list[str], typer.Argument(
        help="bronze, silver and/or gold (the per-layer jobs), or live (one query writes "
        "all three layers per micro-batch: lower latency; a lake is kept by one of the two).")],
    until_caught_up: UntilCaughtUp = False,
    lake: Lake = None,
    bootstrap_servers: Bootstrap = None,
    start_after: StartAfter = None,
) -> None:
    """Run streaming jobs (one Spark application). Same as `spark-submit pipeline/<job>.py`."""
    from pipeline.jobs import run_jobs

    setup_logging()
    settings = load_settings(lake_dir=lake, bootstrap_servers=bootstrap_servers)
    run_jobs(settings, names, until_caught_up, start_after)
