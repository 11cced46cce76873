"""Parsers for environment values: a raw string in, a typed value out, or InvalidValueError saying what is accepted."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

__all__ = [
    "InvalidValueError",
    "Parser",
    "boolean",
    "choice",
    "headers",
    "host",
    "http_url",
    "integer",
    "positive_seconds",
    "postgres_url",
    "ratio",
    "readable_file",
    "seconds",
    "sentry_dsn",
    "text",
]

T = TypeVar("T")
S = TypeVar("S", bound=str)

# A parser turns the raw string into a typed value or raises InvalidValueError(<what the variable accepts>).
Parser = Callable[[str], T]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
# Host names: dot-separated labels of letters, digits, inner hyphens (RFC 1123) and underscores (Compose service
# names); at least one letter, so a mistyped IPv4 address such as 300.1.1.1 is not taken for a name.
_HOSTNAME = re.compile(r"(?=.*[A-Za-z])(?!-)[\w-]{1,63}(?<!-)(\.(?!-)[\w-]{1,63}(?<!-))*\.?", re.ASCII)
# What gRPC metadata accepts as a key (the HTTP exporter's header names are a superset).
_HEADER_KEY = re.compile(r"[0-9a-z_.-]+")
# What both exporters can send as a header value (gRPC metadata values are printable ASCII).
_PRINTABLE_ASCII = re.compile(r"[ -~]*")


class InvalidValueError(ValueError):
    """A parser's complaint: `is not <what the variable accepts>`, to follow `NAME='value' ` in a config error."""


def integer(low: int, high: int | None = None) -> Parser[int]:
    """Whole numbers from low to high (no upper bound when high is None)."""
    accepts = f"an integer ({low}-{high})" if high is not None else f"an integer (>= {low})"

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidValueError(f"is not {accepts}") from None
        if value < low or (high is not None and value > high):
            raise InvalidValueError(f"is not {accepts}")
        return value

    return parse


def _real(accepts: str, within: Callable[[float], bool]) -> Parser[float]:
    """Finite decimal numbers for which within() holds."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise InvalidValueError(f"is not {accepts}") from None
        if not math.isfinite(value) or not within(value):
            raise InvalidValueError(f"is not {accepts}")
        return value

    return parse


seconds = _real("a number of seconds (>= 0)", lambda v: v >= 0)
positive_seconds = _real("a number of seconds (> 0)", lambda v: v > 0)
ratio = _real("a ratio (0.0-1.0)", lambda v: 0.0 <= v <= 1.0)


def boolean(raw: str) -> bool:
    """true|1|yes|on or false|0|no|off, any case."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidValueError("is not a boolean (true|false)")


def choice(choices: tuple[S, ...]) -> Parser[S]:
    """One of the given lower-case words, any case; typed as the choices are (a Literal stays a Literal)."""

    def parse(raw: str) -> S:
        value = raw.strip().lower()
        for known in choices:
            if value == known:
                return known
        raise InvalidValueError(f"is not one of {'|'.join(choices)}")

    return parse


def text(raw: str) -> str:
    """Any non-empty single line without control characters."""
    value = raw.strip()
    if not value or any(ord(c) < 32 for c in value):
        raise InvalidValueError("is not a non-empty single-line string")
    return value


def readable_file(raw: str) -> str:
    """A path this process can open for reading now (checked at start, not at first use)."""
    value = raw.strip()
    try:
        with open(value, "rb"):
            pass
    except OSError:
        raise InvalidValueError("is not a readable file") from None
    return value


def host(raw: str) -> str:
    """An IPv4 or IPv6 address or a host name."""
    value = raw.strip()
    if not _is_ip_address(value) and not _HOSTNAME.fullmatch(value):
        raise InvalidValueError("is not a host name or IP address")
    return value


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def http_url(raw: str) -> str:
    """An http:// or https:// URL with a host and, if any, a valid port."""
    value = raw.strip()
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not _has_valid_port(parts):
        raise InvalidValueError("is not an http(s) URL")
    return value


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def _has_valid_port(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018  # the property raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return False
    return True


_POSTGRES_URL = "is not a postgresql://[user[:password]@]host[:port]/database URL"


def postgres_url(raw: str) -> str:
    """A postgresql:// (or postgres://) URL with a host and, if any, a valid port."""
    value = raw.strip()
    parts = _split(value)
    if (
        parts is None
        or parts.scheme not in ("postgresql", "postgres")
        or not parts.netloc.rpartition("@")[2]
        or not _has_valid_port(parts)
    ):
        raise InvalidValueError(_POSTGRES_URL)
    return value


_SENTRY_DSN = "is not a Sentry DSN (https://<key>@<host>/<project>)"


def sentry_dsn(raw: str) -> str:
    """A DSN the installed Sentry SDK would accept when a client is made."""
    # The Sentry SDK's own DSN rules (sentry_sdk.utils.Dsn, not public API), restated so a DSN the SDK would reject
    # at start is a config error here; tests/service/test_config.py checks them against the installed SDK's Client.
    value = raw.strip()
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or parts.hostname is None or not parts.username:
        raise InvalidValueError(_SENTRY_DSN)
    if not _has_valid_port(parts) or not _is_integer(parts.path.rsplit("/", 1)[-1]):
        raise InvalidValueError(_SENTRY_DSN)
    return value


def _is_integer(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def headers(raw: str) -> tuple[tuple[str, str], ...]:
    """The OTLP spec's header format: comma-separated key=value pairs, percent-encoded; keys lower-cased."""
    # Percent-decoded as the spec (W3C Baggage format) and the Python SDK's parse_env_headers do, so
    # `authorization=Basic%20dXNlcg==` sends "Basic dXNlcg=="; a raw space is accepted too, as the SDK's liberal mode.
    pairs: list[tuple[str, str]] = []
    for item in raw.split(","):
        if not item.strip():
            continue
        raw_key, sep, raw_value = item.partition("=")
        try:
            key, value = unquote(raw_key, errors="strict").strip().lower(), unquote(raw_value, errors="strict").strip()
        except UnicodeDecodeError:
            raise InvalidValueError("is not a list of key=value pairs separated by commas") from None
        if not sep or not _HEADER_KEY.fullmatch(key) or not _PRINTABLE_ASCII.fullmatch(value):
            raise InvalidValueError("is not a list of key=value pairs separated by commas")
        pairs.append((key, value))
    return tuple(pairs)
