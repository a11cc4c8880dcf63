"""A Spark standalone cluster on this machine: one master and N workers on 127.0.0.1.

Started with ``spark-class`` from the pyspark package (the pip package has no
``start-master.sh``), each process tracked by a PID file under ``<run_dir>``, like the
embedded broker. Jobs run on it with ``spark-submit --master spark://127.0.0.1:7077 ...`` or
``TICKLAKE_SPARK_MASTER=spark://127.0.0.1:7077 ticklake job ...``; the master's web UI
(``http://127.0.0.1:8080``) and its JSON status (``/json/``) list workers and applications.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import DependencyError
from config.runtime import child_environment
from config.settings import Settings
from ticklake.processes import LocalServer, wait_until

log = logging.getLogger(__name__)


def spark_class() -> str:
    """Path of pyspark's ``spark-class`` launcher.

    Raises:
        DependencyError: pyspark is not installed (run ``make setup``).
    """
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - pyspark is a dependency
        raise DependencyError("pyspark is not installed: run `make setup`") from exc
    path = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not path.exists():
        raise DependencyError(f"{path} is missing: reinstall pyspark (`make setup`)")
    return str(path)


@dataclass(frozen=True)
class _SparkDaemon(LocalServer):
    role: str = "master"
    index: int = 0

    @property
    def name(self) -> str:
        return f"spark-{self.role}-{self.settings.cluster_master_port}-{self.index}"

    def run_class(self, args: list[str]) -> int:
        """Start ``spark-class ARGS`` with the environment of a loopback cluster."""
        env = child_environment({
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": self.settings.pyspark_python,
            "SPARK_WORKER_DIR": str((self.settings.run_dir / "spark-work").resolve()),
            "SPARK_LOG_DIR": str((self.settings.run_dir / "logs").resolve()),
        })
        return self.launch([spark_class(), *args], env).pid


class LocalCluster:
    """The standalone master and ``settings.cluster_workers`` workers of this machine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.master = _SparkDaemon(settings, "master", 0)
        self.workers = [_SparkDaemon(settings, "worker", i)
                        for i in range(settings.cluster_workers)]

    @property
    def url(self) -> str:
        """The master URL to give ``--master``."""
        return f"spark://127.0.0.1:{self.settings.cluster_master_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.cluster_webui_port}"

    def state(self) -> dict[str, Any] | None:
        """The master's JSON status (workers, applications), or None if it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.web_url}/json/", timeout=2) as resp:  # noqa: S310
                data: dict[str, Any] = json.loads(resp.read())
                return data
        except (OSError, ValueError):
            return None

    def alive_workers(self) -> int:
        state = self.state() or {}
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def start(self, timeout_s: float = 90.0) -> str:
        """Start the master and the workers (those not running yet); return the master URL
        once every worker is ALIVE.

        Raises:
            DependencyError: a process exited, or the workers did not register in time (the
                message points at the logs).
        """
        s = self.settings
        if self.master.pid() is None:
            self.master.run_class(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                "--port", str(s.cluster_master_port), "--webui-port",
                                str(s.cluster_webui_port)])
        if not wait_until(lambda: self.state() is not None, timeout_s):
            raise DependencyError(f"the Spark master did not answer on {self.web_url} within "
                                  f"{timeout_s:.0f} s; see {self.master.log_file}")
        for worker in self.workers:
            if worker.pid() is None:
                worker.run_class(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                               "--cores", str(s.cluster_worker_cores), "--memory",
                               s.cluster_worker_memory, "--webui-port", "0", self.url])
        if not wait_until(lambda: self.alive_workers() >= len(self.workers), timeout_s):
            raise DependencyError(
                f"{self.alive_workers()} of {len(self.workers)} Spark workers registered within "
                f"{timeout_s:.0f} s; see {self.settings.run_dir / 'logs'}")
        log.info("Spark standalone cluster: %s with %d worker(s), UI %s", self.url,
                 len(self.workers), self.web_url)
        return self.url

    def stop(self) -> bool:
        """Stop the workers, then the master (by PID). Returns whether any ran."""
        stopped = [w.stop(timeout_s=20) for w in self.workers]
        return self.master.stop(timeout_s=20) or any(stopped)
