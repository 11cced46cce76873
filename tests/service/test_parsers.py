"""svc/parsers.py on its own: each environment-value parser's accepted values, and its one-line complaint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from svc import parsers
from svc.parsers import InvalidValueError, Parser


@pytest.mark.parametrize(
    ("parse", "raw", "value"),
    [
        (parsers.integer(1, 65535), " 8080 ", 8080),
        (parsers.integer(0), "123456789", 123456789),
        (parsers.seconds, "0", 0.0),
        (parsers.positive_seconds, "2.5", 2.5),
        (parsers.ratio, "0.25", 0.25),
        (parsers.boolean, "YES", True),
        (parsers.boolean, "off", False),
        (parsers.choice(("grpc", "http/protobuf")), "GRPC", "grpc"),
        (parsers.text, "  svc  ", "svc"),
        (parsers.host, "::1", "::1"),
        (parsers.host, "otel_collector.local", "otel_collector.local"),
        (parsers.http_url, "https://collector:4318/v1/traces", "https://collector:4318/v1/traces"),
        (parsers.postgres_url, "postgres://u:p@db:5432/links", "postgres://u:p@db:5432/links"),
        (parsers.sentry_dsn, "https://key@sentry.example.com/42", "https://key@sentry.example.com/42"),
        (parsers.headers, "X-Tenant=acme, x-scope=traces,", (("x-tenant", "acme"), ("x-scope", "traces"))),
    ],
)
def test_a_valid_value_parses_to_its_typed_value(parse: Parser[Any], raw: str, value: object) -> None:
    assert parse(raw) == value


@pytest.mark.parametrize(
    ("parse", "raw", "complaint"),
    [
        (parsers.integer(1, 65535), "65536", "is not an integer (1-65535)"),
        (parsers.integer(0), "ten", "is not an integer (>= 0)"),
        (parsers.seconds, "-1", "is not a number of seconds (>= 0)"),
        (parsers.positive_seconds, "0", "is not a number of seconds (> 0)"),
        (parsers.ratio, "nan", "is not a ratio (0.0-1.0)"),
        (parsers.ratio, "1.5", "is not a ratio (0.0-1.0)"),
        (parsers.boolean, "maybe", "is not a boolean (true|false)"),
        (parsers.choice(("grpc", "http/protobuf")), "http", "is not one of grpc|http/protobuf"),
        (parsers.text, "two\nlines", "is not a non-empty single-line string"),
        (parsers.host, "300.1.1.1", "is not a host name or IP address"),
        (parsers.http_url, "ftp://collector", "is not an http(s) URL"),
        (parsers.http_url, "http://collector:99999", "is not an http(s) URL"),
        (parsers.postgres_url, "mysql://db/links", "is not a postgresql://"),
        (parsers.sentry_dsn, "https://sentry.example.com/42", "is not a Sentry DSN"),
        (parsers.sentry_dsn, "https://key@sentry.example.com/project", "is not a Sentry DSN"),
        (parsers.headers, "novalue", "is not a list of key=value pairs"),
        (parsers.headers, "bad key=v", "is not a list of key=value pairs"),
    ],
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
