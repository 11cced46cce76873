"""The access-log decorator: one ASGI pass that wraps `send` and feeds the span, the metrics and the log line."""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from svc.logs import REQUEST_ID, write_access_line
from svc.metrics import KNOWN_METHODS
from svc.telemetry import Telemetry

__all__ = ["LOGGED_VALUE_CHARS", "UNMATCHED", "sane_request_id", "with_access_log"]

access_log = logging.getLogger("svc.access")

UNMATCHED = "unmatched"
# Probes, scrapes and docs are served and logged, but a trace of each would bury the interesting ones.
UNTRACED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi")
# Client-chosen values copied into log lines and span attributes (url.path, user_agent.original) are cut to
# this many characters: the head cap bounds them at 16 KiB already, but a log line should stay a line.
LOGGED_VALUE_CHARS = 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ids = random.Random()  # seeded from os.urandom once
# Our own propagator, not the global one: W3C trace context and baggage, nothing configured elsewhere.
_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def sane_request_id(value: bytes | None) -> str:
    """The client's X-Request-ID if it is short and plain, else a fresh random one."""
    if value:
        text = value.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    # Not os.urandom: it releases the GIL for its syscall, and on one core every release hands the GIL to the
    # span export thread (measured: ~40 µs a request). A request id needs uniqueness, not secrecy.
    return f"{_ids.getrandbits(128):032x}"


def _header_values(scope: HTTPScope) -> tuple[bytes | None, bytes | None, bool]:
    request_id = user_agent = None
    propagated = False
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            request_id = value
        elif name == b"user-agent":
            user_agent = value
        elif name in (b"traceparent", b"baggage"):
            propagated = True
    return request_id, user_agent, propagated


def with_access_log(app: ASGIApp, telemetry: Telemetry) -> ASGIApp:
    """Wrap app so every HTTP request gets a request id, a server span, RED metrics and one access line.

    The Python twin of the talk's ResponseWriter decorator: `send` is wrapped to record the status and the
    bytes written; the route template comes from the scope once Litestar's router has matched it.
    """
    tracer = telemetry.tracer
    metrics = telemetry.metrics
    # OTEL_SDK_DISABLED: the no-op provider's spans have all-zero ids, which no header or log line may carry.
    traced = not isinstance(telemetry.tracer_provider, trace.NoOpTracerProvider)

    async def access_logged(asgi_scope: Scope, receive: Receive, send: Send) -> None:
        if asgi_scope["type"] != ScopeType.HTTP:
            await app(asgi_scope, receive, send)
            return
        scope = asgi_scope  # narrowed to HTTPScope by the check above
        start = time.perf_counter_ns()
        raw_request_id, raw_user_agent, propagated = _header_values(scope)
        request_id = sane_request_id(raw_request_id)
        user_agent = raw_user_agent[:LOGGED_VALUE_CHARS].decode("latin-1") if raw_user_agent else ""
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        path: str = scope["path"]
        if len(path) > LOGGED_VALUE_CHARS:
            path = path[:LOGGED_VALUE_CHARS]
        client = scope.get("client")
        client_address = client[0] if client else ""

        span: Any = None
        ctx_token = None
        response_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        if traced and not path.startswith(UNTRACED_PREFIXES):
            # asgi_getter reads the carrier straight from the scope's raw header list.
            parent = _PROPAGATOR.extract(cast(dict[str, Any], scope), getter=asgi_getter) if propagated else None
            span = tracer.start_span(
                method,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.path": path,
                    "url.scheme": scope.get("scheme", "http"),
                    "client.address": client_address,
                    "user_agent.original": user_agent,
                    "network.protocol.version": scope.get("http_version", "1.1"),
                    "http.request.id": request_id,
                },
            )
            ctx_token = otel_context.attach(trace.set_span_in_context(span, parent))
            span_ctx = span.get_span_context()
            flags = "01" if span_ctx.trace_flags.sampled else "00"
            # W3C Trace Context Level 2: tells the caller which trace to look up.
            traceresponse = f"00-{span_ctx.trace_id:032x}-{span_ctx.span_id:016x}-{flags}"
            response_headers.append((b"traceresponse", traceresponse.encode()))
        id_token = REQUEST_ID.set(request_id)

        status = 0
        size = 0

        async def recording_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *response_headers]}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        active = metrics.active_for(method)
        active.inc()
        try:
            await app(asgi_scope, receive, recording_send)
        except BaseException:
            # Litestar turns handler errors into responses; reaching here means the response never started.
            status = status or 500
            raise
        finally:
            active.dec()
            duration_ns = time.perf_counter_ns() - start
            route = scope.get("path_template") or UNMATCHED
            extra: dict[str, Any] = {
                "event.dataset": "svc.access",
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "http.response.status_code": status,
                "http.response.body.bytes": size,
                "event.duration": duration_ns,
                "client.address": client_address,
                "user_agent.original": user_agent,
                "http.request.id": request_id,
                "http.version": scope.get("http_version", "1.1"),
            }
            trace_id = None
            if span is not None:
                span_ctx = span.get_span_context()
                extra["trace.id"] = f"{span_ctx.trace_id:032x}"
                extra["span.id"] = f"{span_ctx.span_id:016x}"
                if span_ctx.trace_flags.sampled:
                    trace_id = extra["trace.id"]
                if span.is_recording():
                    # One set_attributes call: each set_attribute takes the span's lock and validates anew.
                    finished: dict[str, Any] = {"http.route": route} if route != UNMATCHED else {}
                    finished["http.response.status_code"] = status
                    finished["http.response.body.size"] = size
                    if route != UNMATCHED:
                        span.update_name(f"{method} {route}")
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                        finished["error.type"] = str(status)
                    span.set_attributes(finished)
                span.end()
                if ctx_token is not None:
                    otel_context.detach(ctx_token)
            metrics.observe(method, route, status, duration_ns / 1e9, size, trace_id)
            REQUEST_ID.reset(id_token)
            level = logging.ERROR if status >= 500 else logging.INFO
            if access_log.isEnabledFor(level) and not write_access_line(
                access_log, level, f"{method} {path} {status}", extra
            ):
                access_log.log(level, "%s %s %d", method, path, status, extra=extra)

    return access_logged
