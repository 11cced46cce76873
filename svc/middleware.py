"""The request telemetry middleware: one ASGI pass that records each request once and hands the record on."""

from __future__ import annotations

import logging

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from svc.access_log import AccessLog
from svc.exchange import Exchange
from svc.logs import REQUEST_ID
from svc.server_span import ServerSpans
from svc.telemetry import Telemetry

__all__ = ["RequestTelemetryMiddleware"]


class RequestTelemetryMiddleware:
    """Gives every HTTP request a request id, a server span, RED metrics and one access line.

    The Python twin of the talk's ResponseWriter decorator: `send` is wrapped to record the status and the
    bytes written into the request's Exchange; the route template comes from the scope once Litestar's router
    has matched it. The span, the metrics and the access line then read that one record.
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.spans = ServerSpans(telemetry.tracer, telemetry.tracer_provider)
        self.metrics = telemetry.metrics
        self.access_log = AccessLog(logging.getLogger("svc.access"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        exchange = Exchange.from_scope(scope)
        token = self.spans.start(exchange, scope)
        response_headers = [(b"x-request-id", exchange.request_id.encode())]
        if token is not None:
            response_headers.append((b"traceresponse", self.spans.traceresponse(exchange)))
        id_token = REQUEST_ID.set(exchange.request_id)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *response_headers]}
            elif message["type"] == "http.response.body":
                exchange.size += len(message.get("body", b""))
            await send(message)

        active = self.metrics.active_for(exchange.method)
        active.inc()
        try:
            await self.app(scope, receive, recording_send)
        except BaseException:
            # Litestar turns handler errors into responses; reaching here means the response never started.
            exchange.status = exchange.status or 500
            raise
        finally:
            active.dec()
            exchange.finish(scope)
            if token is not None:
                self.spans.end(exchange, token)
            self.metrics.observe(exchange)
            REQUEST_ID.reset(id_token)
            self.access_log.write(exchange)
