"""The access line: one log line per request, built from its Exchange record."""

from __future__ import annotations

import logging
from typing import Any

from svc.exchange import Exchange
from svc.logs import json_handler_alone

__all__ = ["AccessLog"]


class AccessLog:
    """Writes each finished request's line on a logger (svc.access), the same fields whichever way it goes.

    When logging would hand the record to svc's JSON handler alone (configure_logging's, with nothing else
    listening), the line is written through that handler without a LogRecord; otherwise it is logged the
    usual way, so a test's caplog or a console formatter sees exactly what it always saw.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, exchange: Exchange) -> None:
        """Log the request at INFO, or at ERROR when the server failed it (5xx)."""
        status = exchange.status
        level = logging.ERROR if status >= 500 else logging.INFO
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "event.dataset": "svc.access",
            "http.request.method": exchange.method,
            "http.route": exchange.route,
            "url.path": exchange.path,
            "http.response.status_code": status,
            "http.response.body.bytes": exchange.size,
            "event.duration": exchange.duration_ns,
            "client.address": exchange.client_address,
            "user_agent.original": exchange.user_agent,
            "http.request.id": exchange.request_id,
            "http.version": exchange.http_version,
        }
        if exchange.trace_id is not None:
            fields["trace.id"] = exchange.trace_id
            fields["span.id"] = exchange.span_id
        handler = json_handler_alone(logger, level)
        if handler is None or not handler.write_fields(
            level, f"{exchange.method} {exchange.path} {status}", logger.name, fields
        ):
            logger.log(level, "%s %s %d", exchange.method, exchange.path, status, extra=fields)
