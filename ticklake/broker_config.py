"""The ``server.properties`` of the embedded Apache Kafka broker (:mod:`ticklake.broker`): one
KRaft node that is broker and controller, its client listener speaking the clients' own
security settings (docs/operations.md, "Security").

Kafka's names for each property: https://kafka.apache.org/documentation/#brokerconfigs.
"""

from __future__ import annotations

from pathlib import Path

from config.errors import ConfigError
from config.kafka import client_jaas
from config.settings import Settings


def jaas_line(settings: Settings) -> tuple[str, str]:
    """The SASL mechanism and the JAAS line of the broker's listener: the clients' login
    (:func:`config.kafka.client_jaas`) and, for PLAIN, the one user it accepts.

    Raises:
        ConfigError: see :func:`config.kafka.client_jaas`.
    """
    mechanism, jaas = client_jaas(settings)
    if mechanism == "PLAIN":
        user, secret = settings.kafka_sasl_username, settings.kafka_sasl_password
        assert secret is not None  # client_jaas refused a missing one
        jaas = f'{jaas[:-1]} user_{user}="{secret.get_secret_value()}";'
    return mechanism, jaas


def server_properties(settings: Settings, port: int, controller_port: int, log_dir: Path,
                      listen_host: str = "127.0.0.1", advertised_host: str = "127.0.0.1"
                      ) -> dict[str, str]:
    """The ``server.properties`` of a one-node KRaft cluster: clients on
    ``listen_host:port`` (told to connect to ``advertised_host:port``), the controller on
    ``127.0.0.1:controller_port``.

    Raises:
        ConfigError: an SSL protocol without ``broker_ssl_keystore_location``, or a SASL
            protocol without mechanism, user name and password.
    """
    protocol = settings.kafka_security_protocol
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"{protocol}://{listen_host}:{port},"
                     f"CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"{protocol}://{advertised_host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": protocol,
        "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        # one node: every internal topic has one replica
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # a 2-core laptop: fewer threads than Kafka's defaults (3 network, 8 I/O)
        "num.network.threads": "2",
        "num.io.threads": "4",
        "auto.create.topics.enable": "false",
    }
    if protocol in ("SSL", "SASL_SSL"):
        keystore = settings.broker_ssl_keystore_location
        if keystore is None:
            raise ConfigError(f"TICKLAKE_KAFKA_SECURITY_PROTOCOL={protocol} on the embedded "
                              "broker needs TICKLAKE_BROKER_SSL_KEYSTORE_LOCATION (a PEM file "
                              "with its unencrypted PKCS#8 key and its certificate)")
        props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore)})
        if settings.kafka_ssl_ca_location is not None:  # the broker's own inter-broker client
            props.update({"ssl.truststore.type": "PEM",
                          "ssl.truststore.location": str(settings.kafka_ssl_ca_location)})
    if protocol.startswith("SASL_"):
        mechanism, jaas = jaas_line(settings)
        listener = protocol.lower()
        props.update({
            "sasl.enabled.mechanisms": mechanism,
            "sasl.mechanism.inter.broker.protocol": mechanism,
            f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config": jaas,
        })
    return props
