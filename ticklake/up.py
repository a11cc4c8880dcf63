"""``ticklake up``: the whole lakehouse from one command, and nothing left behind.

Every child (broker, Spark jobs, trainer, dashboard) runs in its own process group, is logged
to ``<run_dir>/logs/<name>.log`` and is stopped by PID (SIGTERM, then SIGKILL) when ``up``
returns, fails or is interrupted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config.errors import BrokerUnavailable, ConfigError, TicklakeError
from config.location import is_object_store, require_lake, table_uri
from config.runtime import child_environment, set_environment
from config.settings import Settings
from producer.publisher import publish
from producer.sources import TickSource
from producer.sources.factory import DEFAULT_SYNTHETIC_RATE, build_source
from ticklake.broker import EmbeddedBroker, broker_reachable, ensure_topic
from ticklake.services import (
    Services,
    cli_command,
    start_api,
    start_dashboard,
    wait_for_api,
    wait_for_dashboard,
)

log = logging.getLogger(__name__)
RETRAIN_INTERVAL_S = 600.0
QUICK_BACKTEST = ("--folds", "2", "--epochs", "10")
"""`ticklake train` flags of `up` without ``--full-backtest``: 2 walk-forward test folds and
LSTM fits of at most 10 epochs (`ticklake train` alone: TICKLAKE_BACKTEST_FOLDS, 4, and
TICKLAKE_EPOCHS, 20). The backtest table and the registry say which ran."""
QUICK_RUN_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"
"""HotSpot flag of the jobs of `up --until-caught-up` (before TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS,
whose flags win): the C1 compiler alone, without C2, which pays off only in a long run
(docs/architecture.md, "Measured facts")."""
ALERT_INTERVAL_S = 30.0
"""Seconds between alert checks while `up` runs with TICKLAKE_ALERT_WEBHOOK_URL set."""


@dataclass
class UpOptions:
    """What ``ticklake up`` runs (see ``ticklake up --help``)."""

    source: str = "replay"
    csv: list[Path] = field(default_factory=list)
    tickers: list[str] | None = None
    rate: float | None = None
    count: int | None = None
    until_caught_up: bool = False
    dashboard: bool = True
    api: bool = True
    full_backtest: bool = False
    local_s3: bool = False


def _ensure_broker(settings: Settings, services: Services) -> None:
    if broker_reachable(settings, 1.0):
        log.info("using the Kafka broker at %s", settings.bootstrap_servers)
        return
    broker = EmbeddedBroker(settings)
    host = broker.host_port[0]
    if host not in ("127.0.0.1", "localhost"):
        raise BrokerUnavailable(f"no Kafka broker answers at {settings.bootstrap_servers}")
    broker.start()
    services.cleanups.append(broker.stop)


def _start_local_s3(settings: Settings, services: Services) -> Settings:
    """Start the local S3 endpoint (:mod:`ticklake.s3_endpoint`) for the lake's bucket, point
    this process and its children at it (the AWS variables) and return the settings with
    the lake reached through it.

    Raises:
        ConfigError: the lake is not an ``s3://`` URI.
        DependencyError: the endpoint's port is taken or it does not start.
    """
    from ticklake.s3_endpoint import LocalS3Endpoint

    if not is_object_store(settings.lake_dir):
        raise ConfigError(f"--local-s3 serves an s3:// lake, not {settings.lake_dir}: give "
                          "--lake s3://BUCKET/PREFIX")
    endpoint = LocalS3Endpoint(settings)
    endpoint.start()
    services.cleanups.append(endpoint.stop)
    set_environment(endpoint.environment())
    lake = table_uri(settings.lake_dir)
    endpoint.create_bucket(urlsplit(lake).netloc)
    log.info("lake %s on the local S3 endpoint %s (in memory: gone when `up` stops)", lake,
             endpoint.url)
    return settings.with_overrides(lake_dir=lake)


def _train_flags(options: UpOptions) -> tuple[str, ...]:
    return () if options.full_backtest else QUICK_BACKTEST


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_up(settings: Settings, options: UpOptions) -> dict[str, Any] | None:
    """Run the lakehouse; with ``until_caught_up`` return the summary, else run until Ctrl-C
    or SIGTERM.

    SIGTERM and SIGINT both stop everything started, in reverse order (also when the process
    was started in the background, where a shell leaves SIGINT ignored).

    Raises:
        TicklakeError: a step failed (everything started is stopped first).
        KeyboardInterrupt: stopped by a signal during ``until_caught_up`` (after stopping what
            it started).
    """
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.monotonic()
    source = build_source(settings, options.source, options.csv, options.tickers,
                          options.rate if options.rate or options.until_caught_up
                          or options.source != "synthetic" else DEFAULT_SYNTHETIC_RATE,
                          options.count)
    if options.until_caught_up and source.expected_count() is None:
        raise ConfigError("--until-caught-up needs a finite source: replay, or synthetic with "
                          "--count N")
    with Services(settings) as services, _gates(settings) as gates:
        if options.local_s3:
            settings = _start_local_s3(settings, services)
        require_lake(settings.lake_dir)
        _ensure_broker(settings, services)
        ensure_topic(settings)
        # Spark starts up while the servers do and the producer publishes; the queries start
        # once everything is published (--start-after)
        jobs = services.start("jobs", cli_command(
            settings, "job", *settings.streaming_jobs, "--until-caught-up",
            "--bootstrap-servers", settings.bootstrap_servers,
            "--start-after", str(gates.published)), env=child_environment({
                "TICKLAKE_SPARK_DRIVER_JAVA_OPTIONS": f"{QUICK_RUN_JAVA_OPTIONS} "
                f"{settings.spark_driver_java_options}".strip()})
        ) if options.until_caught_up else None
        url = start_dashboard(settings, services) if options.dashboard else None
        api_url = start_api(settings, services) if options.api else None
        if jobs is not None:
            return _run_until_caught_up(settings, services, source, started, url, api_url,
                                        _train_flags(options), jobs, gates)
        _run_live(settings, services, source, url, api_url, options)
    return None


@dataclass(frozen=True)
class _Gates:
    """The ``--start-after`` files of one ``up --until-caught-up`` run."""

    published: Path
    caught_up: Path


@contextmanager
def _gates(settings: Settings) -> Iterator[_Gates]:
    gates = _Gates(*(settings.run_dir / f"up-{os.getpid()}.{step}"
                     for step in ("published", "caught-up")))
    try:
        yield gates
    finally:
        gates.published.unlink(missing_ok=True)
        gates.caught_up.unlink(missing_ok=True)


def _run_until_caught_up(
    settings: Settings, services: Services, source: TickSource, started: float, url: str | None,
    api_url: str | None, train_flags: tuple[str, ...], jobs: subprocess.Popen[bytes],
    gates: _Gates,
) -> dict[str, Any]:
    report = publish(source.ticks(), settings, total=source.expected_count())
    log.info("published %d ticks; running %s until caught up", report.produced,
             " -> ".join(settings.streaming_jobs))
    gates.published.touch()
    # the trainer imports TensorFlow while the jobs run, at a lower CPU priority
    train = services.start("train", cli_command(settings, "train", *train_flags,
                                                "--start-after", str(gates.caught_up)),
                           to_terminal=True)
    services.wait("jobs", jobs)
    log.info("pipeline caught up; training one model per ticker")
    gates.caught_up.touch()
    services.wait("train", train, to_terminal=True)
    dashboard_ok = wait_for_dashboard(settings) if url else None
    api_ok = wait_for_api(settings) if api_url else None
    from ticklake.summary import build_summary

    return build_summary(settings, source, report, time.monotonic() - started, url, dashboard_ok,
                         api_url, api_ok)


def _run_live(
    settings: Settings, services: Services, source: TickSource, url: str | None,
    api_url: str | None, options: UpOptions,
) -> None:
    services.start("jobs", cli_command(settings, "job", *settings.streaming_jobs,
                                       "--bootstrap-servers", settings.bootstrap_servers))
    if url:
        print(f"dashboard: {url}", flush=True)
    if api_url:
        print(f"prediction API: {api_url}/docs", flush=True)
    outcome: dict[str, Any] = {}
    stop = threading.Event()

    def produce() -> None:
        try:
            outcome["report"] = publish(source.ticks(), settings, total=source.expected_count(),
                                        stop=stop)
        except Exception as exc:  # reported by the main loop
            outcome["error"] = exc

    producer = threading.Thread(target=produce, name="producer", daemon=True)
    producer.start()
    from storage.facts import lake_status

    last_train = last_alerts = 0.0
    last_maintenance = time.monotonic()
    try:
        while True:
            time.sleep(2.0)
            services.check_alive()
            if time.monotonic() - last_maintenance > settings.maintenance_interval_s:
                last_maintenance = time.monotonic()
                from storage.maintenance import maintain

                for name, entry in maintain(settings.lake_dir).items():
                    log.info("maintenance %s: files %d -> %d", name, entry["files_before"],
                             entry["files_after"])
            if "error" in outcome:
                raise TicklakeError(f"producer failed: {outcome.pop('error')}")
            if settings.alert_webhook_url and time.monotonic() - last_alerts > ALERT_INTERVAL_S:
                last_alerts = time.monotonic()
                from visualization.alerts import check_alerts

                check_alerts(settings, settings.lake_dir, datetime.now(UTC))
            gold = lake_status(settings.lake_dir)["tables"].get("gold.daily_metrics")
            if gold and gold["rows"] and time.monotonic() - last_train > RETRAIN_INTERVAL_S:
                last_train = time.monotonic()
                services.start("train", cli_command(settings, "train", "--changed-only",
                                                    *_train_flags(options)))
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        stop.set()  # the producer flushes and ends before the broker is stopped
        producer.join(timeout=30)
