"""A fluentd forward-protocol client that writes as Docker's fluentd driver does with `fluentd-request-ack`.

Message mode `[tag, EventTime, record, {"chunk": id}]`, the time as msgpack ext type 0 (sub-second precision), and
a wait for in_forward's `{"ack": id}` before the next record. Just the msgpack subset those frames need: no
msgpack package is in the locked environment, and the encoder is a page.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from typing import Any

from .fluentbit import Pairs, Stamp

__all__ = ["ForwardClient", "pack"]


def _str_header(size: int, fix: int, small: int) -> bytes:
    if size < 32 and fix:
        return bytes([fix | size])
    if size < 0x100:
        return bytes([small, size])
    if size < 0x10000:
        return bytes([small + 1]) + struct.pack(">H", size)
    return bytes([small + 2]) + struct.pack(">I", size)


def pack(value: Any) -> bytes:  # noqa: PLR0911 -- one branch per msgpack type
    """msgpack bytes for str, bytes (as str: the driver sends Go strings, valid UTF-8 or not), int, list, pairs."""
    if isinstance(value, bool):
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 0x80:
            return bytes([value])
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, str | bytes):
        raw = value.encode() if isinstance(value, str) else value
        return _str_header(len(raw), 0xA0, 0xD9) + raw
    if isinstance(value, EventTime):
        return b"\xd7\x00" + struct.pack(">II", *value.stamp)
    if isinstance(value, dict):
        value = list(value.items())
    if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value) and value:
        head = bytes([0x80 | len(value)]) if len(value) < 16 else b"\xde" + struct.pack(">H", len(value))
        return head + b"".join(pack(k) + pack(v) for k, v in value)
    if isinstance(value, list):
        head = bytes([0x90 | len(value)]) if len(value) < 16 else b"\xdc" + struct.pack(">H", len(value))
        return head + b"".join(pack(v) for v in value)
    raise TypeError(f"cannot pack {type(value).__name__}")


class EventTime:
    """Fluentd's EventTime ext (seconds, nanoseconds)."""

    def __init__(self, stamp: Stamp) -> None:
        self.stamp = stamp


class ForwardClient:
    """One connection to in_forward; every record is acknowledged before send() returns."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, tag: str, stamp: Stamp, record: Pairs) -> None:
        """Send one record and wait for its ack (the driver resends on a timeout; a test just fails)."""
        chunk = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(pack([tag, EventTime(stamp), record, {"chunk": chunk}]))
        expected = pack({"ack": chunk})
        answer = b""
        while len(answer) < len(expected):
            data = self.sock.recv(len(expected) - len(answer))
            if not data:
                raise ConnectionError("in_forward closed the connection before acknowledging")
            answer += data
        assert answer == expected, f"unexpected ack {answer!r}"

    def close(self) -> None:
        self.sock.close()
