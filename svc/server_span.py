"""The server span of a request: started from its Exchange record, ended with what the response turned out to be."""

from __future__ import annotations

from contextvars import Token
from typing import Any, cast

from litestar.types import HTTPScope
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from svc.exchange import UNMATCHED, Exchange

__all__ = ["UNTRACED_PREFIXES", "ServerSpans"]

# Probes, scrapes and docs are served and logged, but a trace of each would bury the interesting ones.
UNTRACED_PREFIXES = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi")
# Our own propagator, not the global one: W3C trace context and baggage, nothing configured elsewhere.
_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


class ServerSpans:
    """Starts and ends the SERVER span of each traced request, made current while the app runs."""

    def __init__(self, tracer: Tracer, provider: TracerProvider) -> None:
        self._tracer = tracer
        # OTEL_SDK_DISABLED: the no-op provider's spans have all-zero ids, which no header or log line may carry.
        self._traced = not isinstance(provider, trace.NoOpTracerProvider)

    def start(self, exchange: Exchange, scope: HTTPScope) -> Token[Context] | None:
        """Start the span (a child of the caller's trace, if it sent one); return the token to end it with."""
        if not self._traced or exchange.path.startswith(UNTRACED_PREFIXES):
            return None
        # asgi_getter reads the carrier straight from the scope's raw header list.
        parent = _PROPAGATOR.extract(cast(dict[str, Any], scope), getter=asgi_getter) if exchange.propagated else None
        span = self._tracer.start_span(
            exchange.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": exchange.method,
                "url.path": exchange.path,
                "url.scheme": exchange.scheme,
                "client.address": exchange.client_address,
                "user_agent.original": exchange.user_agent,
                "network.protocol.version": exchange.http_version,
                "http.request.id": exchange.request_id,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        span_ctx = span.get_span_context()
        exchange.span = span
        exchange.trace_id = f"{span_ctx.trace_id:032x}"
        exchange.span_id = f"{span_ctx.span_id:016x}"
        exchange.sampled = span_ctx.trace_flags.sampled
        return token

    @staticmethod
    def traceresponse(exchange: Exchange) -> bytes:
        """W3C Trace Context Level 2's response header: tells the caller which trace to look up."""
        return f"00-{exchange.trace_id}-{exchange.span_id}-{'01' if exchange.sampled else '00'}".encode()

    @staticmethod
    def end(exchange: Exchange, token: Token[Context]) -> None:
        """Name the span after the route, record the response on it, end it, and restore the caller's context."""
        span = exchange.span
        if span is None:
            return
        if span.is_recording():
            route = exchange.route
            status = exchange.status
            # One set_attributes call: each set_attribute takes the span's lock and validates anew.
            finished: dict[str, Any] = {"http.route": route} if route != UNMATCHED else {}
            finished["http.response.status_code"] = status
            finished["http.response.body.size"] = exchange.size
            if route != UNMATCHED:
                span.update_name(f"{exchange.method} {route}")
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
                finished["error.type"] = str(status)
            span.set_attributes(finished)
        span.end()
        otel_context.detach(token)
