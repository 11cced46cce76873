"""svc/parsers.py on its own: each environment-value parser's accepted values, and its one-line complaint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.util.re import parse_env_headers

from svc import parsers
from svc.parsers import InvalidValueError, Parser

# Each parser with the values it accepts (raw -> typed value) and refuses (raw -> how its complaint starts).
CASES: list[tuple[str, Parser[Any], dict[str, object], dict[str, str]]] = [
    ("port", parsers.integer(1, 65535), {" 8080 ": 8080}, {"65536": "is not an integer (1-65535)"}),
    ("count", parsers.integer(0), {"123456789": 123456789}, {"ten": "is not an integer (>= 0)"}),
    ("seconds", parsers.seconds, {"0": 0.0}, {"-1": "is not a number of seconds (>= 0)"}),
    ("positive", parsers.positive_seconds, {"2.5": 2.5}, {"0": "is not a number of seconds (> 0)"}),
    ("ratio", parsers.ratio, {"0.25": 0.25}, {"nan": "is not a ratio (0.0-1.0)", "1.5": "is not a ratio (0.0-1.0)"}),
    ("boolean", parsers.boolean, {"YES": True, "off": False}, {"maybe": "is not a boolean (true|false)"}),
    (
        "choice",
        parsers.choice(("grpc", "http/protobuf")),
        {"GRPC": "grpc"},
        {"http": "is not one of grpc|http/protobuf"},
    ),
    ("text", parsers.text, {"  svc  ": "svc"}, {"two\nlines": "is not a non-empty single-line string"}),
    (
        "host",
        parsers.host,
        {"::1": "::1", "otel_collector.local": "otel_collector.local"},
        {"300.1.1.1": "is not a host name or IP address"},
    ),
    (
        "http_url",
        parsers.http_url,
        {"https://collector:4318/v1/traces": "https://collector:4318/v1/traces"},
        {"ftp://collector": "is not an http(s) URL", "http://collector:99999": "is not an http(s) URL"},
    ),
    (
        "postgres_url",
        parsers.postgres_url,
        {"postgres://u:p@db:5432/links": "postgres://u:p@db:5432/links"},
        {"mysql://db/links": "is not a postgresql://"},
    ),
    (
        "sentry_dsn",
        parsers.sentry_dsn,
        {"https://key@sentry.example.com/42": "https://key@sentry.example.com/42"},
        {
            "https://sentry.example.com/42": "is not a Sentry DSN",
            "https://key@sentry.example.com/p": "is not a Sentry DSN",
        },
    ),
    (
        "headers",
        parsers.headers,
        {
            "X-Tenant=acme, x-scope=traces,": (("x-tenant", "acme"), ("x-scope", "traces")),
            "authorization=Basic%20dXNlcjpwdw%3D%3D": (("authorization", "Basic dXNlcjpwdw=="),),
            "x%2Dtenant=a%2Cb": (("x-tenant", "a,b"),),
        },
        {
            "novalue": "is not a list of key=value pairs",
            "bad key=v": "is not a list of key=value pairs",
            "x-tenant=caf%C3%A9": "is not a list of key=value pairs",  # decodes to non-ASCII: no gRPC metadata value
            "x-tenant=%FF": "is not a list of key=value pairs",  # not UTF-8 once decoded
        },
    ),
]


@pytest.mark.parametrize(
    ("parse", "raw", "value"),
    [
        pytest.param(parse, raw, value, id=f"{name}:{raw!r}")
        for name, parse, good, _ in CASES
        for raw, value in good.items()
    ],
)
def test_a_valid_value_parses_to_its_typed_value(parse: Parser[Any], raw: str, value: object) -> None:
    assert parse(raw) == value


@pytest.mark.parametrize(
    ("parse", "raw", "complaint"),
    [pytest.param(parse, raw, why, id=f"{name}:{raw!r}") for name, parse, _, bad in CASES for raw, why in bad.items()],
)
def test_an_invalid_value_is_refused_saying_what_is_accepted(parse: Parser[Any], raw: str, complaint: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        parse(raw)
    assert str(refused.value).startswith(complaint)


def test_a_readable_file_is_accepted(tmp_path: Path) -> None:
    present = tmp_path / "ca.pem"
    present.write_text("pem")
    assert parsers.readable_file(str(present)) == str(present)


def test_a_file_that_cannot_be_opened_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="is not a readable file"):
        parsers.readable_file(str(tmp_path / "missing.pem"))


@pytest.mark.parametrize(
    "raw",
    [
        "api-key=secret,x-scope=traces",
        "authorization=Basic%20dXNlcjpwdw%3D%3D",
        "x%2Dtenant=a%2Cb, x-other = spaced ",
        "x-path=%2Fv1%2Ftraces%3Fa%3Db",
    ],
)
def test_otlp_headers_decode_as_the_opentelemetry_sdk_decodes_them(raw: str) -> None:
    assert dict(parsers.headers(raw)) == dict(parse_env_headers(raw))
