"""Configuration: every environment variable svc reads, parsed once into a frozen Config."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

__all__ = ["SETTINGS", "Config", "ConfigError", "Getenv", "Setting", "help_table", "markdown_table"]

Getenv = Callable[[str], "str | None"]

LogFormat = Literal["json", "console"]
OtlpProtocol = Literal["grpc", "http/protobuf"]

LOG_LEVELS = ("debug", "info", "warning", "error")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
# Host names: dot-separated labels of letters, digits, inner hyphens (RFC 1123) and underscores (Compose service
# names); at least one letter, so a mistyped IPv4 address such as 300.1.1.1 is not taken for a name.
_HOSTNAME = re.compile(r"(?=.*[A-Za-z])(?!-)[\w-]{1,63}(?<!-)(\.(?!-)[\w-]{1,63}(?<!-))*\.?", re.ASCII)
# What gRPC metadata accepts as a key (the HTTP exporter's header names are a superset).
_HEADER_KEY = re.compile(r"[0-9a-z_.-]+")
# What both exporters can send as a header value (gRPC metadata values are printable ASCII).
_PRINTABLE_ASCII = re.compile(r"[ -~]*")


class ConfigError(Exception):
    """One or more environment variables hold values svc cannot use; each line names one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _InvalidError(ValueError):
    """A parser's complaint: what the variable accepts."""


# Parsers turn the raw string into a typed value or raise _InvalidError(<what it accepts>).
Parser = Callable[[str], Any]


def _integer(low: int, high: int | None = None) -> Parser:
    accepts = f"an integer ({low}-{high})" if high is not None else f"an integer (>= {low})"

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise _InvalidError(f"is not {accepts}") from None
        if value < low or (high is not None and value > high):
            raise _InvalidError(f"is not {accepts}")
        return value

    return parse


def _seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _InvalidError("is not a number of seconds (>= 0)") from None
    if not math.isfinite(value) or value < 0:
        raise _InvalidError("is not a number of seconds (>= 0)")
    return value


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _InvalidError("is not a number of seconds (> 0)") from None
    if not math.isfinite(value) or value <= 0:
        raise _InvalidError("is not a number of seconds (> 0)")
    return value


def _ratio(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _InvalidError("is not a ratio (0.0-1.0)") from None
    if not 0.0 <= value <= 1.0:
        raise _InvalidError("is not a ratio (0.0-1.0)")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _InvalidError("is not a boolean (true|false)")


def _choice(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _InvalidError(f"is not one of {'|'.join(choices)}")
        return value

    return parse


def _text(raw: str) -> str:
    value = raw.strip()
    if not value or any(ord(c) < 32 for c in value):
        raise _InvalidError("is not a non-empty single-line string")
    return value


def _readable_file(raw: str) -> str:
    value = raw.strip()
    try:
        with open(value, "rb"):
            pass
    except OSError:
        raise _InvalidError("is not a readable file") from None
    return value


def _host(raw: str) -> str:
    value = raw.strip()
    if not _is_ip_address(value) and not _HOSTNAME.fullmatch(value):
        raise _InvalidError("is not a host name or IP address")
    return value


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _http_url(raw: str) -> str:
    value = raw.strip()
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not _has_valid_port(parts):
        raise _InvalidError("is not an http(s) URL")
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


def _postgres_url(raw: str) -> str:
    value = raw.strip()
    parts = _split(value)
    if (
        parts is None
        or parts.scheme not in ("postgresql", "postgres")
        or not parts.netloc.rpartition("@")[2]
        or not _has_valid_port(parts)
    ):
        raise _InvalidError(_POSTGRES_URL)
    return value


def _sentry_dsn(raw: str) -> str:
    # The Sentry SDK's own DSN rules (sentry_sdk.utils.Dsn, not public API), restated so a DSN the SDK would reject
    # at start is a config error here; tests/service/test_config.py checks them against the installed SDK's Client.
    value = raw.strip()
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or parts.hostname is None or not parts.username:
        raise _InvalidError("is not a Sentry DSN (https://<key>@<host>/<project>)")
    if not _has_valid_port(parts) or not _is_integer(parts.path.rsplit("/", 1)[-1]):
        raise _InvalidError("is not a Sentry DSN (https://<key>@<host>/<project>)")
    return value


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _headers(raw: str) -> tuple[tuple[str, str], ...]:
    # The OTLP spec's format: comma-separated key=value pairs, values URL-encoded.
    pairs: list[tuple[str, str]] = []
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not _HEADER_KEY.fullmatch(key.strip().lower()) or not _PRINTABLE_ASCII.fullmatch(value):
            raise _InvalidError("is not a list of key=value pairs separated by commas")
        pairs.append((key.strip().lower(), value.strip()))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, the Config field it fills, how to parse it, its default."""

    env: str
    field: str
    parse: Parser
    default: str | None
    help: str
    secret: bool = False


# The single declaration of every variable. `svc --help` and the README table are generated from it.
SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "host", _host, "127.0.0.1", "Public listener address (containers use 0.0.0.0)."),
    Setting("PORT", "port", _integer(0, 65535), "8000", "Public listener port; 0 picks a free port."),
    Setting("ADMIN_HOST", "admin_host", _host, "127.0.0.1", "Admin listener address (metrics, profiling)."),
    Setting("ADMIN_PORT", "admin_port", _integer(0, 65535), "9000", "Admin listener port; 0 picks a free port."),
    Setting("LOG_LEVEL", "log_level", _choice(*LOG_LEVELS), "info", "Lowest level written: debug|info|warning|error."),
    Setting("LOG_FORMAT", "log_format", _choice("json", "console"), "json", "json (one object per line) or console."),
    Setting("DATABASE_PATH", "database_path", _text, "svc.db", "SQLite file, created at start (WAL mode)."),
    Setting(
        "DATABASE_URL",
        "database_url",
        _postgres_url,
        None,
        "postgresql://user:password@host:port/db selects PostgreSQL; unset means SQLite at DATABASE_PATH.",
        secret=True,
    ),
    Setting("DATABASE_POOL_SIZE", "database_pool_size", _integer(1, 1000), "10", "Most PostgreSQL connections held."),
    Setting(
        "DATABASE_POOL_TIMEOUT",
        "database_pool_timeout",
        _positive_seconds,
        "2",
        "Seconds a request waits for a connection (or to connect) before a 503.",
    ),
    Setting(
        "DATABASE_QUERY_TIMEOUT",
        "database_query_timeout",
        _positive_seconds,
        "5",
        "Seconds a query may take (PostgreSQL: then cancelled; SQLite: waiting on a lock) before a 503.",
    ),
    Setting("SHUTDOWN_DRAIN", "shutdown_drain", _seconds, "0", "Seconds /readyz answers 503 before listeners close."),
    Setting("SHUTDOWN_TIMEOUT", "shutdown_timeout", _seconds, "10", "Seconds in-flight requests get to finish."),
    Setting("MAX_BODY_BYTES", "max_body_bytes", _integer(1), "65536", "Largest request body; larger gets 413."),
    Setting(
        "MAX_HEADER_BYTES",
        "max_header_bytes",
        _integer(1024, 1048576),
        "16384",
        "Largest request head (request line and headers); larger gets 431.",
    ),
    Setting("MAX_HEADERS", "max_headers", _integer(1, 10000), "100", "Most header fields a request may carry (431)."),
    Setting(
        "HEADER_TIMEOUT",
        "header_timeout",
        _positive_seconds,
        "10",
        "Seconds a client gets to send a whole request head; then 408 and close.",
    ),
    Setting(
        "KEEPALIVE_TIMEOUT", "keepalive_timeout", _integer(1, 3600), "5", "Seconds an idle keep-alive connection lives."
    ),
    Setting(
        "MAX_CONNECTIONS",
        "max_connections",
        _integer(1),
        "1000",
        "Most open public connections (lowered to fit the fd limit); beyond it 503.",
    ),
    Setting("FAULTS_ENABLED", "faults_enabled", _boolean, "false", "Serve GET /fault, which fails on purpose (lab)."),
    Setting("PROFILING_ENABLED", "profiling_enabled", _boolean, "false", "Serve /debug/profile on the admin listener."),
    Setting("DEPLOYMENT_ENVIRONMENT", "environment", _text, "local", "deployment.environment.name on every signal."),
    Setting("OTEL_SERVICE_NAME", "service_name", _text, "svc", "service.name on every signal."),
    Setting("OTEL_SDK_DISABLED", "otel_disabled", _boolean, "false", "true turns tracing off."),
    Setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "otlp_endpoint",
        _http_url,
        None,
        "OTLP base URL; unset means spans are made but not exported.",
    ),
    Setting(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "otlp_traces_endpoint",
        _http_url,
        None,
        "OTLP traces URL, used as is (overrides the base URL).",
    ),
    Setting(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "otlp_protocol",
        _choice("grpc", "http/protobuf"),
        "grpc",
        "grpc or http/protobuf.",
    ),
    Setting(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "otlp_headers",
        _headers,
        None,
        "Export headers, key=value pairs separated by commas.",
        secret=True,
    ),
    Setting("OTEL_EXPORTER_OTLP_TIMEOUT", "otlp_timeout_ms", _integer(1), "10000", "Export timeout in milliseconds."),
    Setting(
        "OTEL_EXPORTER_OTLP_CERTIFICATE", "otlp_certificate", _readable_file, None, "PEM CA file for an https endpoint."
    ),
    Setting(
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "otlp_client_certificate",
        _readable_file,
        None,
        "PEM client certificate (mTLS).",
    ),
    Setting("OTEL_EXPORTER_OTLP_CLIENT_KEY", "otlp_client_key", _readable_file, None, "PEM client key (mTLS)."),
    Setting(
        "OTEL_TRACES_SAMPLER", "sampler", _choice(*SAMPLERS), "parentbased_always_on", "Head sampler (OTel names)."
    ),
    Setting("OTEL_TRACES_SAMPLER_ARG", "sampler_arg", _ratio, "1.0", "Ratio for the traceidratio samplers."),
    Setting("SENTRY_DSN", "sentry_dsn", _sentry_dsn, None, "Send 5xx errors to Sentry; unset turns it off.", True),
    Setting("SENTRY_ENVIRONMENT", "sentry_environment", _text, None, "Sentry environment; default the deployment's."),
    Setting("SENTRY_RELEASE", "sentry_release", _text, None, "Sentry release; default svc@<version>+<commit>."),
)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything svc was told by its environment, typed and checked."""

    host: str = "127.0.0.1"
    port: int = 8000
    admin_host: str = "127.0.0.1"
    admin_port: int = 9000
    log_level: str = "info"
    log_format: LogFormat = "json"
    database_path: str = "svc.db"
    database_url: str | None = None
    database_pool_size: int = 10
    database_pool_timeout: float = 2.0
    database_query_timeout: float = 5.0
    shutdown_drain: float = 0.0
    shutdown_timeout: float = 10.0
    max_body_bytes: int = 65536
    max_header_bytes: int = 16384
    max_headers: int = 100
    header_timeout: float = 10.0
    keepalive_timeout: int = 5
    max_connections: int = 1000
    faults_enabled: bool = False
    profiling_enabled: bool = False
    environment: str = "local"
    service_name: str = "svc"
    otel_disabled: bool = False
    otlp_endpoint: str | None = None
    otlp_traces_endpoint: str | None = None
    otlp_protocol: OtlpProtocol = "grpc"
    otlp_headers: tuple[tuple[str, str], ...] | None = None
    otlp_timeout_ms: int = 10000
    otlp_certificate: str | None = None
    otlp_client_certificate: str | None = None
    otlp_client_key: str | None = None
    sampler: str = "parentbased_always_on"
    sampler_arg: float = 1.0
    sentry_dsn: str | None = None
    sentry_environment: str | None = None
    sentry_release: str | None = None

    @classmethod
    def from_env(cls, getenv: Getenv) -> Config:
        """Read every declared variable; raise ConfigError naming all bad ones at once."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = getenv(setting.env)
            if raw is None or raw == "":
                if setting.default is not None:
                    values[setting.field] = setting.parse(setting.default)
                continue
            try:
                values[setting.field] = setting.parse(raw)
            except _InvalidError as err:
                shown = "<redacted>" if setting.secret else repr(raw)
                problems.append(f"{setting.env}={shown} {err}")
        problems += _clashes(values)
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (tests and benchmarks build variants this way)."""
        return dataclasses.replace(self, **changes)


def _clashes(values: dict[str, Any]) -> list[str]:
    """Problems between variables that are each valid alone."""
    port, admin_port = values.get("port"), values.get("admin_port")
    if port is not None and port == admin_port and port != 0:
        return [f"PORT='{port}' is the same port as ADMIN_PORT='{admin_port}' (the listeners need two ports, or 0)"]
    return _tls_clashes(values)


def _tls_clashes(values: dict[str, Any]) -> list[str]:
    """A client certificate without its key, or the other way round."""
    if (values.get("otlp_client_certificate") is None) != (values.get("otlp_client_key") is None):
        return ["OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together (both or neither)"]
    return []


def help_table() -> str:
    """The variables as a plain-text table, for `svc --help`."""
    rows = [("VARIABLE", "DEFAULT", "MEANING")]
    rows += [(s.env, s.default if s.default is not None else "-", s.help) for s in SETTINGS]
    width_env = max(len(r[0]) for r in rows)
    width_default = max(len(r[1]) for r in rows)
    return "\n".join(f"{e:<{width_env}}  {d:<{width_default}}  {h}" for e, d, h in rows)


def markdown_table() -> str:
    """The variables as a Markdown table, for the README (a test keeps the two in step)."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default is not None else "unset"
        lines.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines)
