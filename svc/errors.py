"""Error reporting: 5xx exceptions to Sentry, linked to their OTel trace, through a client svc owns."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sentry_sdk
from sentry_sdk.utils import event_from_exception

from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.sentry_transport import EnvelopeTransport

__all__ = ["ErrorReporter", "request_context", "scrub_query"]

log = logging.getLogger("svc.errors")

# Headers worth seeing in an error; everything else (Authorization, Cookie, ...) is never sent.
SAFE_HEADERS = frozenset({"user-agent", "content-type", "content-length", "accept", "x-request-id", "host"})
SECRET_PARAM = re.compile(r"token|secret|passw|key|auth|sig|session|code|credential|dsn", re.IGNORECASE)
FILTERED = "[Filtered]"


def scrub_query(query: str) -> str:
    """The query string with the values of secret-looking parameters replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, FILTERED if SECRET_PARAM.search(k) else v) for k, v in pairs])


class ErrorReporter:
    """Sends unhandled exceptions to Sentry; a no-op without SENTRY_DSN.

    The SDK is never `init`-ed: no global hub, no auto-enabled framework integration (measured to halve
    throughput), no Sentry tracing. svc's own OTel ids go on each event so Sentry links to Jaeger.
    """

    def __init__(self, config: Config, build: BuildInfo, on_drop: Callable[[int, str], None]) -> None:
        self._client: Any = None
        if config.sentry_dsn is None:
            return
        release = config.sentry_release or f"svc@{build.version or 'unknown'}+{(build.commit or 'unknown')[:12]}"
        self._client = sentry_sdk.Client(
            dsn=config.sentry_dsn,
            environment=config.sentry_environment or config.environment,
            release=release,
            server_name=config.service_name,
            # send_default_pii stays at its default (off); setting it at all is deprecated in sentry-sdk 2.75.
            default_integrations=False,
            auto_enabling_integrations=False,
            integrations=[],
            max_breadcrumbs=0,
            # Frame locals hold the ASGI scope (raw Authorization and Cookie headers, the unscrubbed query):
            # the SDK's key-based scrubber cannot see inside them, so locals are never sent.
            include_local_variables=False,
            # svc's own transport (svc.sentry_transport): a deeper queue, cheap compression, losses by reason.
            transport=EnvelopeTransport(config.sentry_dsn, f"svc/{build.version or 'unknown'}", on_drop),
            shutdown_timeout=2,
        )

    @property
    def enabled(self) -> bool:
        """Whether a DSN was configured."""
        return self._client is not None

    def report(
        self,
        exc: BaseException,
        request: dict[str, Any],
        route: str | None,
        request_id: str | None,
        trace_ids: tuple[str, str] | None,
    ) -> str | None:
        """Queue one event for the exception (never blocks on the network); returns its event id."""
        if self._client is None:
            return None
        event, hint = event_from_exception(
            exc, client_options=self._client.options, mechanism={"type": "svc", "handled": False}
        )
        event["level"] = "error"
        event["request"] = request
        event["transaction"] = f"{request['method']} {route or 'unmatched'}"
        event["tags"] = {"http.route": route or "unmatched", "request_id": request_id or ""}
        if trace_ids is not None:
            trace_id, span_id = trace_ids
            event["contexts"] = {"trace": {"trace_id": trace_id, "span_id": span_id, "op": "http.server"}}
            event["tags"]["trace_id"] = trace_id
        event_id: str | None = self._client.capture_event(event, hint=hint, scope=sentry_sdk.Scope())
        return event_id

    def close(self, timeout: float) -> None:
        """Flush queued events, waiting at most timeout seconds."""
        if self._client is not None:
            self._client.close(timeout=timeout)
            self._client = None


def request_context(
    method: str, scheme: str, host: str, path: str, query: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The Sentry `request` interface for an event, with secrets left out."""
    return {
        "method": method,
        "url": f"{scheme}://{host}{path}",
        "query_string": scrub_query(query),
        "headers": {k: v for k, v in headers.items() if k in SAFE_HEADERS},
    }
