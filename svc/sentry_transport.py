"""A Sentry transport of svc's own, on the SDK's public Transport interface and Sentry's envelope protocol.

The SDK's HttpTransport queues at most 100 envelopes and sends them one by one from one worker, each compressed
at gzip level 9; in an error storm the queue overflowed and every loss was reported like an outage (issue 14).
This one keeps up to QUEUE_SIZE envelopes, compresses at level 1 (a fraction of level 9's CPU on an event, a
few per cent larger), sends over one keep-alive connection (svc.posting), honours Sentry's rate limits (429 with
Retry-After or X-Sentry-Rate-Limits), and names every loss by its reason: queue_full, rate_limited,
network_error (refused, reset, timed out), rejected (4xx/5xx), send_failed (an envelope that could not be
serialised or sent at all), or shutdown (still queued when the exit's flush ran out of time).
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sentry_sdk.envelope import Envelope, Item
from sentry_sdk.transport import Transport

from svc.posting import KeepAlivePoster, PostFailedError

__all__ = ["QUEUE_SIZE", "EnvelopeTransport", "envelope_endpoint"]

log = logging.getLogger("svc.sentry")

QUEUE_SIZE = 1000
GZIP_LEVEL = 1
SEND_TIMEOUT = 2.0  # a hanging Sentry costs this per event; the queue absorbs the rest
DEFAULT_RETRY_AFTER = 60.0
OnDrop = Callable[[int, str], None]


def envelope_endpoint(dsn: str, client: str) -> tuple[str, dict[str, str]]:
    """The envelope URL and request headers for a DSN, as Sentry's protocol documents them."""
    parts = urlsplit(dsn)
    path, _, project = parts.path.rpartition("/")
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    url = f"{parts.scheme}://{netloc}{path}/api/{project}/envelope/"
    auth = f"Sentry sentry_key={parts.username}, sentry_version=7, sentry_client={client}"
    headers = {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "X-Sentry-Auth": auth,
    }
    return url, headers


def _error_count(envelope: Envelope) -> int:
    return sum(1 for item in envelope.items if item.data_category == "error")


def _limited_for(headers: Any) -> float | None:
    """Seconds during which errors may not be sent, from X-Sentry-Rate-Limits or Retry-After; None if neither says.

    X-Sentry-Rate-Limits is `seconds:categories:scope...` per limit, comma-separated; no categories means all.
    """
    limits = headers.get("X-Sentry-Rate-Limits")
    if limits:
        longest = None
        for limit in limits.split(","):
            seconds, _, rest = limit.strip().partition(":")
            categories = rest.partition(":")[0]
            if (not categories or "error" in categories.split(";")) and _is_number(seconds):
                longest = max(longest or 0.0, float(seconds))
        return longest
    after = headers.get("Retry-After")
    return float(after) if after and _is_number(after) else None


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


class EnvelopeTransport(Transport):
    """Queues envelopes (never blocks the caller) and posts them from one thread; counts what is lost, why."""

    def __init__(self, dsn: str, client: str, on_drop: OnDrop) -> None:
        super().__init__()
        self._url, self._headers = envelope_endpoint(dsn, client)
        self._on_drop = on_drop
        # A refused connection fails at once: a dead Sentry costs one attempt per event, counted as network_error.
        self._poster = KeepAlivePoster(self._url, SEND_TIMEOUT)
        self._queue: deque[Envelope] = deque()
        self._state = threading.Condition()
        self._busy = False
        self._closed = False
        self._blocked_until = 0.0
        self._thread = threading.Thread(target=self._run, name="svc-sentry", daemon=True)
        self._thread.start()

    def capture_envelope(self, envelope: Envelope) -> None:
        with self._state:
            if self._closed or len(self._queue) >= QUEUE_SIZE:
                self._lost(envelope, "queue_full")
                return
            self._queue.append(envelope)
            self._state.notify_all()

    def record_lost_event(
        self, reason: str, data_category: Any = None, item: Item | None = None, *, quantity: int = 1
    ) -> None:
        # The client reports events it drops itself (before_send, sampling): counted under its own reason.
        category = item.data_category if item is not None else data_category
        if category == "error":
            self._on_drop(1 if item is not None else quantity, reason)

    def flush(self, timeout: float, callback: Any = None) -> None:
        with self._state:
            self._state.wait_for(lambda: not self._queue and not self._busy, timeout)

    def kill(self) -> None:
        with self._state:
            self._closed = True
            left, self._queue = list(self._queue), deque()
            self._state.notify_all()
        for envelope in left:
            self._lost(envelope, "shutdown")

    def _lost(self, envelope: Envelope, reason: str) -> None:
        count = _error_count(envelope)
        if count:
            self._on_drop(count, reason)

    def _run(self) -> None:
        while True:
            with self._state:
                self._state.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    self._poster.close()
                    return
                envelope = self._queue.popleft()
                self._busy = True
            try:
                self._send(envelope)
            finally:
                with self._state:
                    self._busy = False
                    self._state.notify_all()

    def _send(self, envelope: Envelope) -> None:
        if time.monotonic() < self._blocked_until:
            self._lost(envelope, "rate_limited")
            return
        try:
            response = self._poster.post(gzip.compress(envelope.serialize(), GZIP_LEVEL), self._headers)
        except PostFailedError as error:
            self._lost(envelope, "network_error")
            log.debug("sending to Sentry failed: %s", error)
            return
        except Exception as error:  # an envelope that cannot be sent must cost itself, not the sending thread
            self._lost(envelope, "send_failed")
            log.debug("cannot send an envelope to Sentry: %s", error)
            return
        limited = _limited_for(response.headers)
        if response.status == 429:
            self._blocked_until = time.monotonic() + (limited if limited is not None else DEFAULT_RETRY_AFTER)
            self._lost(envelope, "rate_limited")
            return
        if limited is not None:  # a limit announced on an accepted event applies to the next ones
            self._blocked_until = time.monotonic() + limited
        if response.status >= 400:
            self._lost(envelope, "rejected")
