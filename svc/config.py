"""Configuration: every environment variable svc reads, declared once as a field of the frozen Config."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from svc import parsers
from svc.parsers import InvalidValueError, Parser

__all__ = [
    "SETTINGS",
    "Config",
    "ConfigError",
    "Getenv",
    "Setting",
    "declared_settings",
    "help_table",
    "markdown_table",
    "setting",
]

T = TypeVar("T")

Getenv = Callable[[str], "str | None"]

LogFormat = Literal["json", "console"]
OtlpProtocol = Literal["grpc", "http/protobuf"]

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console")
OTLP_PROTOCOLS: tuple[OtlpProtocol, ...] = ("grpc", "http/protobuf")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class ConfigError(Exception):
    """One or more environment variables hold values svc cannot use; each line names one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, the Config field it fills, how to parse it, its default, its help line."""

    env: str
    field: str  # "" as setting() makes it; declared_settings() fills in the name of the field it sits on
    parse: Parser[Any]
    default: str | None
    help: str
    secret: bool = False


# Where setting() leaves its Setting on the dataclass field (the metadata mapping is dataclasses' documented slot
# for third-party data).
_METADATA_KEY = "svc.setting"


@overload
def setting(env: str, parse: Parser[T], default: str, help: str, *, secret: bool = False) -> T: ...
@overload
def setting(env: str, parse: Parser[T], default: None, help: str, *, secret: bool = False) -> T | None: ...
def setting(env: str, parse: Parser[T], default: str | None, help: str, *, secret: bool = False) -> Any:
    """Declare a Config field as filled from `env` by `parse`; its Python default is `parse(default)`."""
    # Typed like dataclasses.field(): mypy sees the parser's type (or None when unset) as the field's default, so a
    # field annotated with another type than its parser returns fails the type check. The field gets no name here:
    # declared_settings() takes it from the dataclass, so the name is written once.
    declared = Setting(env=env, field="", parse=parse, default=default, help=help, secret=secret)
    return dataclasses.field(default=None if default is None else parse(default), metadata={_METADATA_KEY: declared})


@dataclass(frozen=True, slots=True)
class Config:
    """Everything svc was told by its environment, typed and checked: one field per variable, declared once here."""

    # Field order is the order of `svc --help`, the README table and the config error lines.
    host: str = setting("HOST", parsers.host, "127.0.0.1", "Public listener address (containers use 0.0.0.0).")
    port: int = setting("PORT", parsers.integer(0, 65535), "8000", "Public listener port; 0 picks a free port.")
    admin_host: str = setting("ADMIN_HOST", parsers.host, "127.0.0.1", "Admin listener address (metrics, profiling).")
    admin_port: int = setting(
        "ADMIN_PORT", parsers.integer(0, 65535), "9000", "Admin listener port; 0 picks a free port."
    )
    log_level: str = setting(
        "LOG_LEVEL", parsers.choice(LOG_LEVELS), "info", "Lowest level written: debug|info|warning|error."
    )
    log_format: LogFormat = setting(
        "LOG_FORMAT", parsers.choice(LOG_FORMATS), "json", "json (one object per line) or console."
    )
    database_path: str = setting("DATABASE_PATH", parsers.text, "svc.db", "SQLite file, created at start (WAL mode).")
    database_url: str | None = setting(
        "DATABASE_URL",
        parsers.postgres_url,
        None,
        "postgresql://user:password@host:port/db selects PostgreSQL; unset means SQLite at DATABASE_PATH.",
        secret=True,
    )
    database_pool_size: int = setting(
        "DATABASE_POOL_SIZE", parsers.integer(1, 1000), "10", "Most PostgreSQL connections held."
    )
    database_pool_timeout: float = setting(
        "DATABASE_POOL_TIMEOUT",
        parsers.positive_seconds,
        "2",
        "Seconds a request waits for a connection (or to connect) before a 503.",
    )
    database_query_timeout: float = setting(
        "DATABASE_QUERY_TIMEOUT",
        parsers.positive_seconds,
        "5",
        "Seconds a query may take (PostgreSQL: then cancelled; SQLite: waiting on a lock) before a 503.",
    )
    shutdown_drain: float = setting(
        "SHUTDOWN_DRAIN", parsers.seconds, "0", "Seconds /readyz answers 503 before listeners close."
    )
    shutdown_timeout: float = setting(
        "SHUTDOWN_TIMEOUT", parsers.seconds, "10", "Seconds in-flight requests get to finish."
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES", parsers.integer(1), "65536", "Largest request body; larger gets 413."
    )
    max_header_bytes: int = setting(
        "MAX_HEADER_BYTES",
        parsers.integer(1024, 1048576),
        "16384",
        "Largest request head (request line and headers); larger gets 431.",
    )
    max_headers: int = setting(
        "MAX_HEADERS", parsers.integer(1, 10000), "100", "Most header fields a request may carry (431)."
    )
    header_timeout: float = setting(
        "HEADER_TIMEOUT",
        parsers.positive_seconds,
        "10",
        "Seconds a client gets to send a whole request head; then 408 and close.",
    )
    keepalive_timeout: int = setting(
        "KEEPALIVE_TIMEOUT", parsers.integer(1, 3600), "5", "Seconds an idle keep-alive connection lives."
    )
    max_connections: int = setting(
        "MAX_CONNECTIONS",
        parsers.integer(1),
        "1000",
        "Most open public connections (lowered to fit the fd limit); beyond it 503.",
    )
    faults_enabled: bool = setting(
        "FAULTS_ENABLED", parsers.boolean, "false", "Serve GET /fault, which fails on purpose (lab)."
    )
    profiling_enabled: bool = setting(
        "PROFILING_ENABLED", parsers.boolean, "false", "Serve /debug/profile on the admin listener."
    )
    environment: str = setting(
        "DEPLOYMENT_ENVIRONMENT", parsers.text, "local", "deployment.environment.name on every signal."
    )
    service_name: str = setting("OTEL_SERVICE_NAME", parsers.text, "svc", "service.name on every signal.")
    otel_disabled: bool = setting("OTEL_SDK_DISABLED", parsers.boolean, "false", "true turns tracing off.")
    otlp_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        parsers.http_url,
        None,
        "OTLP base URL; unset means spans are made but not exported.",
    )
    otlp_traces_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        parsers.http_url,
        None,
        "OTLP traces URL, used as is (overrides the base URL).",
    )
    otlp_protocol: OtlpProtocol = setting(
        "OTEL_EXPORTER_OTLP_PROTOCOL", parsers.choice(OTLP_PROTOCOLS), "grpc", "grpc or http/protobuf."
    )
    otlp_headers: tuple[tuple[str, str], ...] | None = setting(
        "OTEL_EXPORTER_OTLP_HEADERS",
        parsers.headers,
        None,
        "Export headers: key=value pairs separated by commas, percent-decoded (%20 for a space).",
        secret=True,
    )
    otlp_timeout_ms: int = setting(
        "OTEL_EXPORTER_OTLP_TIMEOUT", parsers.integer(1), "10000", "Export timeout in milliseconds."
    )
    otlp_certificate: str | None = setting(
        "OTEL_EXPORTER_OTLP_CERTIFICATE", parsers.readable_file, None, "PEM CA file for an https endpoint."
    )
    otlp_client_certificate: str | None = setting(
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", parsers.readable_file, None, "PEM client certificate (mTLS)."
    )
    otlp_client_key: str | None = setting(
        "OTEL_EXPORTER_OTLP_CLIENT_KEY", parsers.readable_file, None, "PEM client key (mTLS)."
    )
    sampler: str = setting(
        "OTEL_TRACES_SAMPLER", parsers.choice(SAMPLERS), "parentbased_always_on", "Head sampler (OTel names)."
    )
    sampler_arg: float = setting(
        "OTEL_TRACES_SAMPLER_ARG", parsers.ratio, "1.0", "Ratio for the traceidratio samplers."
    )
    sentry_dsn: str | None = setting(
        "SENTRY_DSN", parsers.sentry_dsn, None, "Send 5xx errors to Sentry; unset turns it off.", secret=True
    )
    sentry_environment: str | None = setting(
        "SENTRY_ENVIRONMENT", parsers.text, None, "Sentry environment; default the deployment's."
    )
    sentry_release: str | None = setting(
        "SENTRY_RELEASE", parsers.text, None, "Sentry release; default svc@<version>+<commit>."
    )

    @classmethod
    def from_env(cls, getenv: Getenv) -> Config:
        """Read every declared variable; raise ConfigError naming all bad ones at once."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for declared in SETTINGS:
            raw = getenv(declared.env)
            if raw is None or raw == "":
                if declared.default is not None:
                    values[declared.field] = declared.parse(declared.default)
                continue
            try:
                values[declared.field] = declared.parse(raw)
            except InvalidValueError as err:
                shown = "<redacted>" if declared.secret else repr(raw)
                problems.append(f"{declared.env}={shown} {err}")
        problems += _clashes(values)
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (tests and benchmarks build variants this way)."""
        return dataclasses.replace(self, **changes)


def declared_settings(cls: type[Any]) -> tuple[Setting, ...]:
    """Each field's Setting, named after its field, in field order; TypeError unless each is declared once."""
    found: list[Setting] = []
    for field in dataclasses.fields(cls):
        declared = field.metadata.get(_METADATA_KEY)
        if not isinstance(declared, Setting):
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with setting(...)")
        found.append(dataclasses.replace(declared, field=field.name))
    envs = [s.env for s in found]
    if twice := sorted({env for env in envs if envs.count(env) > 1}):
        raise TypeError(f"{cls.__name__} reads {', '.join(twice)} into more than one field")
    return tuple(found)


# Derived, never written by hand: `svc --help`, the README table, Config.from_env and the k8s tests read this.
SETTINGS: tuple[Setting, ...] = declared_settings(Config)


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
