"""One fake-backend type: a loopback port that a protocol serves in a mode switchable while it runs.

Modes (what a client of the backend sees):

- ``ok``: the protocol answers as the real backend does;
- ``refuse``: nothing listens (the port is bound but not listening, so connections are refused at once, and the
  port stays ours);
- ``hang``: requests are accepted and read, then held unanswered; leaving the mode answers them as the new mode
  says (or hangs up, when the backend stops or goes to ``refuse``/``blackhole``);
- ``500`` / ``503``: the protocol's failure (HTTP: that status; gRPC: ``INTERNAL`` / ``UNAVAILABLE``);
- ``blackhole``: connections are accepted and whatever arrives is read and discarded; not one byte is written
  (not even a protocol handshake).

A protocol is a subclass that starts and stops its own server (`_serve`, `_unserve`) and asks `settle()` which mode
to answer a request in. The base owns the port: switching between a serving mode and ``refuse`` or ``blackhole``
closes what holds the port (live connections included, as a crashed backend's are) and reopens it on the same
port, so the client's endpoint never changes.

    with OtlpGrpcReceiver() as otlp:      # harness.otlp_receivers
        otlp.mode = "503"
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, Literal, Self, TypeVar

__all__ = ["FAULT_MODES", "FakeBackend", "Mode", "Records", "RefusingPort", "free_port", "hang_up", "reserve_port"]

Mode = Literal["ok", "refuse", "hang", "500", "503", "blackhole"]
FAULT_MODES: tuple[Mode, ...] = ("refuse", "hang", "500", "503")  # what reliability/backend_faults runs through
_ANSWERING: frozenset[Mode] = frozenset({"ok", "500", "503"})  # the modes a held request can be answered in
_SERVED: frozenset[Mode] = _ANSWERING | {"hang"}  # the modes in which the protocol's own server holds the port

T = TypeVar("T")
R = TypeVar("R")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on host a moment ago (a peer binds it right after; nothing listens on it now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def reserve_port(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to host:port and never listening: the port stays ours, connecting to it is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if port:
        # Taking back a port a server just closed: its old connections may linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class RefusingPort:
    """A loopback port where nothing listens (any protocol's dead endpoint), reserved while in use."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock = reserve_port(host)
        self.port: int = self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        """http://host:port of the dead endpoint."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Release the port."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Records(Generic[T]):
    """What a backend received, in arrival order (the latest `limit` when given): safe across threads, and waitable
    without polling."""

    def __init__(self, limit: int | None = None) -> None:
        self._changed = threading.Condition()
        self._items: deque[T] = deque(maxlen=limit)

    def add(self, *items: T) -> None:
        with self._changed:
            self._items.extend(items)
            self._changed.notify_all()

    def all(self) -> list[T]:
        """A copy of everything so far."""
        with self._changed:
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_count(self, count: int, timeout: float, what: str) -> list[T]:
        """Everything so far, once there are at least `count` (AssertionError naming `what` after timeout s)."""
        found = self.wait(lambda items: items if len(items) >= count else [], timeout)
        if not found:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {count} {what}")
        return found

    def wait(self, found: Callable[[list[T]], R], timeout: float) -> R:
        """found(items) once it is truthy, re-checked on every arrival; its last (falsy) value after timeout s."""
        with self._changed:
            result = found(list(self._items))
            if not result and self._changed.wait_for(lambda: found(list(self._items)), timeout):
                result = found(list(self._items))
            return result


class _Blackhole:
    """A listener that accepts, reads and discards, and never writes a byte."""

    def __init__(self, host: str, port: int, on_connection: Callable[[], None]) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(1024)  # as many pending connections as a busy client opens before timing out
        self._listener.settimeout(0.05)  # the accept loop's poll, so close() returns in milliseconds
        self.port: int = self._listener.getsockname()[1]
        self._on_connection = on_connection
        self._closed = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self._connections.add(conn)
            self._on_connection()
            threading.Thread(target=self._swallow, args=(conn,), name="blackhole-conn", daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass  # read and discard
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            live = list(self._connections)
        for conn in live:
            hang_up(conn)


def hang_up(conn: socket.socket) -> None:
    """End a live connection from our side (the peer reads EOF), as a backend that dies does."""
    with contextlib.suppress(OSError):  # already gone
        conn.shutdown(socket.SHUT_RDWR)


class FakeBackend:
    """The base of every fake backend: a port, a mode, start/stop, and a context manager.

    Subclasses serve their protocol from `_serve(port) -> port` until `_unserve()`, and answer each request in the
    mode `settle()` returns.
    """

    def __init__(self, mode: Mode = "ok", *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.scheme = "http"
        self.blackholed = 0  # connections accepted in blackhole mode
        self._mode: Mode = mode
        self._state = threading.Lock()  # mode, gate and running: held for moments only
        self._swap = threading.Lock()  # what holds the port: held while servers start and stop
        self._gate = threading.Event()  # set when the current hang ends
        self._running = False
        self._reserved: socket.socket | None = None
        self._blackhole: _Blackhole | None = None
        self._serving = False

    @property
    def url(self) -> str:
        """scheme://host:port of this backend (https when it serves TLS)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        with self._swap:
            with self._state:
                old, self._mode = self._mode, mode
                if old == "hang" and mode != "hang":
                    self._gate.set()  # the held requests answer in the new mode
                    self._gate = threading.Event()
                running = self._running
            if running and _holder(old) != _holder(mode):
                self._vacate()
                self._occupy(mode)

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._running

    def settle(self) -> Mode | None:
        """The mode to answer a request in, once any hang is over; None to hang up (stopped, refusing, or gone)."""
        while True:
            with self._state:
                mode, gate, running = self._mode, self._gate, self._running
            if not running or mode not in _SERVED:
                return None
            if mode != "hang":
                return mode
            gate.wait()

    def start(self) -> Self:
        """Take the port (a free one unless given) and behave as the mode says; a no-op while running."""
        with self._swap:
            with self._state:
                if self._running:
                    return self
                self._running = True
            self._occupy(self._mode)
        return self

    def stop(self) -> None:
        """Hang up on held requests and give the port back."""
        with self._swap:
            with self._state:
                self._running = False
                self._gate.set()
                self._gate = threading.Event()
            self._vacate()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _occupy(self, mode: Mode) -> None:
        if mode == "refuse":
            self._reserved = reserve_port(self.host, self.port)
            self.port = self._reserved.getsockname()[1]
        elif mode == "blackhole":
            self._blackhole = _Blackhole(self.host, self.port, self._count_blackholed)
            self.port = self._blackhole.port
        else:
            self.port = self._serve(self.port)
            self._serving = True

    def _vacate(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        if self._blackhole is not None:
            self._blackhole.close()
            self._blackhole = None
        if self._serving:
            self._unserve()
            self._serving = False

    def _count_blackholed(self) -> None:
        with self._state:
            self.blackholed += 1

    def _serve(self, port: int) -> int:
        """Start the protocol's server on host:port (0: any free port); return the port it listens on."""
        raise NotImplementedError

    def _unserve(self) -> None:
        """Stop the protocol's server and end its live connections."""
        raise NotImplementedError


def _holder(mode: Mode) -> str:
    return "server" if mode in _SERVED else mode
