"""Alerts: new anomaly flags and a stalled ingestion, posted once each to a webhook.

What the dashboard shows only to someone looking is pushed to ``TICKLAKE_ALERT_WEBHOOK_URL``
as JSON: ``{"text": "...", "alert": {"kind", "key", ...}}``. ``text`` makes the body a valid
Slack incoming-webhook message; other receivers read ``alert``.

Exactly once, across restarts: an alert's key (``anomaly:<ticker>:<window_start>:<metric>``,
``stalled:<last ingest time>``) is appended to ``<lake>/_alerts/sent.jsonl`` (flushed and
fsynced) after the receiver answered 2xx, and keys found there are never posted again. A post
that fails after its retries is not recorded, so the next check tries it again; a crash between
the answer and the record can repeat that one alert (at-least-once delivery, deduplicated by
the record). Retries (tenacity): 4 attempts, exponential back-off 0.5-4 s, on connection
errors, timeouts, 429 and 5xx; any other 4xx is not retried.

More than ``TICKLAKE_ALERT_MAX_PER_CHECK`` new alerts in one check (a replayed history flags
hundreds of days at once) are posted one by one up to that number, and the rest as one summary
alert; all are recorded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from config.location import is_object_store, lake_location
from config.settings import Settings
from config.tables import GOLD_ANOMALIES
from storage.delta import read_table
from storage.facts import lake_status
from visualization.data import ingestion_health

log = logging.getLogger(__name__)
ALERTS_DIR = "_alerts"
SENT_FILE = "sent.jsonl"
TIMEOUT_S = 10.0
"""Wall-clock limit of one POST (connect and read)."""


@dataclass(frozen=True)
class Alert:
    """One notification: a stable key, its kind, a human sentence and the facts."""

    key: str
    kind: str
    text: str
    facts: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON posted: Slack-compatible ``text`` plus the structured ``alert``."""
        return {"text": self.text, "alert": {"kind": self.kind, "key": self.key, **self.facts}}


class SentLog:
    """The keys already delivered, in ``<lake>/_alerts/sent.jsonl`` (one JSON line each)."""

    def __init__(self, lake_dir: Path) -> None:
        self.path = lake_location(lake_dir) / ALERTS_DIR / SENT_FILE
        self.keys: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    self.keys.add(json.loads(line)["key"])

    def record(self, keys: list[str], at: datetime) -> None:
        """Append ``keys`` durably (flush and fsync before returning; on S3, which has no
        appends, the object is read and replaced whole)."""
        lines = [json.dumps({"key": key, "sent_at": at.isoformat()}) for key in keys]
        if is_object_store(self.path):
            before = self.path.read_text() if self.path.exists() else ""
            self.path.write_text(before + "".join(f"{line}\n" for line in lines))
            self.keys.update(keys)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            for line in lines:
                out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.keys.update(keys)


def current_alerts(settings: Settings, lake_dir: Path, now: datetime) -> list[Alert]:
    """Every alert the lake warrants now, sent or not, oldest anomaly first.

    Args:
        settings: the ingest-age thresholds (``TICKLAKE_HEALTHY_INGEST_AGE_S``,
            ``TICKLAKE_STALLED_INGEST_AGE_S``).
        lake_dir: the lake.
        now: the clock (UTC, timezone-aware).
    """
    alerts = []
    flags = sorted(read_table(GOLD_ANOMALIES, lake_dir).to_pylist(),
                   key=lambda r: (r["window_start"], r["ticker"], r["metric"]))
    for row in flags:
        day = row["window_start"].isoformat()
        alerts.append(Alert(
            f"anomaly:{row['ticker']}:{day}:{row['metric']}", "anomaly",
            f"{row['ticker']}: {row['metric']} anomaly on {row['window_start']:%Y-%m-%d}, z = "
            f"{row['z_score']:+.1f} (value {row['value']:.6g}, 30-day mean "
            f"{row['window_mean']:.6g})",
            {"ticker": row["ticker"], "window_start": day, "metric": row["metric"],
             "value": row["value"], "z_score": row["z_score"]}))
    status = lake_status(lake_dir)
    last = (datetime.fromisoformat(status["last_ingest_time"]) if status["last_ingest_time"]
            else None)
    health = ingestion_health(last, now, settings.healthy_ingest_age_s,
                              settings.stalled_ingest_age_s)
    if health == "stalled" and last is not None:
        age = (now - last).total_seconds()
        alerts.append(Alert(
            f"stalled:{last.isoformat()}", "stalled",
            f"ingestion stalled: the newest Bronze record is {age:,.0f} s old (> "
            f"{settings.stalled_ingest_age_s:g} s), ingested {last:%Y-%m-%d %H:%M:%S} UTC",
            {"last_ingest_time": last.isoformat(), "age_s": age}))
    return alerts


def _retryable(err: BaseException) -> bool:
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return err.response.status_code == 429 or err.response.status_code >= 500
    return isinstance(err, requests.ConnectionError | requests.Timeout)


@retry(retry=retry_if_exception(_retryable), stop=stop_after_attempt(4),
       wait=wait_exponential(multiplier=0.5, max=4), reraise=True)
def post(url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON; raises ``requests.HTTPError`` for a non-2xx answer (retried as the
    module docstring says)."""
    response = requests.post(url, json=body, timeout=TIMEOUT_S)
    response.raise_for_status()


def check_alerts(settings: Settings, lake_dir: Path, now: datetime,
                 send: Callable[[str, dict[str, Any]], None] = post) -> list[Alert]:
    """Post every alert not sent yet, record each delivered one; return those delivered.

    Raises:
        ValueError: ``alert_webhook_url`` is not set.
    """
    if not settings.alert_webhook_url:
        raise ValueError("TICKLAKE_ALERT_WEBHOOK_URL is not set: nowhere to post alerts")
    sent = SentLog(lake_dir)
    new = [a for a in current_alerts(settings, lake_dir, now) if a.key not in sent.keys]
    limit = settings.alert_max_per_check
    batches: list[tuple[Alert, list[str]]] = [(a, [a.key]) for a in new[:limit]]
    if len(new) > limit:
        rest = new[limit:]
        summary = Alert(f"summary:{rest[0].key}..{rest[-1].key}", "summary",
                        f"{len(rest)} more alerts (first: {rest[0].text}; last: "
                        f"{rest[-1].text})", {"count": len(rest)})
        batches.append((summary, [a.key for a in rest]))
    delivered = []
    for alert, keys in batches:
        try:
            send(settings.alert_webhook_url, alert.body())
        except requests.RequestException as err:
            log.error("alert %s not delivered to %s: %s (tried again next check)", alert.key,
                      settings.alert_webhook_url, err)
            continue
        sent.record(keys, now)
        delivered.append(alert)
        log.info("alert delivered: %s", alert.text)
    return delivered
