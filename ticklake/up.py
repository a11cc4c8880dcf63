"""``ticklake up``: the whole lakehouse from one command, and nothing left behind.

Every child (broker, Spark jobs, trainer, dashboard) runs in its own process group, is logged
to ``<run_dir>/logs/<name>.log`` and is stopped by PID (SIGTERM, then SIGKILL) when ``up``
returns, fails or is interrupted.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.settings import Settings
from producer.publisher import publish
from producer.sources import TickSource
from ticklake.broker import EmbeddedBroker, EmbeddedS3, broker_reachable, ensure_topic, stop_pid
from ticklake.errors import BrokerUnavailable, ConfigError, TicklakeError

log = logging.getLogger(__name__)
DEFAULT_SYNTHETIC_RATE = 50.0
RETRAIN_INTERVAL_S = 600.0


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


def build_source(
    settings: Settings, source: str, csv: list[Path], tickers: list[str] | None,
    rate: float | None, count: int | None,
) -> TickSource:
    """The tick source named ``source`` (``replay`` or ``synthetic``).

    Raises:
        ConfigError: an unknown source name or a bad rate/count.
        SourceError: the replay input cannot be read.
    """
    if source == "replay":
        from producer.sources.replay import ReplaySource

        return ReplaySource(tickers or ([] if csv else list(settings.tickers)), csv)
    if source == "synthetic":
        from producer.sources.synthetic import MarketClock, SyntheticSource

        try:  # intraday event times in the New York session, from 5 trading days ago
            return SyntheticSource(tickers or list(settings.tickers), seed=settings.seed,
                                   rate_per_s=rate, count=count,
                                   clock=MarketClock.days_back(5, step_s=1.0))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    raise ConfigError(f"source {source!r} is not one of replay, synthetic")


def dashboard_command(settings: Settings) -> list[str]:
    """The ``streamlit run`` command line of the dashboard."""
    app = Path(__file__).resolve().parent.parent / "visualization" / "app.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", settings.dashboard_host,
        "--server.port", str(settings.dashboard_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--", "--lake", str(Path(settings.lake_dir).resolve()),
    ]


def _cli(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "ticklake", *args, "--lake",
            str(Path(settings.lake_dir).resolve())]


class Services:
    """Child processes of one ``up`` run, stopped in reverse order on exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cleanups: list[Callable[[], object]] = []
        self.log_dir = settings.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str, cmd: list[str], to_terminal: bool = False) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group; output to its log (or the terminal)."""
        out = None if to_terminal else self.log_path(name).open("ab")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        if out:
            out.close()
        self.children.append((name, proc))
        log.info("started %s (pid %d)%s", name, proc.pid,
                 "" if to_terminal else f", log {self.log_path(name)}")
        return proc

    def run(self, name: str, cmd: list[str], to_terminal: bool = False) -> None:
        """Run ``cmd`` to completion.

        Raises:
            TicklakeError: it exited non-zero (the message points at its log).
        """
        proc = self.start(name, cmd, to_terminal)
        code = proc.wait()
        if code != 0:
            where = "above" if to_terminal else f"in {self.log_path(name)}"
            raise TicklakeError(f"{name} failed with exit code {code}; see its output {where}")

    def check_alive(self) -> None:
        """Raise if a long-running child died."""
        for name, proc in self.children:
            code = proc.poll()
            if code is not None and name in ("jobs", "dashboard", "api"):
                raise TicklakeError(f"{name} exited with code {code}; see {self.log_path(name)}")

    def stop_all(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                log.info("stopping %s (pid %d)", name, proc.pid)
                stop_pid(proc.pid, timeout_s=20)
            proc.wait()
        self.children.clear()
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def wait_for_dashboard(settings: Settings, timeout_s: float = 60.0) -> bool:
    """True once Streamlit's health endpoint answers ``ok``."""
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/_stcore/health"
    return _wait_for(url, lambda body: body.strip() == b"ok", timeout_s)


def wait_for_api(settings: Settings, timeout_s: float = 60.0) -> bool:
    """True once the prediction API's ``/health`` answers with status ``ok``."""
    url = f"http://{settings.serve_host}:{settings.serve_port}/health"
    return _wait_for(url, lambda body: json.loads(body).get("status") == "ok", timeout_s)


def _wait_for(url: str, ok: Callable[[bytes], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                if ok(resp.read()):
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    return False


def _ensure_broker(settings: Settings, services: Services) -> None:
    if broker_reachable(settings, 1.0):
        log.info("using the Kafka broker at %s", settings.bootstrap_servers)
        return
    broker = EmbeddedBroker(settings)
    host = broker.host_port[0]
    if host not in ("127.0.0.1", "localhost"):
        raise BrokerUnavailable(f"no Kafka broker answers at {settings.bootstrap_servers}")
    # an embedded S3 started for this run goes with it; one that already ran stays
    own_s3 = (settings.broker_storage == "s3" and not settings.s3_endpoint
              and EmbeddedS3(settings).pid() is None)
    broker.start()
    services.cleanups.append(lambda: broker.stop(with_storage=own_s3))


def _start_server(
    services: Services, name: str, host: str, port: int, cmd: list[str], setting: str, flag: str
) -> str:
    """Start an HTTP server child on host:port; refuse when the port is taken."""
    if not _port_free(host, port):
        raise ConfigError(f"port {port} is taken; set {setting} to a free one or pass {flag}")
    services.start(name, cmd)
    return f"http://{host}:{port}"


def _start_dashboard(settings: Settings, services: Services) -> str:
    return _start_server(services, "dashboard", settings.dashboard_host, settings.dashboard_port,
                         dashboard_command(settings), "TICKLAKE_DASHBOARD_PORT",
                         "--no-dashboard")


def _start_api(settings: Settings, services: Services) -> str:
    return _start_server(services, "api", settings.serve_host, settings.serve_port,
                         _cli(settings, "serve", "--host", settings.serve_host, "--port",
                              str(settings.serve_port)), "TICKLAKE_SERVE_PORT", "--no-api")


def run_up(settings: Settings, options: UpOptions) -> dict[str, Any] | None:
    """Run the lakehouse; with ``until_caught_up`` return the summary, else run until Ctrl-C.

    Raises:
        TicklakeError: a step failed (everything started is stopped first).
    """
    started = time.monotonic()
    source = build_source(settings, options.source, options.csv, options.tickers,
                          options.rate if options.rate or options.until_caught_up
                          or options.source != "synthetic" else DEFAULT_SYNTHETIC_RATE,
                          options.count)
    if options.until_caught_up and source.expected_count() is None:
        raise ConfigError("--until-caught-up needs a finite source: replay, or synthetic with "
                          "--count N")
    with Services(settings) as services:
        _ensure_broker(settings, services)
        ensure_topic(settings)
        url = _start_dashboard(settings, services) if options.dashboard else None
        api_url = _start_api(settings, services) if options.api else None
        if options.until_caught_up:
            return _run_until_caught_up(settings, services, source, started, url, api_url)
        _run_live(settings, services, source, url, api_url)
    return None


def _run_until_caught_up(
    settings: Settings, services: Services, source: TickSource, started: float, url: str | None,
    api_url: str | None,
) -> dict[str, Any]:
    report = publish(source.ticks(), settings, total=source.expected_count())
    log.info("published %d ticks; running bronze -> silver -> gold until caught up", report.produced)
    services.run("jobs", _cli(settings, "job", "bronze", "silver", "gold", "--until-caught-up",
                              "--bootstrap-servers", settings.bootstrap_servers))
    log.info("pipeline caught up; training one model per ticker")
    services.run("train", _cli(settings, "train"), to_terminal=True)
    dashboard_ok = wait_for_dashboard(settings) if url else None
    api_ok = wait_for_api(settings) if api_url else None
    from ticklake.summary import build_summary

    return build_summary(settings, source, report, time.monotonic() - started, url, dashboard_ok,
                         api_url, api_ok)


def _run_live(
    settings: Settings, services: Services, source: TickSource, url: str | None,
    api_url: str | None,
) -> None:
    services.start("jobs", _cli(settings, "job", "bronze", "silver", "gold",
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
    from ticklake.status import lake_status

    last_train = 0.0
    last_maintenance = time.monotonic()
    try:
        while True:
            time.sleep(2.0)
            services.check_alive()
            if time.monotonic() - last_maintenance > settings.maintenance_interval_s:
                last_maintenance = time.monotonic()
                from ticklake.maintain import maintain

                for name, entry in maintain(settings.lake_dir).items():
                    log.info("maintenance %s: files %d -> %d", name, entry["files_before"],
                             entry["files_after"])
            if "error" in outcome:
                raise TicklakeError(f"producer failed: {outcome.pop('error')}")
            gold = lake_status(settings.lake_dir)["tables"].get("gold.daily_metrics")
            if gold and gold["rows"] and time.monotonic() - last_train > RETRAIN_INTERVAL_S:
                last_train = time.monotonic()
                services.start("train", _cli(settings, "train", "--changed-only"))
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        stop.set()  # the producer flushes and ends before the broker is stopped
        producer.join(timeout=30)
