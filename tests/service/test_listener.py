"""svc/listener.py on real sockets: the accept queue is seen, new connections are dropped, queued ones survive."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest

from svc.listener import accept_queue_length, bind, refuse_new_connections

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO and SO_ATTACH_FILTER: Linux")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = bind("127.0.0.1", 0)
    yield sock
    sock.close()


def _connect(sock: socket.socket, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(sock.getsockname()[:2], timeout=timeout)


def test_accept_queue_length_counts_connections_nobody_accepted(listener: socket.socket) -> None:
    clients = [_connect(listener) for _ in range(3)]
    try:
        assert accept_queue_length(listener) == 3
        listener.accept()[0].close()
        assert accept_queue_length(listener) == 2
    finally:
        for client in clients:
            client.close()


def test_after_refuse_new_connections_a_new_connect_gets_no_answer(listener: socket.socket) -> None:
    assert refuse_new_connections(listener)
    with pytest.raises(TimeoutError):
        _connect(listener, timeout=0.3)  # the SYN is dropped: no SYN-ACK, no RST


def test_connections_queued_before_the_filter_are_still_accepted_and_read(listener: socket.socket) -> None:
    client = _connect(listener)
    client.sendall(b"ping")
    assert refuse_new_connections(listener)
    conn, _ = listener.accept()
    with conn, client:
        assert conn.recv(4) == b"ping"
        conn.sendall(b"pong")
        assert client.recv(4) == b"pong"


def test_a_connect_after_the_filtered_listener_closes_is_refused(listener: socket.socket) -> None:
    address = listener.getsockname()[:2]
    assert refuse_new_connections(listener)
    listener.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2)
