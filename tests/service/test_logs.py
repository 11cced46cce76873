"""Logs: every stdout line of a real run is one ECS JSON object; access and error lines carry their fields."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from litestar.types import ASGIApp

from harness.polling import wait_for
from harness.service import base_env, log_lines, service_thread
from svc.logs import JsonLinesHandler, json_handler_alone
from svc.main import run
from tests.service.support import ACCESS_FIELDS, capture_logs
from tests.support.log_contract import contract_errors

# A path that would forge a second JSON line, a quote-broken field and a red terminal if written raw.
HOSTILE_PATH = '/x\n{"log.level":"critical","message":"forged"}\x1b[31m"'
HOSTILE_PATH_ENCODED = "/x%0A%7B%22log.level%22%3A%22critical%22%2C%22message%22%3A%22forged%22%7D%1B%5B31m%22"

# U+2028, U+0085: valid raw inside JSON strings, but line breaks to str.splitlines() and JavaScript.
UNICODE_PATH = "/u\u2028v\x85w"
UNICODE_PATH_ENCODED = "/u%E2%80%A8v%C2%85w"


@dataclass
class Run:
    """What one real run wrote, and the responses that produced it."""

    text: str
    exit_code: int | None
    responses: dict[str, httpx.Response]

    @property
    def lines(self) -> list[dict[str, Any]]:
        return log_lines(self.text)

    def access(self, response: httpx.Response) -> list[dict[str, Any]]:
        request_id = response.headers["x-request-id"]
        return [
            line
            for line in self.lines
            if line["event.dataset"] == "svc.access" and line.get("http.request.id") == request_id
        ]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One real service run (through run(), in a thread) with a bit of every kind of traffic, then stopped."""
    tmp = tmp_path_factory.mktemp("logs")
    responses: dict[str, httpx.Response] = {}
    with service_thread(base_env(tmp, FAULTS_ENABLED="true")) as svc, httpx.Client(base_url=svc.url) as http:
        responses["create"] = http.post("/links", json={"url": "https://example.com/a", "slug": "logged"})
        responses["get"] = http.get("/links/logged")
        responses["redirect"] = http.get("/r/logged")
        responses["list"] = http.get("/links", params={"limit": 1})
        responses["bad_json"] = http.post("/links", content=b"{", headers={"content-type": "application/json"})
        responses["missing"] = http.get("/no/such/path")
        responses["fault"] = http.get("/fault")
        responses["slow"] = http.get("/slow", params={"ms": 150})
        responses["hostile"] = http.get(HOSTILE_PATH_ENCODED, headers={"user-agent": 'ua "quoted" {"x":1}'})
        responses["unicode"] = http.get(UNICODE_PATH_ENCODED, headers={b"user-agent": b"nel\x85ua"})
        for i in range(5):
            responses[f"burst{i}"] = http.get("/healthz", headers={"x-request-id": f"burst-{i}"})
        wait_for(
            lambda: all(
                any(line.get("http.request.id") == r.headers["x-request-id"] for line in svc.logs())
                for r in responses.values()
            ),
            10,
            what="an access line for every request",
        )
    return Run(svc.stdout.text(), svc.exit_code, responses)


def test_real_run_exits_0(real_run: Run) -> None:
    assert real_run.exit_code == 0


def test_every_stdout_line_of_a_real_run_is_one_json_object(real_run: Run) -> None:
    lines = [line for line in real_run.text.split("\n") if line]
    assert len(lines) > 20
    for line in lines:
        doc = json.loads(line)
        assert isinstance(doc, dict), line


def test_every_line_has_the_contract_fields_with_their_types_and_nothing_else(real_run: Run) -> None:
    problems = {json.dumps(line)[:200]: errs for line in real_run.lines if (errs := contract_errors(line))}
    assert problems == {}


def test_every_dataset_appears_in_a_real_run(real_run: Run) -> None:
    assert {line["event.dataset"] for line in real_run.lines} >= {"svc.access", "svc.app", "svc.server"}


def test_startup_logs_the_ports_chosen_for_port_0(real_run: Run) -> None:
    listeners = {line["labels.listener"]: line for line in real_run.lines if "labels.listener" in line}
    assert set(listeners) == {"public", "admin"}
    for line in listeners.values():
        assert line["server.port"] > 0
        assert line["message"].endswith(f":{line['server.port']}")


def test_stopped_is_logged_last(real_run: Run) -> None:
    assert real_run.lines[-1]["message"].startswith("stopped: both listeners closed, exit code 0 after ")


def test_server_lines_are_one_start_line_then_one_line_per_listener_then_one_stop_summary(real_run: Run) -> None:
    server = [line for line in real_run.lines if line["log.logger"] == "svc.main" or "uvicorn" in line["log.logger"]]
    messages = [line["message"] for line in server]
    assert len(messages) == 4, messages
    assert re.fullmatch(r"svc \S+ commit \S+ \S+ starting, pid \d+", messages[0]), messages
    assert re.fullmatch(r"public listener on http://127\.0\.0\.1:\d+", messages[1]), messages
    assert re.fullmatch(r"admin listener on http://127\.0\.0\.1:\d+", messages[2]), messages
    assert re.fullmatch(r"stopped: both listeners closed, exit code 0 after \d+\.\d s", messages[3]), messages


def test_one_access_line_per_request(real_run: Run) -> None:
    for name, response in real_run.responses.items():
        assert len(real_run.access(response)) == 1, name


def test_access_line_fields_and_types(real_run: Run) -> None:
    response = real_run.responses["get"]
    (line,) = real_run.access(response)
    for name, kind in ACCESS_FIELDS.items():
        assert isinstance(line[name], kind), name
    assert line["http.request.method"] == "GET"
    assert line["http.route"] == "/links/{slug}"
    assert line["url.path"] == "/links/logged"
    assert line["http.response.status_code"] == 200
    assert line["http.response.body.bytes"] == len(response.content)
    assert line["client.address"] == "127.0.0.1"
    assert line["user_agent.original"].startswith("python-httpx/")
    assert line["http.version"] == "1.1"
    assert line["log.level"] == "info"
    assert line["trace.id"] == response.headers["traceresponse"].split("-")[1]


def test_access_line_records_the_route_template_and_the_raw_path(real_run: Run) -> None:
    (line,) = real_run.access(real_run.responses["redirect"])
    assert (line["http.route"], line["url.path"], line["http.response.status_code"]) == ("/r/{slug}", "/r/logged", 307)


def test_access_line_for_an_unmatched_path_uses_the_unmatched_route(real_run: Run) -> None:
    (line,) = real_run.access(real_run.responses["missing"])
    assert (line["http.route"], line["url.path"], line["http.response.status_code"]) == (
        "unmatched",
        "/no/such/path",
        404,
    )


def test_access_line_duration_is_in_nanoseconds(real_run: Run) -> None:
    (line,) = real_run.access(real_run.responses["slow"])
    assert 150_000_000 <= line["event.duration"] < 5_000_000_000


def test_access_line_status_and_bytes_match_the_response(real_run: Run) -> None:
    for name in ("create", "bad_json", "missing", "fault", "list"):
        response = real_run.responses[name]
        (line,) = real_run.access(response)
        assert line["http.response.status_code"] == response.status_code, name
        assert line["http.response.body.bytes"] == len(response.content), name


def test_access_line_for_a_5xx_is_an_error_and_a_4xx_is_info(real_run: Run) -> None:
    assert real_run.access(real_run.responses["fault"])[0]["log.level"] == "error"
    assert real_run.access(real_run.responses["missing"])[0]["log.level"] == "info"


def test_client_request_id_lands_in_the_access_line(real_run: Run) -> None:
    (line,) = real_run.access(real_run.responses["burst3"])
    assert line["http.request.id"] == "burst-3"


def test_exception_line_has_type_message_and_the_whole_stack_in_one_field(real_run: Run) -> None:
    fault = real_run.responses["fault"]
    assert fault.status_code == 500
    errors = [line for line in real_run.lines if "error.stack_trace" in line]
    assert len(errors) == 1, errors
    (line,) = errors
    assert line["log.level"] == "error"
    assert line["error.type"] == "InjectedFaultError"
    assert line["error.message"] == "injected fault"
    assert line["error.stack_trace"].startswith("Traceback (most recent call last):")
    assert "svc/lab.py" in line["error.stack_trace"]
    assert line["error.stack_trace"].count("\n") > 3  # the newlines are inside the one JSON string
    assert line["http.request.id"] == fault.headers["x-request-id"]
    assert line["trace.id"] == fault.json()["trace_id"]


def test_app_line_written_during_a_request_carries_its_ids(real_run: Run) -> None:
    created = real_run.responses["create"]
    (line,) = [line for line in real_run.lines if line["message"] == "link created"]
    assert line["link.slug"] == "logged"
    assert line["event.dataset"] == "svc.app"
    assert line["http.request.id"] == created.headers["x-request-id"]
    assert line["trace.id"] == created.headers["traceresponse"].split("-")[1]


def test_hostile_path_cannot_break_or_forge_a_json_line(real_run: Run) -> None:
    assert not any(line.get("message") == "forged" for line in real_run.lines)
    (line,) = real_run.access(real_run.responses["hostile"])
    assert line["url.path"] == HOSTILE_PATH
    assert line["user_agent.original"] == 'ua "quoted" {"x":1}'
    assert "\x1b" not in real_run.text, "control characters must be escaped in the JSON text"


def test_unicode_line_separators_cannot_split_a_json_line(real_run: Run) -> None:
    assert real_run.text.splitlines() == real_run.text.rstrip("\n").split("\n")
    (line,) = real_run.access(real_run.responses["unicode"])
    assert line["url.path"] == UNICODE_PATH


HOSTILE_USER_AGENT = 'evil\n{"log.level":"critical","message":"forged"}\r\x1b[2J"'


def test_hostile_user_agent_cannot_break_or_forge_a_json_line(client: TestClient[ASGIApp]) -> None:
    # A real server refuses control characters in headers; in-process nothing stops them, so the formatter must.
    with capture_logs() as stream:
        response = client.get(HOSTILE_PATH_ENCODED, headers={"user-agent": HOSTILE_USER_AGENT})
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.split("\n") if line]
    assert all(isinstance(line, dict) for line in lines)
    assert not any(line["message"] == "forged" for line in lines)
    (access,) = [line for line in lines if line.get("http.request.id") == response.headers["x-request-id"]]
    assert access["user_agent.original"] == HOSTILE_USER_AGENT
    assert access["url.path"] == HOSTILE_PATH
    assert "\x1b" not in text
    assert "\r" not in text


def test_console_format_escapes_hostile_values_onto_one_line(client: TestClient[ASGIApp]) -> None:
    with capture_logs(console=True) as stream:
        response = client.get(HOSTILE_PATH_ENCODED, headers={"user-agent": HOSTILE_USER_AGENT})
    (line,) = [line for line in stream.getvalue().splitlines() if response.headers["x-request-id"] in line]
    assert "GET /x\\n" in line
    assert "\x1b" not in stream.getvalue()
    assert not any(line.lstrip().startswith('{"log.level"') for line in stream.getvalue().splitlines())


def test_console_format_gives_readable_non_json_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    stop = threading.Event()
    env = base_env(tmp_path, LOG_FORMAT="console")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(["svc"], env.get, out, stop=stop)), daemon=True)
    thread.start()
    try:
        match = wait_for(
            lambda: re.search(r"public listener on (http://127\.0\.0\.1:\d+)", out.getvalue()), 15, what="listener"
        )
        url = match.group(1)
        assert httpx.get(f"{url}/healthz", headers={"x-request-id": "console-1"}).status_code == 200
        wait_for(lambda: "console-1" in out.getvalue(), 5, what="the access line")
    finally:
        stop.set()
        thread.join(15)
    assert result == [0]
    lines = out.getvalue().splitlines()
    assert lines
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    (access,) = [line for line in lines if "http.request.id=console-1" in line]
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} INFO +GET /healthz 200 ", access), access
    assert "http.route=/healthz" in access
    assert any(re.search(r"INFO +stopped\b", line) for line in lines)


@contextmanager
def only_svc_json_handler() -> Iterator[JsonLinesHandler]:
    """svc's JSON handler alone on the root logger (pytest's capture handlers set aside), restored after."""
    root = logging.getLogger()
    saved = list(root.handlers)
    handler = JsonLinesHandler(io.StringIO(), {"service.name": "svc"})
    for old in saved:
        root.removeHandler(old)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for old in saved:
            root.addHandler(old)


def test_a_record_free_line_goes_to_svc_json_handler_when_nothing_else_would_see_it() -> None:
    with only_svc_json_handler() as handler:
        assert json_handler_alone(logging.getLogger("svc.access"), logging.INFO) is handler


def _second_root_handler(logger: logging.Logger) -> Callable[[], None]:
    listener = logging.NullHandler()
    logging.getLogger().addHandler(listener)
    return lambda: logging.getLogger().removeHandler(listener)


def _handler_on_the_logger(logger: logging.Logger) -> Callable[[], None]:
    listener = logging.NullHandler()
    logger.addHandler(listener)
    return lambda: logger.removeHandler(listener)


def _filter_on_the_logger(logger: logging.Logger) -> Callable[[], None]:
    dropping = logging.Filter("nothing")
    logger.addFilter(dropping)
    return lambda: logger.removeFilter(dropping)


def _not_propagating(logger: logging.Logger) -> Callable[[], None]:
    logger.propagate = False
    return lambda: setattr(logger, "propagate", True)


@pytest.mark.parametrize(
    "listening", [_second_root_handler, _handler_on_the_logger, _filter_on_the_logger, _not_propagating]
)
def test_a_record_is_made_when_anything_besides_svc_json_handler_would_see_it(
    listening: Callable[[logging.Logger], Callable[[], None]],
) -> None:
    logger = logging.getLogger("svc.test-alone")
    with only_svc_json_handler():
        undo = listening(logger)
        try:
            assert json_handler_alone(logger, logging.INFO) is None
        finally:
            undo()


def test_a_record_is_made_below_svc_json_handler_level_or_with_a_filter_on_it() -> None:
    logger = logging.getLogger("svc.test-alone")
    with only_svc_json_handler() as handler:
        handler.setLevel(logging.ERROR)
        assert json_handler_alone(logger, logging.INFO) is None
        handler.setLevel(logging.NOTSET)
        handler.addFilter(logging.Filter("nothing"))
        assert json_handler_alone(logger, logging.INFO) is None


def test_a_plain_stream_handler_such_as_the_console_one_gets_records() -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    console = logging.StreamHandler(io.StringIO())
    for old in saved:
        root.removeHandler(old)
    root.addHandler(console)
    try:
        assert json_handler_alone(logging.getLogger("svc.access"), logging.INFO) is None
    finally:
        root.removeHandler(console)
        for old in saved:
            root.addHandler(old)


def test_the_record_free_line_and_the_records_line_are_one_document() -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream, {"service.name": "svc", "service.version": "test"})
    fields = {"event.dataset": "svc.access", "http.route": "/r/{slug}", "not.a.field": "dropped"}
    assert handler.write_fields(logging.INFO, "GET /r/x 307", "svc.access", fields)
    record = logging.LogRecord("svc.access", logging.INFO, __file__, 1, "GET /r/x 307", None, None)
    record.__dict__.update(fields)
    handler.handle(record)
    free, made = (json.loads(line) for line in stream.getvalue().splitlines())
    del free["@timestamp"], made["@timestamp"]
    assert list(free.items()) == list(made.items())
    assert "not.a.field" not in free
