"""The one settings object of ticklake.

Only this module reads environment variables (prefix ``TICKLAKE_``, e.g.
``TICKLAKE_BOOTSTRAP_SERVERS=kafka:9092``). Every other module takes a
:class:`Settings` as an argument. Defaults are those of the embedded laptop run:
an Apache Kafka broker on 127.0.0.1, Spark in local mode, the lake in ``./lake``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.errors import ConfigError
from config.location import LakePath
from config.tables import DEFAULT_BAR_INTERVALS, REQUIRED_BAR_INTERVALS, bar_interval_seconds

TICKER_PATTERN = re.compile(r"^\^?[A-Z0-9][A-Z0-9.=\-]{0,11}$")
"""A ticker symbol as Yahoo Finance writes them: an optional ``^`` (index, ``^GSPC``), then
1-12 characters: an upper-case letter or digit first, then letters, digits, ``.``, ``=`` or
``-`` (``AAPL``, ``BRK.B``, ``BRK-B``, ``EURUSD=X``, ``BTC-USD``, ``GC=F``, ``0700.HK``). No
``/`` or spaces: a ticker names a folder of the model registry and a Kafka key."""
TICKER_RULE = "an optional '^', then 1-12 of A-Z, 0-9, '.', '=', '-' (a letter or digit first)"
""":data:`TICKER_PATTERN` in words, for error messages."""

BOKEH_TICKERS = ("AAPL", "IBM", "MSFT", "GOOG", "FB")


class Settings(BaseSettings):
    """Frozen settings; override with ``TICKLAKE_<FIELD>`` environment variables or CLI flags.

    Raises:
        pydantic.ValidationError: a value is out of its allowed range; the message names the
            field, the value and the range.
    """

    model_config = SettingsConfigDict(env_prefix="TICKLAKE_", frozen=True, extra="forbid")

    # Kafka
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    topic: str = Field("market.ticks", min_length=1, description="Topic the ticks go to.")
    topic_partitions: int = Field(
        4, ge=1, le=1024, description="Partitions of the topic when ticklake creates it.")
    producer_linger_ms: int = Field(
        5, ge=0, le=10_000, description="Producer linger.ms: how long it waits to fill a batch.")
    broker_heap: str = Field(
        "512m", pattern=r"^[1-9][0-9]*[mg]$",
        description="Heap of the embedded Apache Kafka broker's JVM (-Xmx, e.g. 512m or 1g; "
        "Kafka's own scripts default to 1g).")
    broker_ssl_keystore_location: Path | None = Field(
        None, description="Embedded broker with an SSL or SASL_SSL protocol: a PEM file with "
        "its private key (PKCS#8, unencrypted) and certificate chain (ssl.keystore.location).")
    jars_dir: Path = Field(
        Path(__file__).resolve().parents[1] / ".jars",
        description="Where `make setup` puts the JVM jars it resolves from Maven Central "
        "(Apache Kafka's broker); nothing is downloaded at run time.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol of every Kafka client.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="librdkafka sasl.mechanism (with a SASL_* protocol).")
    kafka_sasl_username: str | None = Field(None, description="librdkafka sasl.username.")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="librdkafka sasl.password; a secret: never defaulted, never logged.")
    kafka_ssl_ca_location: Path | None = Field(
        None, description="librdkafka ssl.ca.location (CA bundle that signed the brokers).")
    kafka_ssl_certificate_location: Path | None = Field(
        None, description="librdkafka ssl.certificate.location (client certificate, mTLS).")
    kafka_ssl_key_location: Path | None = Field(
        None, description="librdkafka ssl.key.location (client key, mTLS).")

    # Live source (ticklake produce --source yfinance)
    yahoo_interval: Literal["1m", "2m", "5m", "15m", "30m", "60m", "1h"] = Field(
        "1m", description="Bar interval the yfinance source polls (Yahoo's intraday intervals).")
    yahoo_poll_s: float = Field(
        60.0, ge=5, le=3600, description="Seconds between two polls of Yahoo (5-3600).")
    yahoo_deadline_s: float = Field(
        30.0, ge=1, le=600,
        description="Wall-clock budget of one ticker's poll, retries included (1-600 s).")
    yahoo_fallback: Literal["none", "synthetic", "replay"] = Field(
        "none", description="Source to publish instead when Yahoo cannot be reached at the "
        "start; none: exit non-zero.")

    # Lake
    lake_dir: LakePath = Field(
        Path("lake"), validation_alias=AliasChoices("lake_dir", "ticklake_lake_dir",
                                                    "ticklake_lake"),
        description="Root of the Delta tables: a local folder or s3://BUCKET[/PREFIX] "
        "(endpoint and credentials from the AWS_* variables); TICKLAKE_LAKE is read too.")
    checkpoint_dir: LakePath | None = Field(
        None, description="Streaming checkpoints; default <lake_dir>/_checkpoints."
    )
    run_dir: Path = Field(Path(".ticklake"), description="PID files and logs of services.")

    # Data
    tickers: Annotated[tuple[str, ...], NoDecode] = Field(
        BOKEH_TICKERS, min_length=1, description="Tickers the sources replay or synthesise.")
    ticker_allowlist: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        None,
        description="If set, Silver quarantines well-formed ticks of other tickers as "
        "'ticker_unknown' (comma-separated); unset accepts every well-formed ticker.",
    )
    max_message_bytes: int = Field(
        65_536, ge=256, le=10_485_760,
        description="Largest tick message Silver accepts; larger ones are quarantined as "
        "'oversize'.")
    max_future_skew_s: float = Field(
        300.0, ge=0, description="Ticks whose event time is further in the future are rejected."
    )

    bar_intervals: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_BAR_INTERVALS, min_length=2, max_length=8,
        description="Gold's OHLCV bar intervals, one table each (gold/bars_<interval>); "
        "comma-separated, 1h and 1d always among them (the indicators read them).")
    allowed_lateness_s: float = Field(
        3600.0, ge=0,
        description="Watermark delay: a tick whose event time is more than this behind the "
        "latest event time Silver holds for its ticker is quarantined as 'late'.",
    )

    maintenance_interval_s: float = Field(
        600.0, gt=0, description="ticklake up runs table maintenance this often (live mode)."
    )

    # Spark
    spark_master: str = Field(
        "local[2]", description="Spark master when spark-submit --master gave none (spark-submit "
        "wins), e.g. local[2] or spark://HOST:7077.")
    spark_driver_host: str = Field(
        "127.0.0.1", description="Address executors use to reach the driver (spark.driver.host).")
    spark_driver_bind_address: str = Field(
        "127.0.0.1", description="Address the driver and its UI listen on.")
    spark_ui_enabled: bool = Field(True, description="Serve the Spark UI (spark.ui.enabled).")
    spark_ui_port: int = Field(4040, ge=1, le=65535, description="First port the Spark UI tries.")
    spark_driver_memory: str = Field(
        "1g", pattern=r"^[1-9][0-9]*[mg]$",
        description="Heap of the driver JVM a job starts (spark.driver.memory; Spark's default). "
        "Under spark-submit its --driver-memory applies instead.")
    spark_driver_pretouch: bool = Field(
        True, description="Start the driver JVM with its whole heap committed and touched "
        "(-Xms = spark_driver_memory, -XX:+AlwaysPreTouch), so that its resident size does not "
        "grow as the heap expands under load; the heap's RAM is taken at start. Under "
        "spark-submit pass --driver-java-options instead.")
    spark_driver_java_options: str = Field(
        "", pattern=r"^(-[^\s]+( -[^\s]+)*)?$",
        description="More HotSpot flags for the driver JVM a job starts "
        "(spark.driver.extraJavaOptions), space-separated, each starting with '-'. "
        "`ticklake up --until-caught-up` runs its jobs with -XX:TieredStopAtLevel=1 (the C1 "
        "compiler alone: a short run starts faster). Under spark-submit pass "
        "--driver-java-options instead.")
    spark_shuffle_partitions: int = Field(
        4, ge=1, le=100_000, description="spark.sql.shuffle.partitions of the jobs.")
    pyspark_python: str = Field(sys.executable, description="Python of the Spark workers.")
    cluster_master_port: int = Field(7077, ge=1, le=65535,
                                     description="ticklake cluster: the master's port.")
    cluster_webui_port: int = Field(8080, ge=1, le=65535,
                                    description="ticklake cluster: the master's web UI port.")
    cluster_workers: int = Field(2, ge=1, le=64, description="ticklake cluster: workers.")
    cluster_worker_cores: int = Field(1, ge=1, le=256, description="Cores per worker.")
    cluster_worker_memory: str = Field("3g", pattern=r"^[1-9][0-9]*[mg]$",
                                       description="Memory per worker, e.g. 3g or 1536m.")
    trigger_interval_s: float = Field(
        2.0, gt=0, le=3600, description="Processing-time trigger of the streaming queries.")
    storage_outage_s: float = Field(
        300.0, ge=0, le=86_400, description="S3 lake: how long a job keeps restarting a query "
        "that failed because the S3 endpoint could not be reached, with back-off from 2 s to "
        "30 s, before it gives up (0-86400 s; 0: give up at once).")
    streaming_mode: Literal["layers", "live"] = Field(
        "layers", description="How `ticklake up` keeps the lake: layers = three chained "
        "queries (ticklake job bronze silver gold; the larger micro-batches of a backlog or "
        "replay); live = one query writing Bronze, Silver and Gold per micro-batch (ticklake "
        "job live; lower tick -> Gold latency). A lake is kept by one mode only.")
    max_offsets_per_trigger: int | None = Field(
        250_000, ge=1, description="Kafka source admission control: records per micro-batch "
        "(maxOffsetsPerTrigger); unset = everything available.")
    max_files_per_trigger: int | None = Field(
        None, ge=1, description="Delta source admission control: data files per micro-batch of "
        "Silver and Gold (maxFilesPerTrigger); takes precedence over max_bytes_per_trigger.")
    max_bytes_per_trigger: int | None = Field(
        32 * 2**20, ge=1, description="Delta source admission control: bytes of data files per "
        "micro-batch of Silver and Gold (maxBytesPerTrigger; 32 MiB ~ 500,000 Bronze rows); "
        "whole commits, at least one; unset (and no max_files_per_trigger) = every new commit.")
    fail_on_data_loss: bool = Field(
        True, description="Kafka source failOnDataLoss: fail when offsets it needs are gone."
    )

    fault_after_commit: str | None = Field(
        None, pattern=r"^[a-z0-9_]+\.[a-z0-9_]+@[0-9]+$",
        description="Fault point for tests, off by default: TABLE@BATCH (e.g. silver.ticks@1) "
        "ends the job's process right after it commits that micro-batch to that table.")

    # Analytics
    window_days: int = Field(7, ge=2, le=365, description="Days per LSTM input window.")
    epochs: int = Field(20, ge=1, le=10_000, description="Maximum epochs per LSTM fit.")
    holdout_fraction: float = Field(
        0.2, gt=0, lt=0.9, description="Share of windows in the walk-forward test folds."
    )
    backtest_folds: int = Field(4, ge=1, le=50, description="Walk-forward test folds.")
    validation_fraction: float = Field(
        0.1, gt=0, lt=0.5,
        description="Share of each training part used for early stopping and the interval.",
    )
    train_workers: int = Field(2, ge=1, le=64, description="Tickers trained in parallel.")
    train_threads: int = Field(1, ge=1, le=64, description="TensorFlow threads per worker.")
    seed: int = Field(42, description="Keras seed of every fit.")
    forecast_horizons: Annotated[tuple[int, ...], NoDecode] = Field(
        (1, 5), min_length=1, max_length=5,
        description="Trading days ahead to forecast, each backtested, calibrated and served "
        "(comma-separated, 1-60 each, e.g. 1,5).")
    champion_significance: float = Field(
        0.05, gt=0, lt=1,
        description="One-sided Diebold-Mariano p-value a model must stay below to beat naive "
        "and serve (analytics/champion.py).")

    # Prediction API
    serve_host: str = Field("127.0.0.1", description="Address the prediction API binds to; "
                            "anything but loopback needs TICKLAKE_API_KEY.")
    serve_port: int = Field(8000, ge=1, le=65535, description="Port of the prediction API.")
    api_key: SecretStr | None = Field(
        None, min_length=16,
        description="Key the prediction API requires in the X-API-Key header (16+ characters; "
        "a secret: never logged). Required when serve_host is not loopback.")
    api_max_body_bytes: int = Field(
        65_536, ge=1_024, le=16_777_216,
        description="Largest request body the prediction API reads; larger ones get 413 before "
        "they are read (a 366-day POST /predict window is ~20 KB).")
    api_refresh_s: float = Field(
        0.5, ge=0, le=60,
        description="How often GET /predict/{ticker} looks for a new serving version or a new "
        "version of gold/daily_metrics or gold/predictions (0 = on every request); between "
        "two looks it answers from memory.")

    # Dashboard
    dashboard_host: str = Field("127.0.0.1", description="Address the dashboard binds to.")
    dashboard_port: int = Field(8501, ge=1, le=65535, description="Port of the dashboard.")
    healthy_ingest_age_s: float = Field(
        60.0, gt=0, description="Newest Bronze ingest at most this old: ingestion is healthy.")
    stalled_ingest_age_s: float = Field(
        600.0, gt=0, description="Newest Bronze ingest older than this: ingestion is stalled "
        "(alerted); in between it is late.")
    dashboard_refresh_s: float = Field(
        10.0, ge=1, le=3600,
        description="Seconds between the dashboard's automatic refreshes (a toggle pauses).")

    # Alerts
    alert_webhook_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$",
        description="Webhook that new anomaly flags and a stalled ingestion are posted to (JSON "
        "with a Slack-compatible 'text'); unset: no alerts.")
    alert_max_per_check: int = Field(
        20, ge=1, le=1000,
        description="Alerts posted one by one per check; more new ones are summed up in one.")

    @field_validator("tickers", "ticker_allowlist", "forecast_horizons", "bar_intervals",
                     mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        """A list setting from the environment: comma- or space-separated."""
        if isinstance(value, str):
            value = [t for t in re.split(r"[,\s]+", value) if t]
        return value

    @field_validator("tickers", "ticker_allowlist")
    @classmethod
    def _check_tickers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        bad = [t for t in value if not TICKER_PATTERN.fullmatch(t)]
        if bad:
            raise ValueError(f"invalid ticker(s) {bad}: a ticker is {TICKER_RULE}")
        return tuple(value)

    @field_validator("forecast_horizons")
    @classmethod
    def _check_horizons(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [h for h in value if not 1 <= h <= 60]
        if bad:
            raise ValueError(f"forecast horizon(s) {bad} out of range: each is 1-60 trading days")
        if len(set(value)) != len(value):
            raise ValueError(f"forecast horizons {list(value)} repeat a value")
        return tuple(sorted(value))

    @field_validator("bar_intervals")
    @classmethod
    def _check_intervals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seconds = {i: bar_interval_seconds(i) for i in value}  # ValueError names a bad one
        if len(set(seconds.values())) != len(value):
            raise ValueError(f"bar intervals {list(value)} repeat a length")
        missing = [i for i in REQUIRED_BAR_INTERVALS if i not in value]
        if missing:
            raise ValueError(f"bar intervals {list(value)} lack {missing}: Gold's indicators "
                             "read the 1h and 1d bars")
        return tuple(sorted(value, key=seconds.__getitem__))

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"bootstrap server {server!r} is not HOST:PORT with PORT in 1..65535"
                )
        return value

    @property
    def streaming_jobs(self) -> tuple[str, ...]:
        """The job names of :attr:`streaming_mode`: ``("bronze", "silver", "gold")`` or
        ``("live",)``."""
        return ("live",) if self.streaming_mode == "live" else ("bronze", "silver", "gold")

    def fault_batch(self, table_name: str) -> int | None:
        """The batch id after whose commit to ``table_name`` a fault point ends the process."""
        if not self.fault_after_commit:
            return None
        name, _, batch = self.fault_after_commit.partition("@")
        return int(batch) if name == table_name else None

    @property
    def checkpoints(self) -> Path:
        """Directory of the streaming checkpoints (one sub-directory per job)."""
        return self.checkpoint_dir or self.lake_dir / "_checkpoints"

    def with_overrides(self, **overrides: object) -> Settings:
        """Return a copy with the given non-None fields replaced (validated again)."""
        data: dict[str, Any] = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(**data)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, then apply non-None ``overrides`` (CLI flags).

    Raises:
        ConfigError: a value is out of its allowed range; the message names every bad field,
            its value and what is allowed.
    """
    try:
        values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}={_shown(e)}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from None


def _shown(error: Any) -> str:
    """The bad input of a validation error, masked for secret fields."""
    if any(secret in str(part) for part in error["loc"] for secret in ("password", "api_key")):
        return "'**********'"
    return repr(error.get("input"))
