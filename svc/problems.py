"""Errors as RFC 9457 problem+json: every 4xx and 5xx body svc sends has this one shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from opentelemetry import trace

__all__ = ["PROBLEM_JSON", "Problem", "handle_http_exception", "handle_unexpected_exception", "problem_spec"]

PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem; `errors` lists each invalid field, `trace_id` leads to the trace in Jaeger."""

    title: str
    status: int
    detail: str | None = None
    type: str = "about:blank"
    instance: str | None = None
    trace_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_spec(description: str) -> ResponseSpec:
    """The OpenAPI entry for a problem response."""
    return ResponseSpec(
        data_container=Problem, description=description, media_type=PROBLEM_JSON, generate_examples=False
    )


def _response(request: Request[Any, Any, Any], status: int, detail: str | None, **extra: Any) -> Response[Problem]:
    span_ctx = trace.get_current_span().get_span_context()
    problem = Problem(
        title=HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        status=status,
        detail=detail,
        instance=request.url.path,
        trace_id=f"{span_ctx.trace_id:032x}" if span_ctx.is_valid else None,
        **extra,
    )
    return Response(problem, status_code=status, media_type=PROBLEM_JSON)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    """4xx/5xx raised on purpose (not found, validation, too large, unavailable)."""
    errors = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        # Field errors only: never echo the rejected value back, it may be huge or hostile.
        errors = [
            {k: v for k, v in e.items() if k in ("key", "message", "source")} for e in exc.extra if isinstance(e, dict)
        ] or None
    response = _response(request, exc.status_code, exc.detail, errors=errors)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def handle_unexpected_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    """Anything else is a bug: 500, a generic message, the details only in logs, span and Sentry."""
    return _response(request, 500, "internal error; quote the trace_id when reporting it")
