"""librdkafka configuration of every Kafka client, built from :class:`~config.settings.Settings`.

One function, :func:`client_config`, builds the configuration of the producer, of the
consumers (``ticklake watch``, offset probes) and of the admin client; :func:`spark_options`
gives the same connection as the ``kafka.*`` options of Spark's Kafka source (the Java
client's property names). Security settings (TLS, SASL) reach every client the same way. The
SASL password is a ``SecretStr``: it is revealed only into the configuration handed to a
client, and never logged.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from config.errors import ConfigError
from config.settings import Settings

Role = Literal["producer", "consumer", "admin"]
LIBRDKAFKA_LOGGER = "ticklake.librdkafka"
"""Python logger that receives librdkafka's log lines (kept at WARNING by the CLI)."""
TRANSIENT_RETRIES = ("load in progress: retrying",)
"""librdkafka warnings about a retry it makes by itself and that succeeds: a broker that has
just started answers the idempotent producer's first request with "Coordinator load in
progress" while it creates its transaction state topic."""


class _DropTransientRetries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in TRANSIENT_RETRIES)


logging.getLogger(LIBRDKAFKA_LOGGER).addFilter(_DropTransientRetries())


def security_config(settings: Settings) -> dict[str, str]:
    """``security.protocol``, ``sasl.*`` and ``ssl.*`` entries of ``settings`` (set ones only).

    The returned dict holds the SASL password in clear text: hand it to librdkafka, never log it.
    """
    conf: dict[str, str] = {"security.protocol": settings.kafka_security_protocol}
    optional = {
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": settings.kafka_sasl_username,
        "sasl.password": (settings.kafka_sasl_password.get_secret_value()
                          if settings.kafka_sasl_password else None),
        "ssl.ca.location": settings.kafka_ssl_ca_location,
        "ssl.certificate.location": settings.kafka_ssl_certificate_location,
        "ssl.key.location": settings.kafka_ssl_key_location,
    }
    conf.update({k: str(v) for k, v in optional.items() if v is not None})
    return conf


def redact(text: str, settings: Settings) -> str:
    """``text`` with the SASL password of ``settings`` replaced by ``**********`` (for error
    messages built from a client's or a tool's output)."""
    secret = settings.kafka_sasl_password
    return text.replace(secret.get_secret_value(), "**********") if secret else text


def client_config(settings: Settings, role: Role, **extra: Any) -> dict[str, Any]:
    """The librdkafka configuration of a ``role`` client.

    Args:
        settings: brokers, security, producer tuning.
        role: ``producer`` (idempotent, ``acks=all``, ``linger.ms`` from the settings),
            ``consumer`` (no auto-commit: offsets live in Spark's checkpoint or nowhere) or
            ``admin``.
        extra: entries added last (e.g. ``group.id``), overriding the defaults.

    Returns:
        A dict for ``confluent_kafka.Producer``/``Consumer``/``AdminClient``; it includes a
        ``logger`` (a Python logger object, not a string).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        **security_config(settings),
        "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
    }
    if role == "producer":
        conf.update({
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": settings.producer_linger_ms,
            "compression.type": "none",
            "message.max.bytes": max(settings.max_message_bytes * 2, 1_000_000),
            "delivery.timeout.ms": 120_000,
            "client.id": "ticklake-producer",
        })
    elif role == "consumer":
        conf.update({"enable.auto.commit": False, "enable.auto.offset.store": False})
    conf.update(extra)
    return conf


def client_jaas(settings: Settings) -> tuple[str, str]:
    """The SASL mechanism and a Java client's JAAS line (``sasl.jaas.config``) for the user
    and password of ``settings``: Kafka's ``PlainLoginModule`` or ``ScramLoginModule``.

    The line holds the password in clear text: hand it to the client, never log it.

    Raises:
        ConfigError: the mechanism, user or password is missing, or the user or password
            holds ``"``, ``\\`` or a line break (JAAS quoting).
    """
    mechanism = settings.kafka_sasl_mechanism
    user, secret = settings.kafka_sasl_username, settings.kafka_sasl_password
    if mechanism is None or user is None or secret is None:
        raise ConfigError(
            f"TICKLAKE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "TICKLAKE_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), "
            "TICKLAKE_KAFKA_SASL_USERNAME and TICKLAKE_KAFKA_SASL_PASSWORD")
    password = secret.get_secret_value()
    if any(c in user + password for c in '"\\\n'):
        raise ConfigError('TICKLAKE_KAFKA_SASL_USERNAME and TICKLAKE_KAFKA_SASL_PASSWORD may not '
                          'contain ", \\ or a line break (they go into a JAAS line)')
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    return mechanism, f'{module} required username="{user}" password="{password}";'


def spark_options(settings: Settings) -> dict[str, str]:
    """The ``kafka.*`` options of Spark's Kafka source: bootstrap servers and security, with
    the Java client's property names (https://kafka.apache.org/documentation/#consumerconfigs).

    SASL goes into ``kafka.sasl.jaas.config`` (:func:`client_jaas`; Spark's Kafka source
    redacts it in its logs); the CA file into a PEM trust store; a client certificate and key
    (PEM files, the key unencrypted PKCS#8) into a PEM key store, by content.

    Raises:
        ConfigError: a SASL protocol without its mechanism, user and password.
        OSError: the client certificate or key file cannot be read.
    """
    protocol = settings.kafka_security_protocol
    options = {"kafka.bootstrap.servers": settings.bootstrap_servers,
               "kafka.security.protocol": protocol}
    if protocol.startswith("SASL_"):
        mechanism, jaas = client_jaas(settings)
        options.update({"kafka.sasl.mechanism": mechanism, "kafka.sasl.jaas.config": jaas})
    if protocol.endswith("SSL"):
        if settings.kafka_ssl_ca_location is not None:
            options.update({"kafka.ssl.truststore.type": "PEM",
                            "kafka.ssl.truststore.location": str(settings.kafka_ssl_ca_location)})
        cert, key = settings.kafka_ssl_certificate_location, settings.kafka_ssl_key_location
        if cert is not None and key is not None:
            options.update({"kafka.ssl.keystore.type": "PEM",
                            "kafka.ssl.keystore.certificate.chain": cert.read_text(),
                            "kafka.ssl.keystore.key": key.read_text()})
    return options
