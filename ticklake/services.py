"""Child processes of ``ticklake up``: started in their own process groups, logged to
``<run_dir>/logs/<name>.log``, stopped by PID in reverse order; health waits for servers."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from config.errors import ConfigError, TicklakeError
from config.location import table_uri
from config.settings import Settings
from ticklake.processes import port_free, stop_pid, wait_until
from visualization.server import dashboard_command

log = logging.getLogger(__name__)


def cli_command(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "ticklake", *args, "--lake", table_uri(settings.lake_dir)]


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

    def start(self, name: str, cmd: list[str], to_terminal: bool = False,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group; output to its log (or the terminal);
        ``env`` replaces the inherited environment (:func:`config.runtime.child_environment`)."""
        out = None if to_terminal else self.log_path(name).open("ab")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
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
        self.wait(name, self.start(name, cmd, to_terminal), to_terminal)

    def wait(self, name: str, proc: subprocess.Popen[bytes], to_terminal: bool = False) -> None:
        """Wait for ``proc`` (started by :meth:`start`) to exit.

        Raises:
            TicklakeError: it exited non-zero (the message points at its log).
        """
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


def wait_for_dashboard(settings: Settings, timeout_s: float = 60.0) -> bool:
    """True once Streamlit's health endpoint answers ``ok``."""
    url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/_stcore/health"
    return _wait_for(url, lambda body: body.strip() == b"ok", timeout_s)


def wait_for_api(settings: Settings, timeout_s: float = 60.0) -> bool:
    """True once the prediction API's ``/health`` answers with status ``ok``."""
    url = f"http://{settings.serve_host}:{settings.serve_port}/health"
    return _wait_for(url, lambda body: json.loads(body).get("status") == "ok", timeout_s)


def _wait_for(url: str, ok: Callable[[bytes], bool], timeout_s: float) -> bool:
    def answered() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                return ok(resp.read())
        except (OSError, ValueError):
            return False

    return wait_until(answered, timeout_s, interval_s=0.5)


def start_server(
    services: Services, name: str, host: str, port: int, cmd: list[str], setting: str, flag: str
) -> str:
    """Start an HTTP server child on host:port; refuse when the port is taken."""
    if not port_free(host, port):
        raise ConfigError(f"port {port} is taken; set {setting} to a free one or pass {flag}")
    services.start(name, cmd)
    return f"http://{host}:{port}"


def start_dashboard(settings: Settings, services: Services) -> str:
    return start_server(services, "dashboard", settings.dashboard_host, settings.dashboard_port,
                         dashboard_command(settings), "TICKLAKE_DASHBOARD_PORT",
                         "--no-dashboard")


def start_api(settings: Settings, services: Services) -> str:
    return start_server(services, "api", settings.serve_host, settings.serve_port,
                         cli_command(settings, "serve", "--host", settings.serve_host, "--port",
                              str(settings.serve_port)), "TICKLAKE_SERVE_PORT", "--no-api")


