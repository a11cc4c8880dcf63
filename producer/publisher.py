"""Publish ticks to Kafka with the idempotent producer (librdkafka via confluent-kafka)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, Producer

from config.errors import DeliveryError
from config.kafka import client_config
from config.progress import progress as progress_bar
from config.settings import Settings
from producer.messages import TickMessage

log = logging.getLogger(__name__)


@dataclass
class PublishReport:
    """What a publish run did.

    Attributes:
        produced: messages the broker acknowledged (acks=all).
        failed: messages whose delivery failed after librdkafka's retries.
        end_offsets: per partition, the offset after the last acknowledged message.
        first_errors: up to 5 delivery error strings.
    """

    produced: int = 0
    failed: int = 0
    end_offsets: dict[int, int] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """librdkafka delivery callback: count acknowledged and failed messages."""
        if err is not None:
            self.failed += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(str(err))
            return
        self.produced += 1
        partition, offset = msg.partition(), msg.offset()
        if partition is not None and offset is not None and offset >= 0:
            self.end_offsets[partition] = max(self.end_offsets.get(partition, 0), offset + 1)


def publish(
    ticks: Iterable[TickMessage],
    settings: Settings,
    total: int | None = None,
    progress: bool = True,
    producer: Producer | None = None,
    stop: threading.Event | None = None,
) -> PublishReport:
    """Publish ``ticks`` to ``settings.topic`` (key = ticker) and flush.

    Args:
        ticks: the messages, published in order.
        settings: broker address and topic.
        total: expected count, for the progress bar.
        progress: show progress on stderr (a tqdm bar on a terminal, else a log line every
            10 s: :func:`config.progress.progress`).
        producer: an existing producer (tests); default a new idempotent one.
        stop: when set, publishing stops after the current tick (the rest is flushed).

    Returns:
        The :class:`PublishReport` after every message was acknowledged or failed.

    Raises:
        DeliveryError: some messages were not delivered (the report is attached as
            ``.report``); nothing is silently dropped.
    """
    report = PublishReport()
    kafka = producer or Producer(client_config(settings, "producer"))
    bar = progress_bar("produce", total, "tick", progress, log, mininterval=0.5)
    try:
        for i, tick in enumerate(ticks):
            if stop is not None and stop.is_set():
                break
            value = tick.to_json_bytes()
            while True:
                try:
                    kafka.produce(
                        settings.topic,
                        key=tick.ticker.encode(),
                        value=value,
                        on_delivery=report.on_delivery,
                    )
                    break
                except BufferError:
                    kafka.poll(0.1)  # local queue full: serve callbacks, then retry
            if i % 1000 == 0:
                kafka.poll(0)
            bar.update(1)
    finally:
        remaining = kafka.flush(timeout=180)
        bar.close()
    if remaining:
        report.failed += remaining
    if report.failed:
        error = DeliveryError(
            f"{report.failed} tick(s) were not delivered to {settings.topic} at "
            f"{settings.bootstrap_servers} ({report.produced} were); first errors: "
            f"{report.first_errors}"
        )
        error.report = report  # type: ignore[attr-defined]
        raise error
    log.info("published %d ticks to %s", report.produced, settings.topic)
    return report
