"""SASL/TLS settings reach every Kafka client the same way, and the password is never logged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError
from config.settings import Settings

PASSWORD = "s3cret-sasl-password-42"
SECURITY = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "ticklake-app",
    "sasl.password": PASSWORD,
    "ssl.ca.location": "/etc/kafka/ca.pem",
    "ssl.certificate.location": "/etc/kafka/client.pem",
    "ssl.key.location": "/etc/kafka/client.key",
}


def secured() -> Settings:
    return Settings(
        bootstrap_servers="kafka-1.internal:9093", kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="ticklake-app",
        kafka_sasl_password=PASSWORD, kafka_ssl_ca_location="/etc/kafka/ca.pem",
        kafka_ssl_certificate_location="/etc/kafka/client.pem",
        kafka_ssl_key_location="/etc/kafka/client.key")


class Captured:
    """Stands in for a confluent-kafka client class: records its configuration, then stops
    the caller (no broker is contacted)."""

    configs: list[dict[str, Any]] = []

    def __init__(self, conf: dict[str, Any]) -> None:
        Captured.configs.append(dict(conf))
        raise RuntimeError("captured")


def captured_config(monkeypatch: pytest.MonkeyPatch, target: str, call: Any) -> dict[str, Any]:
    Captured.configs = []
    monkeypatch.setattr(target, Captured)
    try:
        call()
    except RuntimeError as err:
        assert str(err) == "captured"
    assert len(Captured.configs) == 1
    return Captured.configs[0]


def test_every_client_gets_the_same_security_settings(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline import monitoring
    from producer.publisher import publish
    from ticklake.broker import admin_client
    from ticklake.watch import watch_topic

    settings = secured()
    caplog.set_level(logging.DEBUG)
    clients = {
        "producer": captured_config(monkeypatch, "producer.publisher.Producer",
                                    lambda: publish(iter(()), settings, progress=False)),
        "watch": captured_config(monkeypatch, "ticklake.watch.Consumer",
                                 lambda: next(watch_topic(settings))),
        "admin": captured_config(monkeypatch, "ticklake.broker.AdminClient",
                                 lambda: admin_client(settings)),
        # the dashboard's and /metrics' offset probe (it reports the failure, not raises)
        "monitoring probe": captured_config(
            monkeypatch, "confluent_kafka.Consumer",
            lambda: monitoring.broker_end_offsets(settings)),
    }
    for name, conf in clients.items():
        assert conf["bootstrap.servers"] == "kafka-1.internal:9093", name
        assert {k: conf.get(k) for k in SECURITY} == SECURITY, name
    assert clients["producer"]["enable.idempotence"] is True
    assert clients["watch"]["group.id"] == "ticklake-watch"
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


def test_spark_options_are_the_same_connection_in_the_java_clients_names(
        tmp_path: Path) -> None:
    """Spark's Kafka source gets the same servers, protocol and credential: SCRAM in a JAAS
    line, the CA as a PEM trust store, the client certificate and key as a PEM key store."""
    from config.kafka import spark_options

    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    settings = secured().with_overrides(kafka_ssl_certificate_location=cert,
                                        kafka_ssl_key_location=key)
    assert spark_options(settings) == {
        "kafka.bootstrap.servers": "kafka-1.internal:9093",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule "
                                  f'required username="ticklake-app" password="{PASSWORD}";',
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/etc/kafka/ca.pem",
        "kafka.ssl.keystore.type": "PEM",
        "kafka.ssl.keystore.certificate.chain": cert.read_text(),
        "kafka.ssl.keystore.key": key.read_text(),
    }
    plain = settings.with_overrides(kafka_security_protocol="SASL_PLAINTEXT",
                                    kafka_sasl_mechanism="PLAIN")
    options = spark_options(plain)
    assert options["kafka.sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert not [k for k in options if k.startswith("kafka.ssl.")]
    assert spark_options(Settings()) == {"kafka.bootstrap.servers": "127.0.0.1:9092",
                                         "kafka.security.protocol": "PLAINTEXT"}
    with pytest.raises(ConfigError, match="TICKLAKE_KAFKA_SASL_USERNAME"):
        spark_options(Settings(**{**plain.model_dump(), "kafka_sasl_username": None}))


def test_plaintext_by_default_and_no_empty_sasl_entries() -> None:
    from config.kafka import client_config

    conf = client_config(Settings(), "consumer")
    assert conf["security.protocol"] == "PLAINTEXT"
    assert not [k for k in conf if k.startswith(("sasl.", "ssl."))]


def test_a_bad_security_setting_names_the_allowed_values() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="SASL_SSL"):
        Settings(kafka_security_protocol="SASL_TLS")
