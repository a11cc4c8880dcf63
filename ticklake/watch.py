"""``ticklake watch``: tail the tick topic without joining a consumer group.

Partitions are assigned directly (no consumer-group join), so nothing is committed and other
consumers are not affected; ``kcat -C`` reads the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from config.kafka import client_config
from config.settings import Settings


def watch_topic(
    settings: Settings, from_beginning: bool = False, count: int | None = None,
    idle_s: float | None = None,
) -> Iterator[str]:
    """Yield ``"<partition>:<offset> <key> <value>"`` lines for the topic's messages.

    Args:
        settings: broker address and topic.
        from_beginning: start at the earliest offset; default the end (new messages only).
        count: stop after this many messages (None = never).
        idle_s: stop after this many seconds without a message (None = never).
    """
    consumer = Consumer(client_config(settings, "consumer", **{"group.id": "ticklake-watch"}))
    try:
        meta = consumer.list_topics(settings.topic, timeout=10).topics[settings.topic]
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(settings.topic, p, start) for p in sorted(meta.partitions)])
        seen, last = 0, time.monotonic()
        while count is None or seen < count:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                if idle_s is not None and time.monotonic() - last > idle_s:
                    return
                continue
            seen, last = seen + 1, time.monotonic()
            key = (msg.key() or b"").decode("utf-8", "replace")
            value = (msg.value() or b"").decode("utf-8", "replace")
            yield f"{msg.partition()}:{msg.offset()} {key} {value}"
    finally:
        consumer.close()
