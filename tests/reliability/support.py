"""Support for the reliability tests: raw HTTP/1.1 on a socket, problem+json checks, the logging contract."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from tests.support.log_contract import ACCESS_FIELDS, ALWAYS_FIELDS, ERROR_FIELDS, contract_errors

__all__ = [
    "ACCESS_FIELDS",
    "ALWAYS_FIELDS",
    "ERROR_FIELDS",
    "PROBLEM_JSON",
    "RawResponse",
    "assert_line_follows_contract",
    "http_bytes",
    "raw_request",
    "split_log_lines",
]

PROBLEM_JSON = "application/problem+json"


def split_log_lines(text: str) -> list[str]:
    """The lines of a JSON log stream as its format defines them: separated by "\\n" only."""
    return [line for line in text.split("\n") if line]


def assert_line_follows_contract(line: str) -> dict[str, Any]:
    """Parse one stdout line and check it is one object with exactly the contract's fields and types."""
    # Characters str.splitlines() (and older JavaScript) also treat as line breaks must not appear raw.
    assert line == line.splitlines()[0], f"line breaks apart under str.splitlines(): {line!r}"
    doc = json.loads(line)
    assert isinstance(doc, dict), line
    errors = contract_errors(doc)
    assert not errors, f"{errors}: {line}"
    return doc


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A response read off a socket: status, lowercase headers, body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 10.0) -> RawResponse:
    """Send bytes exactly as given (no client between us and the server) and read one response."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a response; got {buffer!r}")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return RawResponse(status, headers, body[:length])


def http_bytes(method: str, target: bytes, headers: dict[str, str] | None = None, body: bytes | None = None) -> bytes:
    """An HTTP/1.1 request with a correct content-length (target and body are sent byte for byte)."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1", b"connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    if body is not None:
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
