"""One keep-alive HTTP(S) connection for POSTing telemetry, on the standard library's http.client.

Shared by the OTLP/HTTP sender and the Sentry transport. http.client, not urllib3: refused connections through
urllib3 left objects in reference cycles (370 after four attempts: its exceptions hold their connection), garbage
only a full collection frees; the standard library breaks those cycles itself (tests/telemetry/test_backends_down.py).
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

__all__ = ["KeepAlivePoster", "PostFailedError", "Reply"]


class PostFailedError(Exception):
    """The request did not get an answer (refused, reset, timed out); the cause as text."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one POST."""

    status: int
    headers: Message
    body: bytes


class KeepAlivePoster:
    """POSTs to one URL over one reused connection; a connection the server closed is reopened once."""

    def __init__(self, url: str, timeout: float, context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._context = context or (ssl.create_default_context() if self._https else None)
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def post(self, body: bytes, headers: dict[str, str], timeout: float | None = None) -> Reply:
        """Send body; raise PostFailedError when no answer came."""
        limit = self._timeout if timeout is None else timeout
        reused = self._connection is not None
        try:
            return self._post_once(body, headers, limit)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            cause = f"{type(error).__name__}: {error}"
        if not reused:
            raise PostFailedError(cause)
        try:  # the server may have closed the kept-alive connection between two requests
            return self._post_once(body, headers, limit)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise PostFailedError(f"{type(error).__name__}: {error}") from None

    def _post_once(self, body: bytes, headers: dict[str, str], timeout: float) -> Reply:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect(timeout)
        elif connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.request("POST", self._path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return Reply(response.status, response.headers, data)

    def close(self) -> None:
        """Drop the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
