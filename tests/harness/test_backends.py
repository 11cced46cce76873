"""The fake-backend type does what each mode says, seen by real clients: httpx and raw sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from harness.backends import Mode, RefusingPort
from harness.http_backend import HttpBackend, HttpRequest, Reply, ScriptedServer

REQUEST = b"POST /ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"


def _created(request: HttpRequest) -> Reply:
    return Reply(201, {"seen": request.path}, {"x-backend": "fake"})


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend(_created) as running:
        yield running


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


def _post(url: str, timeout: float = 10.0) -> httpx.Response:
    return httpx.post(f"{url}/ingest", json={}, timeout=timeout)


def test_ok_answers_what_the_responder_says_and_records_the_request(backend: HttpBackend) -> None:
    response = httpx.post(f"{backend.url}/bulk?x=1", content=b'{"a":1}', headers={"X-Trace": "t"}, timeout=5)
    assert (response.status_code, response.json(), response.headers["x-backend"]) == (
        201,
        {"seen": "/bulk?x=1"},
        "fake",
    )
    [request] = backend.requests()
    assert (request.method, request.path, request.headers["x-trace"], request.json()) == (
        "POST",
        "/bulk?x=1",
        "t",
        {"a": 1},
    )


@pytest.mark.parametrize("mode", ["500", "503"])
def test_a_failing_mode_answers_its_status_after_reading_the_request(mode: Mode) -> None:
    with HttpBackend(_created, mode=mode) as failing:
        response = _post(failing.url)
        assert (response.status_code, response.json()) == (int(mode), {"detail": "told to fail"})
        assert failing.received == 1


def test_refuse_binds_the_port_but_never_listens() -> None:
    with HttpBackend(_created, mode="refuse") as refusing:
        assert refusing.port != 0
        assert _refused(refusing.port)
        with pytest.raises(httpx.ConnectError):
            _post(refusing.url)


def test_hang_reads_the_request_and_never_answers(backend: HttpBackend) -> None:
    backend.mode = "hang"
    with pytest.raises(httpx.ReadTimeout):
        _post(backend.url, timeout=0.5)
    assert backend.received == 1


def test_leaving_hang_answers_the_held_request_in_the_new_mode(backend: HttpBackend, pool: ThreadPoolExecutor) -> None:
    backend.mode = "hang"
    held: Future[httpx.Response] = pool.submit(_post, backend.url)
    backend.wait_requests(1)
    assert not held.done()
    backend.mode = "503"
    assert held.result(10).status_code == 503


def test_stopping_hangs_up_on_a_held_request(pool: ThreadPoolExecutor) -> None:
    hanging = HttpBackend(_created, mode="hang").start()
    held = pool.submit(_post, hanging.url)
    hanging.wait_requests(1)
    hanging.stop()
    with pytest.raises(httpx.RemoteProtocolError):
        held.result(10)
    assert _refused(hanging.port)


def test_blackhole_accepts_reads_and_writes_not_one_byte() -> None:
    with (
        HttpBackend(_created, mode="blackhole") as blackhole,
        socket.create_connection(("127.0.0.1", blackhole.port)) as sock,
    ):
        sock.sendall(REQUEST)
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert (blackhole.blackholed, blackhole.received) == (1, 0)


def test_switching_to_refuse_and_back_keeps_the_port(backend: HttpBackend) -> None:
    port = backend.port
    backend.mode = "refuse"
    assert backend.port == port
    assert _refused(port)
    backend.mode = "ok"
    assert (backend.port, _post(backend.url).status_code) == (port, 201)


def test_going_down_ends_a_kept_alive_connection_as_a_dying_backend_does(backend: HttpBackend) -> None:
    with socket.create_connection(("127.0.0.1", backend.port), timeout=5) as sock:
        sock.sendall(REQUEST)
        answer = b""
        while not answer.endswith(b'{"seen": "/ingest"}'):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 201")
        backend.mode = "refuse"
        assert sock.recv(65536) == b""  # EOF: the server side closed, no answer will come


def test_stop_and_start_serve_again_on_the_same_port(backend: HttpBackend) -> None:
    port = backend.port
    backend.stop()
    assert not backend.running
    assert _refused(port)
    backend.start()
    assert (backend.port, _post(backend.url).status_code) == (port, 201)


def test_the_context_manager_starts_and_stops() -> None:
    with HttpBackend(_created) as running:
        assert running.running
        assert _post(running.url).status_code == 201
    assert not running.running
    assert _refused(running.port)


def test_keep_false_counts_requests_without_recording_them() -> None:
    with HttpBackend(_created, keep=False) as counting:
        _post(counting.url)
        assert (counting.received, list(counting.requests())) == (1, [])


def test_the_scripted_server_answers_http_1_0_and_closes_each_connection() -> None:
    with ScriptedServer(_created) as lab, socket.create_connection(("127.0.0.1", lab.port), timeout=5) as sock:
        sock.sendall(REQUEST)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 201")


def test_a_refusing_port_refuses_until_closed() -> None:
    with RefusingPort() as port:
        assert _refused(port.port)
        assert port.url == f"http://127.0.0.1:{port.port}"


def test_connections_counts_what_was_accepted_not_what_was_asked(backend: HttpBackend) -> None:
    with httpx.Client(timeout=5) as kept_alive:
        kept_alive.post(f"{backend.url}/a")
        kept_alive.post(f"{backend.url}/b")
    _post(backend.url)
    assert (backend.received, backend.connections) == (3, 2)
