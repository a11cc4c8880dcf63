"""The embedded broker's server.properties and the pinned jars it runs from (no JVM started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError, DependencyError
from config.jars import (
    DELTA_SESSION_CONF,
    HADOOP_AWS,
    KAFKA_BROKER,
    S3_SESSION_CONF,
    SPARK_CONNECTORS,
    SPARK_DEFAULTS_HEADER,
    connector_conf,
    problems,
    require,
    write_spark_defaults,
)
from config.settings import Settings
from ticklake.broker_config import server_properties


def test_plaintext_node_is_broker_and_controller_on_loopback(tmp_path: Path) -> None:
    """One KRaft node: clients on 127.0.0.1:PORT, the controller on its own loopback port,
    one replica for every internal topic, no topic created by accident."""
    props = server_properties(Settings(), 9092, 9093, tmp_path / "data")
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"


def test_a_container_listens_everywhere_and_advertises_its_name(tmp_path: Path) -> None:
    """`broker serve --listen-host 0.0.0.0 --advertised-host broker`: the controller stays on
    loopback."""
    props = server_properties(Settings(), 9092, 9093, tmp_path, "0.0.0.0", "broker")
    assert props["listeners"] == "PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://broker:9092"


def test_sasl_ssl_listener_takes_the_clients_credential_and_a_pem_keystore(tmp_path: Path
                                                                          ) -> None:
    """SASL_SSL with SCRAM-SHA-512: the listener's JAAS line logs in as the client's user, the
    key store is the PEM file, the CA is the broker's own trust store."""
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="app", kafka_sasl_password="pw-1234",
                        kafka_ssl_ca_location=tmp_path / "ca.pem",
                        broker_ssl_keystore_location=tmp_path / "keystore.pem")
    props = server_properties(settings, 9092, 9093, tmp_path)
    assert props["listeners"].startswith("SASL_SSL://127.0.0.1:9092,")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="app" '
        'password="pw-1234";')
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.location"] == str(tmp_path / "keystore.pem")
    assert props["ssl.truststore.location"] == str(tmp_path / "ca.pem")


def test_plain_listener_accepts_exactly_the_clients_user(tmp_path: Path) -> None:
    """SASL_PLAINTEXT with PLAIN: the JAAS line lists the one user and password it accepts."""
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                        kafka_sasl_username="app", kafka_sasl_password="pw-1234")
    jaas = server_properties(settings, 9092, 9093, tmp_path)[
        "listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert jaas.endswith('username="app" password="pw-1234" user_app="pw-1234";')


@pytest.mark.parametrize(("overrides", "message"), [
    ({"kafka_security_protocol": "SSL"}, "needs TICKLAKE_BROKER_SSL_KEYSTORE_LOCATION"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"},
     "needs TICKLAKE_KAFKA_SASL_MECHANISM .* TICKLAKE_KAFKA_SASL_PASSWORD"),
    ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
      "kafka_sasl_username": "app", "kafka_sasl_password": 'quo"te'}, "JAAS line"),
])
def test_incomplete_security_settings_name_what_is_missing(
        tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    """A protocol the embedded broker cannot serve with the given settings raises ConfigError
    naming the variables to set."""
    with pytest.raises(ConfigError, match=message):
        server_properties(Settings(**overrides), 9092, 9093, tmp_path)  # type: ignore[arg-type]


def test_missing_or_altered_jars_are_named(tmp_path: Path) -> None:
    """An empty jars folder: every jar is missing and `require` says to run make setup; a jar
    whose bytes differ is named with both SHA-256."""
    assert len(problems(KAFKA_BROKER, tmp_path)) == len(KAFKA_BROKER.checksums()) == 45
    with pytest.raises(DependencyError, match=r"45 jar\(s\) of kafka-broker 4.4.0 .*`make setup`"):
        require(KAFKA_BROKER, tmp_path)
    folder = KAFKA_BROKER.directory(tmp_path)
    folder.mkdir(parents=True)
    (folder / "kafka-clients-4.4.0.jar").write_bytes(b"not the jar")
    altered = [p for p in problems(KAFKA_BROKER, tmp_path) if p.startswith("kafka-clients")]
    assert len(altered) == 1 and "has SHA-256" in altered[0] and "expected" in altered[0]


def test_spark_connectors_load_by_path_and_keep_the_users_spark_defaults(tmp_path: Path
                                                                         ) -> None:
    """Without the jars the connector settings say to run make setup; with them, spark.jars
    lists each jar by absolute path, and writing spark-defaults.conf twice replaces ticklake's
    lines and keeps the user's."""
    with pytest.raises(DependencyError, match=r"13 jar\(s\) of spark-connectors 4.2.0 .*"
                                              r"`make setup`"):
        connector_conf(tmp_path)
    for bundle in (SPARK_CONNECTORS, HADOOP_AWS):
        folder = bundle.directory(tmp_path)
        folder.mkdir(parents=True)
        for name in bundle.checksums():
            (folder / name).write_bytes(b"")  # names only: require does not hash
    conf = connector_conf(tmp_path)
    jars = conf["spark.jars"].split(",")
    assert sorted(Path(j).name for j in jars) == sorted(SPARK_CONNECTORS.checksums())
    assert all(Path(j).is_absolute() for j in jars)
    assert any("spark-sql-kafka-0-10_2.13-4.2.0" in j for j in jars)
    assert any("delta-spark_4.2_2.13-4.4.0" in j for j in jars)
    for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath"):
        s3 = conf[key].split(":")
        assert sorted(Path(j).name for j in s3) == sorted(HADOOP_AWS.checksums())
        assert any("hadoop-aws-3.5.0.jar" in j for j in s3)
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    defaults = tmp_path / "conf" / "spark-defaults.conf"
    defaults.parent.mkdir()
    defaults.write_text("# mine\nspark.executor.memory 2g\nspark.jars /old.jar\n")
    write_spark_defaults(tmp_path, defaults)
    write_spark_defaults(tmp_path, defaults)
    lines = defaults.read_text().splitlines()
    assert lines[:2] == ["# mine", "spark.executor.memory 2g"]
    assert lines.count(SPARK_DEFAULTS_HEADER) == 1
    assert dict(line.split(" ", 1) for line in lines[3:]) == {
        "spark.jars": conf["spark.jars"], **DELTA_SESSION_CONF,
        "spark.driver.extraClassPath": conf["spark.driver.extraClassPath"],
        "spark.executor.extraClassPath": conf["spark.executor.extraClassPath"],
        **S3_SESSION_CONF}


def test_cluster_ids_are_22_base64_characters_never_starting_with_a_dash() -> None:
    """The storage tool reads an id that starts with '-' as an option: none does (2,000
    draws; about 1 in 64 random ids would)."""
    import re

    from ticklake.broker import cluster_id

    ids = [cluster_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) and not i.startswith("-") for i in ids)
    assert len(set(ids)) == 2000
