"""Third-party and ticklake clients against the embedded Apache Kafka broker: kcat (Debian's,
librdkafka), the lag metric on real offsets, and a SASL_SSL listener that enforces SCRAM.

kcat comes from Debian's package (``make test`` installs it: WITH_TEST_TOOLS=1 in
scripts/setup.sh). Its librdkafka (2.0.2 on bookworm) cannot authenticate with SCRAM to Kafka
4.x (a nonce bug fixed in librdkafka 2.6.1; docs/operations.md, "kcat"), so the SASL_SSL test
runs the same kcat binary on the librdkafka that the confluent-kafka wheel ships.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.errors import BrokerAuthenticationFailed
from config.settings import Settings
from tests.conftest import embedded_broker, free_port
from ticklake.broker import EmbeddedBroker, ensure_topic, require_broker

pytestmark = [pytest.mark.integration]

PASSWORD = "Sc4am-pa55word-never-logged"


def kcat(settings: Settings, *args: str, stdin: str | None = None,
         extra: tuple[str, ...] = (), librdkafka_dir: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    """Run Debian's kcat against ``settings.bootstrap_servers`` (fails the test if absent),
    on the librdkafka in ``librdkafka_dir`` if given."""
    binary = shutil.which("kcat")
    if binary is None:
        pytest.fail("kcat is not installed: run WITH_TEST_TOOLS=1 bash scripts/setup.sh "
                    "(apt-get install kcat)")
    env = dict(os.environ)
    if librdkafka_dir is not None:
        env["LD_LIBRARY_PATH"] = str(librdkafka_dir)
    return subprocess.run([binary, "-b", settings.bootstrap_servers, *extra, *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False,
                          env=env)


def wheel_librdkafka(folder: Path) -> Path:
    """A folder where ``librdkafka.so.1`` is the librdkafka of the confluent-kafka wheel."""
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parents[1] / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka-*.so.1"))
    assert found, f"no librdkafka in {libs}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "librdkafka.so.1").symlink_to(found[0])
    return folder


def ticklake_cli(settings: Settings, *args: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    """``ticklake ARGS`` in a child process, with ``settings``' broker and topic."""
    child = {**os.environ, "TICKLAKE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
             "TICKLAKE_TOPIC": settings.topic, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ticklake", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=child)


def test_kcat_lists_consumes_and_produces(broker: Settings) -> None:
    """kcat -L lists the topic with its 4 partitions; kcat -C reads every tick that
    `ticklake produce` published, keyed by ticker; a line kcat -P sends is read back by
    `ticklake watch`."""
    settings = broker.with_overrides(topic="kcat.ticks")
    produced = ticklake_cli(settings, "produce", "--source", "synthetic", "--count", "300",
                            "--tickers", "AAA,BBB,CCC")
    assert produced.returncode == 0, produced.stderr
    report = json.loads(produced.stdout.strip().splitlines()[-1])
    assert report["produced"] == 300 and report["failed"] == 0

    listing = kcat(settings, "-L", "-t", settings.topic)
    assert listing.returncode == 0, listing.stderr
    assert f'topic "{settings.topic}" with 4 partitions' in listing.stdout

    consumed = kcat(settings, "-C", "-t", settings.topic, "-o", "beginning", "-e", "-q",
                    "-f", "%p %o %k %s\n")
    assert consumed.returncode == 0, consumed.stderr
    lines = consumed.stdout.splitlines()
    assert len(lines) == 300
    ends: dict[int, int] = {}
    for line in lines:
        partition, offset, key, value = line.split(" ", 3)
        message = json.loads(value)
        assert message["ticker"] == key
        ends[int(partition)] = max(ends.get(int(partition), 0), int(offset) + 1)
    assert ends == {int(p): o for p, o in report["end_offsets"].items()}
    assert {json.loads(line.split(" ", 3)[3])["ticker"] for line in lines} == {"AAA", "BBB",
                                                                                "CCC"}

    sent = kcat(settings, "-P", "-t", settings.topic, "-k", "ZZZ", "-p", "0",
                stdin="written by kcat\n")
    assert sent.returncode == 0, sent.stderr
    from ticklake.watch import watch_topic

    seen = list(watch_topic(settings, from_beginning=True, count=301, idle_s=10))
    assert len(seen) == 301
    assert any(line.startswith("0:") and line.endswith(" ZZZ written by kcat") for line in seen)


@pytest.mark.spark
def test_lag_is_the_end_offset_minus_what_bronze_processed(spark, broker: Settings,
                                                            tmp_path: Path) -> None:
    """After Bronze caught up on 200 ticks and 120 more were published, the Prometheus
    collector's ticklake_kafka_lag per partition equals the broker's end offset (kcat) minus
    the offset Bronze processed, and sums to 120."""
    from pipeline.jobs import run_jobs
    from pipeline.monitoring import LakeCollector
    from producer.publisher import publish
    from producer.sources.synthetic import SyntheticSource

    settings = broker.with_overrides(topic="lag.ticks", lake_dir=tmp_path / "lake")
    ensure_topic(settings)
    source = SyntheticSource(["AAA", "BBB", "CCC", "DDD"], seed=7, count=320)
    ticks = list(source.ticks())
    assert publish(iter(ticks[:200]), settings, progress=False).produced == 200
    run_jobs(settings, ["bronze"], until_caught_up=True)
    report = publish(iter(ticks[200:]), settings, progress=False)
    assert report.produced == 120

    metrics = {m.name: m for m in LakeCollector(settings).collect()}
    by_partition = {
        name: {int(s.labels["partition"]): int(s.value) for s in metrics[name].samples}
        for name in ("ticklake_kafka_end_offset", "ticklake_kafka_processed_offset",
                     "ticklake_kafka_lag")}
    ends = by_partition["ticklake_kafka_end_offset"]
    # the broker's own answer, through a third-party client
    listed = kcat(settings, "-Q", "-t", f"{settings.topic}:0:-1", "-t", f"{settings.topic}:1:-1",
                  "-t", f"{settings.topic}:2:-1", "-t", f"{settings.topic}:3:-1")
    assert listed.returncode == 0, listed.stderr
    kcat_ends = {int(line.split("[")[1].split("]")[0]): int(line.rsplit(" ", 1)[1])
                 for line in listed.stdout.splitlines() if line.startswith(settings.topic)}
    assert ends == kcat_ends and sum(ends.values()) == 320
    processed = by_partition["ticklake_kafka_processed_offset"]
    assert sum(processed.values()) == 200
    assert by_partition["ticklake_kafka_lag"] == {p: ends[p] - processed.get(p, 0) for p in ends}
    assert sum(by_partition["ticklake_kafka_lag"].values()) == 120
    assert metrics["ticklake_broker_up"].samples[0].value == 1.0


def make_tls(folder: Path) -> tuple[Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl); returns the CA's PEM
    and the broker's PEM keystore (PKCS#8 key, then the certificate)."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=ticklake-test-ca")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
            "server.key")
    openssl("req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")
    keystore = folder / "keystore.pem"
    keystore.write_text((folder / "server.key").read_text() + (folder / "server.pem").read_text())
    return folder / "ca.pem", keystore


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The embedded broker with one SASL_SSL listener (SCRAM-SHA-512 over TLS), the client
    settings that reach it; stopped after the module."""
    work = tmp_path_factory.mktemp("sasl")
    ca, keystore = make_tls(work / "tls")
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{free_port()}", run_dir=work / "run",
        lake_dir=work / "lake", topic="secured.ticks", kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="ticklake-app",
        kafka_sasl_password=PASSWORD, kafka_ssl_ca_location=ca,
        broker_ssl_keystore_location=keystore)
    with embedded_broker(settings):
        yield settings


def security_env(settings: Settings, password: str = PASSWORD) -> dict[str, str]:
    return {"TICKLAKE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TICKLAKE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TICKLAKE_KAFKA_SASL_USERNAME": "ticklake-app",
            "TICKLAKE_KAFKA_SASL_PASSWORD": password,
            "TICKLAKE_KAFKA_SSL_CA_LOCATION": str(settings.kafka_ssl_ca_location),
            "TICKLAKE_LAKE_DIR": str(settings.lake_dir)}


@pytest.mark.spark
def test_every_client_connects_over_sasl_ssl(spark, secured_broker: Settings, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Over SCRAM-SHA-512 and TLS: `ticklake produce` publishes, the Bronze job reads every
    tick, `ticklake watch` and kcat (on librdkafka >= 2.6.1) consume them, the monitoring probe
    reads the end offsets; no password in any log, output or the broker's log."""
    from pipeline.jobs import run_jobs
    from pipeline.monitoring import broker_end_offsets
    from storage.delta import read_table
    from ticklake.watch import watch_topic

    settings = secured_broker
    caplog.set_level(logging.DEBUG)
    # as the CLI sets it (config.runtime.NOISY_LOGGERS): py4j's DEBUG lines echo every call
    # into the JVM, option values included
    caplog.set_level(logging.WARNING, logger="py4j")
    env = security_env(settings)
    produced = ticklake_cli(settings, "produce", "--source", "synthetic", "--count", "100",
                            "--tickers", "AAA,BBB", env=env)
    assert produced.returncode == 0, produced.stderr
    assert json.loads(produced.stdout.strip().splitlines()[-1])["produced"] == 100

    run_jobs(settings, ["bronze"], until_caught_up=True)
    from config.tables import BRONZE_TICKS

    assert read_table(BRONZE_TICKS, settings.lake_dir).num_rows == 100

    assert len(list(watch_topic(settings, from_beginning=True, count=100, idle_s=10))) == 100
    ends, state = broker_end_offsets(settings)
    assert state == "up" and ends is not None and sum(ends.values()) == 100

    auth = ("-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
            "-X", "sasl.username=ticklake-app", "-X", f"sasl.password={PASSWORD}",
            "-X", f"ssl.ca.location={settings.kafka_ssl_ca_location}")
    consumed = kcat(settings, "-C", "-t", settings.topic, "-o", "beginning", "-e", "-q",
                    extra=auth, librdkafka_dir=wheel_librdkafka(tmp_path / "librdkafka"))
    assert consumed.returncode == 0, consumed.stderr
    assert len(consumed.stdout.splitlines()) == 100

    broker_log = EmbeddedBroker(settings).log_file.read_text()
    for text in (caplog.text, produced.stdout, produced.stderr, broker_log):
        assert PASSWORD not in text


def test_a_wrong_password_is_refused_with_one_clear_line(secured_broker: Settings) -> None:
    """With a wrong password the broker refuses: `ticklake produce` exits 2 with one error
    line naming the user and the mechanism, and no password; plain TCP is not served."""
    settings = secured_broker
    wrong = "not-the-password-1"
    refused = ticklake_cli(settings, "produce", "--source", "synthetic", "--count", "5",
                           env=security_env(settings, wrong))
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, refused.stderr
    assert errors[0].startswith("error: the Kafka broker at") and "'ticklake-app'" in errors[0]
    assert "SCRAM-SHA-512" in errors[0] and "invalid credentials" in errors[0]
    assert wrong not in refused.stderr + refused.stdout and PASSWORD not in refused.stderr

    with pytest.raises(BrokerAuthenticationFailed):
        require_broker(settings.with_overrides(kafka_sasl_password=wrong))
    plain = kcat(settings, "-L", extra=("-m", "5"))
    assert plain.returncode != 0
