"""Hostile HTTP/1.1 clients on raw sockets: huge heads, many headers, slowloris, and a fresh-connection hammer.

Raw sockets, not an HTTP library: each case needs to see exactly what the server did to the connection (an
answer, a FIN, a reset, a refused connect) and when. Every client is bounded in count and time and takes a
port, never a host: it only ever connects to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "Answer",
    "HammerResult",
    "SlowlorisResult",
    "big_head",
    "get",
    "hammer",
    "many_headers",
    "slowloris",
]

HOST = "127.0.0.1"


@dataclass
class Answer:
    """What one request got: a status (None if none), how long until the answer or the close, and how it ended."""

    status: int | None
    seconds: float
    end: str  # "answered", "closed" (FIN without an answer), "reset", "timeout"
    head: bytes = b""
    sent_bytes: int | None = None  # big_head: how much of the request had been sent when the answer came


def _status(data: bytes) -> int | None:
    if not data.startswith(b"HTTP/1."):
        return None
    try:
        return int(data[9:12])
    except ValueError:
        return None


def _read_answer(sock: socket.socket, started: float, timeout: float) -> Answer:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        return Answer(_status(data), time.monotonic() - started, "reset", data[:200])
    except TimeoutError:
        return Answer(_status(data), time.monotonic() - started, "timeout", data[:200])
    status = _status(data)
    return Answer(status, time.monotonic() - started, "answered" if status else "closed", data[:200])


def get(port: int, path: str = "/healthz", timeout: float = 10.0, close: bool = True) -> Answer:
    """One plain GET on a fresh connection."""
    started = time.monotonic()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        connection = b"connection: close\r\n" if close else b""
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n".encode() + connection + b"\r\n")
        return _read_answer(sock, started, timeout)


def big_head(port: int, size: int, path: str = "/healthz", timeout: float = 30.0) -> Answer:
    """A GET whose one header value is `size` bytes, sent while the answer is read (so an early answer shows)."""
    started = time.monotonic()
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sent = [0]

    def send() -> None:
        chunk = b"a" * 65536
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nx-big: ".encode())
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
                sent[0] += len(chunk)
            sock.sendall(b"a" * (size % len(chunk)) + b"\r\nconnection: close\r\n\r\n")
            sent[0] = size
        except OSError:
            pass  # the server answered and closed: what the reader sees is the result

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        answer = _read_answer(sock, started, timeout)
        answer.sent_bytes = sent[0]
        return answer
    finally:
        sock.close()
        sender.join(timeout)


def many_headers(port: int, count: int, path: str = "/healthz", timeout: float = 10.0) -> Answer:
    """A GET with `count` small header fields."""
    started = time.monotonic()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        fields = b"".join(b"x-h%d: v\r\n" % i for i in range(count))
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".encode() + fields + b"\r\n")
        return _read_answer(sock, started, timeout)


@dataclass
class SlowlorisResult:
    """How the server treated connections that send one header byte every `interval` seconds."""

    opened: int
    closed_by_server: int
    answers: Counter[int] = field(default_factory=Counter)
    seconds_to_close_max: float | None = None
    probes: int = 0
    probes_served: int = 0


def slowloris(
    port: int,
    connections: int,
    interval: float,
    duration: float,
    probe_every: float = 0.2,
    probe: Callable[[], bool] | None = None,
) -> SlowlorisResult:
    """Open `connections` that trickle a head one byte per interval for `duration`; probe a normal GET meanwhile."""
    socks: list[socket.socket] = []
    for _ in range(connections):
        try:
            sock = socket.create_connection((HOST, port), timeout=2)
        except OSError:
            break
        sock.setblocking(False)
        socks.append(sock)
    opened_at = time.monotonic()
    result = SlowlorisResult(opened=len(socks), closed_by_server=0)
    alive = {s.fileno(): s for s in socks}
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 10_000
    sent = 0
    probe = probe or (lambda: _probe(port))
    next_byte = next_probe = time.monotonic()
    while time.monotonic() - opened_at < duration:
        now = time.monotonic()
        if now >= next_byte:
            for sock in list(alive.values()):
                with contextlib.suppress(OSError):  # a closed one is noticed by the read below
                    sock.send(head[sent % len(head) : sent % len(head) + 1])
            sent += 1
            next_byte = now + interval
        for fd, sock in list(alive.items()):
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            status = _status(data)
            if status is not None:
                result.answers[status] += 1
            del alive[fd]
            result.closed_by_server += 1
            result.seconds_to_close_max = round(time.monotonic() - opened_at, 3)
            sock.close()
        if now >= next_probe:
            result.probes += 1
            result.probes_served += probe()
            next_probe = now + probe_every
        time.sleep(0.01)
    for sock in alive.values():
        sock.close()
    return result


def _probe(port: int) -> bool:
    try:
        return get(port, timeout=1.0).status == 200
    except OSError:
        return False


@dataclass
class HammerResult:
    """Every request of a fresh-connection hammer, sorted by how it ended."""

    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # reset / closed unanswered / timeout after connect
    refused: int = 0
    refused_connect_seconds_max: float = 0.0
    connect_timeouts: int = 0

    @property
    def failures(self) -> int:
        """Requests that reached a connection and got no answer."""
        return sum(self.failed.values())


def hammer(port: int, path: str, clients: int, stop: threading.Event, max_seconds: float = 60.0) -> HammerResult:
    """`clients` threads, each sending GET path on a new connection, one after another, until `stop`."""
    result = HammerResult()
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    request = f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()

    def client() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                sock = socket.create_connection((HOST, port), timeout=3)
            except ConnectionRefusedError:
                with lock:
                    result.refused += 1
                    result.refused_connect_seconds_max = max(
                        result.refused_connect_seconds_max, time.monotonic() - started
                    )
                time.sleep(0.005)  # a refused connect is instant: do not spin the CPU the server needs
                continue
            except TimeoutError:
                with lock:
                    result.connect_timeouts += 1
                continue
            except OSError:  # reset during the handshake: the server had completed it, then dropped it
                with lock:
                    result.failed["reset"] += 1
                continue
            with sock:
                try:
                    sock.sendall(request)
                    answer = _read_answer(sock, started, 10)
                except ConnectionResetError:
                    answer = Answer(None, 0, "reset")
                except BrokenPipeError:
                    answer = Answer(None, 0, "reset")
            with lock:
                if answer.status is None:
                    result.failed[answer.end] += 1
                else:
                    result.statuses[answer.status] += 1
                    result.ok += answer.status < 500

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 15)
    return result
