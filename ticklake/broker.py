"""The embedded Apache Kafka broker and topic admin.

:class:`EmbeddedBroker` runs Apache Kafka 4.4 (the jars ``make setup`` resolves from Maven
Central, :data:`config.jars.KAFKA_BROKER`) as one KRaft node that is broker and controller at
once, on 127.0.0.1. Its files live under ``<run_dir>/broker-<port>/``: ``server.properties``
and the log directory ``data/``, formatted on the first start (Kafka's storage tool,
``--standalone``) and kept, so a restarted broker serves every record it had acknowledged.

The client listener speaks ``Settings.kafka_security_protocol``: PLAINTEXT by default; with
SSL or SASL_SSL it serves ``Settings.broker_ssl_keystore_location`` (a PEM key and chain) and
with SASL_* it accepts the SCRAM or PLAIN credential of ``kafka_sasl_username`` /
``kafka_sasl_password`` (SCRAM credentials are stored at format time), the same settings every
ticklake client uses. The controller listener is PLAINTEXT on 127.0.0.1 only.

Any Apache Kafka cluster can be used instead: set ``bootstrap_servers``.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from config.errors import BrokerAuthenticationFailed, BrokerUnavailable, DependencyError
from config.jars import KAFKA_BROKER, MAVEN_DIR, require
from config.kafka import client_config, redact
from config.runtime import child_environment
from config.settings import Settings
from ticklake.broker_config import server_properties
from ticklake.processes import LocalServer, free_port, port_free, wait_until

log = logging.getLogger(__name__)
LOCAL_HOSTS = ("127.0.0.1", "localhost")
LOG4J_CONFIG = MAVEN_DIR / "kafka-log4j2.properties"
JVM_FLAGS = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
             "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true")
"""Kafka's own ``KAFKA_JVM_PERFORMANCE_OPTS`` (bin/kafka-run-class.sh)."""


def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient whose librdkafka log lines go to Python logging (debug)."""
    return AdminClient(client_config(settings, "admin"))


def broker_reachable(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when a broker answers a metadata request within ``timeout_s``.

    Raises:
        BrokerAuthenticationFailed: a broker answered but refused the SASL credentials or the
            TLS handshake (the message names the user and mechanism, never the password).
    """
    refusals: list[str] = []

    def on_error(err: KafkaError) -> None:
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            refusals.append(err.str())

    # log_level 2: librdkafka's own lines about a refused or absent broker are not repeated; the
    # refusal is raised below, absence is the caller's to report
    admin = AdminClient(client_config(settings, "admin", error_cb=on_error, log_level=2))
    try:
        admin.list_topics(timeout=timeout_s)
        return True
    except KafkaException:
        admin.poll(0)  # serves the error callbacks
        if refusals:
            reason = redact(refusals[0], settings)
            raise BrokerAuthenticationFailed(
                f"the Kafka broker at {settings.bootstrap_servers} refused the connection of "
                f"user {settings.kafka_sasl_username!r} ({settings.kafka_security_protocol}, "
                f"{settings.kafka_sasl_mechanism}): {reason}. Check TICKLAKE_KAFKA_SASL_USERNAME"
                ", TICKLAKE_KAFKA_SASL_PASSWORD and TICKLAKE_KAFKA_SSL_CA_LOCATION.") from None
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


def cluster_id() -> str:
    """A new KRaft cluster id: 16 random bytes in URL-safe base64 without padding (22
    characters), never starting with ``-`` (the storage tool would read it as an option;
    Kafka's own ``Uuid.randomUuid`` skips those too)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value


@dataclass(frozen=True)
class EmbeddedBroker(LocalServer):
    """Apache Kafka on 127.0.0.1 (KRaft, one combined node), tracked by a PID file under
    ``settings.run_dir``; its configuration and log directory in :attr:`home`."""

    stop_timeout_s: ClassVar[float] = 30.0
    """A controlled shutdown of Kafka takes a few seconds; give it 30 before SIGKILL."""

    @property
    def name(self) -> str:
        return f"broker-{self.host_port[1]}"

    @property
    def host_port(self) -> tuple[str, int]:
        first = self.settings.bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return host, int(port)

    @property
    def home(self) -> Path:
        """``<run_dir>/broker-<port>/``: ``server.properties`` and the log directory ``data/``."""
        return (self.settings.run_dir / self.name).resolve()

    def _controller_port(self, config: Path) -> int:
        """The controller port this broker's log directory was formatted with (KRaft records
        the voter's endpoint), or a free one for a new broker."""
        if config.exists():
            for line in config.read_text().splitlines():
                key, _, value = line.partition("=")
                if key == "controller.quorum.bootstrap.servers":
                    return int(value.rpartition(":")[2])
        return free_port()

    def write_config(self, listen_host: str = "127.0.0.1", advertised_host: str = "127.0.0.1"
                     ) -> Path:
        """Write ``server.properties`` (mode 0600: it may hold a SASL password); return it."""
        config = self.home / "server.properties"
        props = server_properties(self.settings, self.host_port[1],
                                  self._controller_port(config), self.home / "data",
                                  listen_host, advertised_host)
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# written by ticklake.broker on every start\n")
            out.writelines(f"{k}={v}\n" for k, v in props.items())
        return config

    def _java(self, classpath: str, *args: str, heap: str | None = None) -> list[str]:
        heap = heap or self.settings.broker_heap
        return ["java", f"-Xmx{heap}", f"-Xms{heap}", *JVM_FLAGS,
                f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", classpath, *args]

    def format_storage(self, classpath: str, config: Path) -> None:
        """Format the log directory (``kafka.tools.StorageTool format --standalone``) with a
        new cluster id and, with SCRAM, the client's credential.

        Raises:
            DependencyError: the storage tool failed (its last lines are in the message).
        """
        args = ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id(),
                "-c", str(config)]
        mechanism = self.settings.kafka_sasl_mechanism
        if (self.settings.kafka_security_protocol.startswith("SASL_") and mechanism
                and mechanism.startswith("SCRAM")):
            user, secret = self.settings.kafka_sasl_username, self.settings.kafka_sasl_password
            assert user is not None and secret is not None  # checked by server_properties
            args += ["--add-scram",
                     f"{mechanism}=[name={user},password={secret.get_secret_value()}]"]
        done = subprocess.run(self._java(classpath, *args, heap="256m"), capture_output=True,
                              text=True, check=False, env=child_environment())
        if done.returncode != 0:
            tail = redact("\n".join(done.stdout.strip().splitlines()[-5:]
                                     + done.stderr.strip().splitlines()[-5:]), self.settings)
            raise DependencyError(f"Kafka's storage tool could not format {self.home / 'data'} "
                                  f"(exit {done.returncode}):\n{tail}")
        log.info("formatted the broker's log directory %s", self.home / "data")

    def command(self, listen_host: str = "127.0.0.1", advertised_host: str = "127.0.0.1"
                ) -> list[str]:
        """Write the configuration, format the log directory if it is new, and return the
        broker's command line (``java ... kafka.Kafka server.properties``).

        Raises:
            DependencyError: Java or the Kafka jars are missing, or formatting failed.
            ConfigError: the security settings are incomplete for the embedded broker.
        """
        classpath = require(KAFKA_BROKER, self.settings.jars_dir)
        config = self.write_config(listen_host, advertised_host)
        if not (self.home / "data" / "meta.properties").exists():
            self.format_storage(classpath, config)
        return self._java(classpath, "kafka.Kafka", str(config))

    def serve(self, listen_host: str, advertised_host: str) -> None:
        """Run the broker in the foreground: this process becomes the JVM (``exec``), so a
        container's init sends SIGTERM straight to Kafka. For Compose and other containers;
        on a laptop use :meth:`start`."""
        argv = self.command(listen_host, advertised_host)
        log.info("exec Apache Kafka %s on %s:%d (advertised as %s:%d), data in %s",
                 KAFKA_BROKER.version, listen_host, self.host_port[1], advertised_host,
                 self.host_port[1], self.home / "data")
        os.execvpe(argv[0], argv, child_environment())

    def start(self, timeout_s: float = 60.0) -> int:
        """Start Apache Kafka (formatting its log directory on the first start) and wait until
        it answers a metadata request.

        Returns:
            The broker's PID.

        Raises:
            DependencyError: the address is not local, or Java or the Kafka jars are missing.
            ConfigError: the security settings are incomplete for the embedded broker.
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
        if not port_free(host, port):
            raise BrokerUnavailable(
                f"something else already listens on {host}:{port}; stop it or pick another "
                "port with --bootstrap-servers 127.0.0.1:PORT"
            )
        proc = self.launch(self.command(), child_environment())

        def answering() -> bool:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerUnavailable(
                    f"Apache Kafka exited with code {proc.returncode}; see {self.log_file}"
                )
            return not port_free(host, port) and broker_reachable(self.settings, 2.0)

        if wait_until(answering, timeout_s, interval_s=0.1):
            log.info("embedded Apache Kafka %s on %s:%d (pid %d, %s, data in %s)",
                     KAFKA_BROKER.version, host, port, proc.pid,
                     self.settings.kafka_security_protocol, self.home / "data")
            return proc.pid
        self.stop()
        raise BrokerUnavailable(f"Apache Kafka did not answer on {host}:{port} within "
                                f"{timeout_s}s; see {self.log_file}")
