"""librdkafka configuration of every Kafka client, built from :class:`~config.settings.Settings`.

One function, :func:`client_config`, builds the configuration of the producer, of the
consumers (``ticklake watch``, offset probes) and of the admin client; :func:`spark_options`
turns it into the ``kafka.*`` options of the Spark source. Security settings (TLS, SASL) reach
every client the same way. The SASL password is a ``SecretStr``: it is revealed only into the
configuration handed to librdkafka, and never logged.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

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


def spark_options(settings: Settings) -> dict[str, str]:
    """The ``kafka.*`` options of a Spark Kafka source (JVM connector or ``ticklake-kafka``):
    bootstrap servers and security, as strings."""
    conf = client_config(settings, "admin")
    return {f"kafka.{k}": str(v) for k, v in conf.items() if k != "logger"}
