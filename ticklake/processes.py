"""Background servers on 127.0.0.1 tracked by PID files, stopped by PID (psutil)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import psutil
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from config.settings import Settings


def alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (psutil)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """Stop ``pid`` and what it started: SIGTERM, then SIGKILL after ``timeout_s``.

    The process is signalled first and given ``timeout_s`` to stop its own children (a Spark
    driver stops its queries and its JVM; signalling the JVM at the same time would pull Spark
    away under the driver). Children still alive afterwards get SIGTERM, then SIGKILL.
    """
    try:
        parent = psutil.Process(pid)
        children = parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    _terminate([parent], timeout_s)
    alive_children = [c for c in children if c.is_running()]
    if alive_children:
        _terminate(alive_children, timeout_s)


def _terminate(procs: list[psutil.Process], timeout_s: float) -> None:
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in left:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=timeout_s)


def wait_until(ready: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``ready()`` every ``interval_s`` until it is true or ``timeout_s`` passed (tenacity).

    Returns:
        Whether ``ready()`` became true in time.
    """
    retrying = Retrying(retry=retry_if_result(lambda ok: not ok),
                        stop=stop_after_delay(timeout_s), wait=wait_fixed(interval_s))
    try:
        return bool(retrying(ready))
    except RetryError:
        return False


def port_free(host: str, port: int) -> bool:
    """True when nothing accepts a TCP connection on ``host:port`` (a refusal is instant)."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalServer:
    """A background server on 127.0.0.1 tracked by ``<run_dir>/<name>.pid``, logging to
    ``<run_dir>/logs/<name>.log``. Subclasses give the ``name`` and a ``start``."""

    settings: Settings
    stop_timeout_s: ClassVar[float] = 10.0
    """Seconds :meth:`stop` gives the server after SIGTERM before SIGKILL."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.settings.run_dir / "logs" / f"{self.name}.log"

    def launch(self, args: list[str], env: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        """Start ``args`` in its own session, output appended to :attr:`log_file`, its PID
        written to :attr:`pid_file`."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        self.pid_file.write_text(str(proc.pid))
        return proc

    def pid(self) -> int | None:
        """PID of the running server this file points at, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if alive(pid) else None

    def stop(self, timeout_s: float | None = None) -> bool:
        """Stop the server by its PID (SIGTERM, then SIGKILL after ``timeout_s``, default
        :attr:`stop_timeout_s`); returns whether one ran."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_pid(pid, self.stop_timeout_s if timeout_s is None else timeout_s)
        return True
