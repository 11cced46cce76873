"""Config: one declaration per variable (a Config field), typed parsing, all bad values named at once, no secrets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mypy.api
import pytest
import sentry_sdk

from svc import parsers
from svc.config import SETTINGS, Config, ConfigError, declared_settings, help_table, markdown_table, setting

# One bad value per variable, and the exact complaint it must produce.
BAD_VALUES: dict[str, tuple[str, str]] = {
    "HOST": ("http://0.0.0.0/", "is not a host name or IP address"),
    "PORT": ("abc", "is not an integer (0-65535)"),
    "ADMIN_HOST": ("my host", "is not a host name or IP address"),
    "ADMIN_PORT": ("65536", "is not an integer (0-65535)"),
    "LOG_LEVEL": ("verbose", "is not one of debug|info|warning|error"),
    "LOG_FORMAT": ("xml", "is not one of json|console"),
    "DATABASE_PATH": ("svc\n.db", "is not a non-empty single-line string"),
    "DATABASE_URL": (
        "mysql://svc:s3cret@db/svc",
        "is not a postgresql://[user[:password]@]host[:port]/database URL",
    ),
    "DATABASE_POOL_SIZE": ("0", "is not an integer (1-1000)"),
    "DATABASE_POOL_TIMEOUT": ("0", "is not a number of seconds (> 0)"),
    "DATABASE_QUERY_TIMEOUT": ("-5", "is not a number of seconds (> 0)"),
    "SHUTDOWN_DRAIN": ("-1", "is not a number of seconds (>= 0)"),
    "SHUTDOWN_TIMEOUT": ("soon", "is not a number of seconds (>= 0)"),
    "MAX_BODY_BYTES": ("0", "is not an integer (>= 1)"),
    "MAX_HEADER_BYTES": ("512", "is not an integer (1024-1048576)"),
    "MAX_HEADERS": ("0", "is not an integer (1-10000)"),
    "HEADER_TIMEOUT": ("0", "is not a number of seconds (> 0)"),
    "KEEPALIVE_TIMEOUT": ("2.5", "is not an integer (1-3600)"),
    "MAX_CONNECTIONS": ("none", "is not an integer (>= 1)"),
    "FAULTS_ENABLED": ("maybe", "is not a boolean (true|false)"),
    "PROFILING_ENABLED": ("2", "is not a boolean (true|false)"),
    "DEPLOYMENT_ENVIRONMENT": ("prod\x1b[0m", "is not a non-empty single-line string"),
    "OTEL_SERVICE_NAME": ("s\tvc", "is not a non-empty single-line string"),
    "OTEL_SDK_DISABLED": ("nope", "is not a boolean (true|false)"),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("localhost:4317", "is not an http(s) URL"),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ("ftp://collector/v1/traces", "is not an http(s) URL"),
    "OTEL_EXPORTER_OTLP_PROTOCOL": ("http/json", "is not one of grpc|http/protobuf"),
    "OTEL_EXPORTER_OTLP_HEADERS": ("Bearer s3cret", "is not a list of key=value pairs separated by commas"),
    "OTEL_EXPORTER_OTLP_TIMEOUT": ("0", "is not an integer (>= 1)"),
    "OTEL_EXPORTER_OTLP_CERTIFICATE": ("/nonexistent/ca.pem", "is not a readable file"),
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": ("/nonexistent/client.pem", "is not a readable file"),
    "OTEL_EXPORTER_OTLP_CLIENT_KEY": ("/nonexistent/client.key", "is not a readable file"),
    "OTEL_TRACES_SAMPLER": (
        "sometimes",
        "is not one of always_on|always_off|traceidratio|parentbased_always_on|parentbased_always_off"
        "|parentbased_traceidratio",
    ),
    "OTEL_TRACES_SAMPLER_ARG": ("1.5", "is not a ratio (0.0-1.0)"),
    "SENTRY_DSN": ("https://s3cret@/42", "is not a Sentry DSN (https://<key>@<host>/<project>)"),
    "SENTRY_ENVIRONMENT": ("a\nb", "is not a non-empty single-line string"),
    "SENTRY_RELEASE": ("   ", "is not a non-empty single-line string"),
}

SECRET_ENVS = [s.env for s in SETTINGS if s.secret]


def test_settings_are_the_config_fields_in_declaration_order() -> None:
    assert [s.field for s in SETTINGS] == [f.name for f in dataclasses.fields(Config)]


def test_a_config_field_without_a_setting_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Partial:
        port: int = setting("PORT", parsers.integer(0, 65535), "8000", "Public listener port.")
        forgotten: int = 7

    with pytest.raises(TypeError, match=r"Partial\.forgotten is not declared with setting"):
        declared_settings(Partial)


def test_one_variable_read_into_two_fields_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Twice:
        port: int = setting("PORT", parsers.integer(0, 65535), "8000", "Public listener port.")
        other_port: int = setting("PORT", parsers.integer(0, 65535), "8001", "The same variable again.")

    with pytest.raises(TypeError, match="Twice reads PORT into more than one field"):
        declared_settings(Twice)


def test_each_config_default_is_its_declared_default_parsed() -> None:
    defaults = Config()
    for declared in SETTINGS:
        expected = None if declared.default is None else declared.parse(declared.default)
        assert getattr(defaults, declared.field) == expected, declared.env


def test_setting_every_variable_to_its_declared_default_changes_nothing() -> None:
    env = {s.env: s.default for s in SETTINGS if s.default is not None}
    assert Config.from_env(env.get) == Config()


# A field whose annotation differs from what its parser returns; the type check must name that line and no other.
TYPE_PROBE = """\
from dataclasses import dataclass

from svc import parsers
from svc.config import setting


@dataclass(frozen=True)
class Probe:
    right: int = setting("RIGHT", parsers.integer(0, 9), "1", "An int parsed to an int.")
    unset: str | None = setting("UNSET", parsers.text, None, "No default: the field may be None.")
    wrong: str = setting("WRONG", parsers.integer(0, 9), "1", "An int declared as a str.")
"""


def test_a_field_typed_unlike_its_parser_fails_the_type_check(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(TYPE_PROBE)
    out, err, status = mypy.api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(probe)])
    assert status == 1, out + err
    errors = [line for line in out.splitlines() if ": error:" in line]
    wrong = next(number for number, line in enumerate(TYPE_PROBE.splitlines(), 1) if "wrong:" in line)
    assert errors == [
        f'{probe}:{wrong}: error: Incompatible types in assignment (expression has type "int", variable has type '
        '"str")  [assignment]'
    ]


def test_empty_environment_gives_the_default_config() -> None:
    empty: dict[str, str] = {}
    assert Config.from_env(empty.get) == Config()


def test_contract_defaults() -> None:
    empty: dict[str, str] = {}
    config = Config.from_env(empty.get)
    assert (config.host, config.port, config.admin_host, config.admin_port) == ("127.0.0.1", 8000, "127.0.0.1", 9000)
    assert (config.log_level, config.log_format) == ("info", "json")
    assert (config.shutdown_drain, config.shutdown_timeout, config.max_body_bytes) == (0.0, 10.0, 65536)
    assert (config.faults_enabled, config.profiling_enabled) == (False, False)
    assert (config.environment, config.service_name, config.otlp_protocol) == ("local", "svc", "grpc")
    assert (config.otlp_endpoint, config.sentry_dsn) == (None, None)


def test_empty_value_means_unset() -> None:
    assert Config.from_env({"PORT": "", "LOG_LEVEL": ""}.get) == Config()


def test_values_are_parsed_to_their_types() -> None:
    env = {
        "PORT": " 0 ",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "Console",
        "SHUTDOWN_DRAIN": "1.5",
        "FAULTS_ENABLED": "yes",
        "OTEL_SDK_DISABLED": "0",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20x, x-tenant=a",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
    }
    config = Config.from_env(env.get)
    assert config.port == 0
    assert config.log_level == "debug"
    assert config.log_format == "console"
    assert config.shutdown_drain == 1.5
    assert config.faults_enabled is True
    assert config.otel_disabled is False
    assert config.otlp_headers == (("authorization", "Bearer x"), ("x-tenant", "a"))
    assert config.sampler_arg == 0.25


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


def test_every_variable_has_a_bad_value_case() -> None:
    assert set(BAD_VALUES) == {s.env for s in SETTINGS}


@pytest.mark.parametrize("env", list(BAD_VALUES))
def test_bad_value_is_one_problem_naming_the_variable_and_what_it_accepts(env: str) -> None:
    raw, accepts = BAD_VALUES[env]
    with pytest.raises(ConfigError) as caught:
        Config.from_env({env: raw}.get)
    shown = "<redacted>" if env in SECRET_ENVS else repr(raw)
    assert caught.value.problems == [f"{env}={shown} {accepts}"]


@pytest.mark.parametrize(
    ("env", "raw"),
    [
        ("PORT", "-1"),
        ("PORT", "8000.0"),
        ("SHUTDOWN_DRAIN", "nan"),
        ("SHUTDOWN_TIMEOUT", "inf"),
        ("HEADER_TIMEOUT", "nan"),
        ("MAX_HEADER_BYTES", "1048577"),
        ("OTEL_TRACES_SAMPLER_ARG", "-0.1"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "=value"),
        ("SENTRY_DSN", "https://key@sentry.example.com/"),
        ("SENTRY_DSN", "https://key@sentry.example.com/notanumber"),
        ("SENTRY_DSN", "https://key@sentry.example.com:99999/1"),
        ("HOST", "user@host"),
        ("HOST", "300.1.1.1"),
        ("HOST", "-svc"),
        ("ADMIN_HOST", "a..b"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:port"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://[::1:4318/v1/traces"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x tenant=a"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=caf\u00e9"),
        ("DATABASE_URL", "postgresql://svc:s3cret@db:port/svc"),
        ("DATABASE_URL", "postgresql:///svc"),
        ("DATABASE_POOL_TIMEOUT", "inf"),
    ],
)
def test_edge_values_are_rejected(env: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({env: raw}.get)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{env}=")


def test_all_bad_variables_are_reported_together_in_declaration_order() -> None:
    env = {"LOG_LEVEL": "loud", "PORT": "abc", "FAULTS_ENABLED": "maybe", "HOST": "127.0.0.1"}
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env.get)
    assert caught.value.problems == [
        "PORT='abc' is not an integer (0-65535)",
        "LOG_LEVEL='loud' is not one of debug|info|warning|error",
        "FAULTS_ENABLED='maybe' is not a boolean (true|false)",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


@pytest.mark.parametrize("env", SECRET_ENVS)
def test_secret_values_are_redacted_in_errors(env: str) -> None:
    raw = BAD_VALUES[env][0]
    with pytest.raises(ConfigError) as caught:
        Config.from_env({env: raw}.get)
    assert "s3cret" in raw
    assert "s3cret" not in str(caught.value)
    assert caught.value.problems[0].startswith(f"{env}=<redacted> ")


def test_secrets_include_the_sentry_dsn_the_otlp_headers_and_the_database_url() -> None:
    assert {"SENTRY_DSN", "OTEL_EXPORTER_OTLP_HEADERS", "DATABASE_URL"} <= set(SECRET_ENVS)


def test_a_postgresql_url_with_credentials_and_port_is_accepted() -> None:
    url = "postgresql://svc:p%40ss@db.internal:6432/links?sslmode=require"
    assert Config.from_env({"DATABASE_URL": url}.get).database_url == url


def test_help_table_lists_every_variable_with_its_default() -> None:
    lines = help_table().splitlines()
    assert lines[0].split() == ["VARIABLE", "DEFAULT", "MEANING"]
    for declared, line in zip(SETTINGS, lines[1:], strict=True):
        assert line.split()[0] == declared.env
        assert line.split()[1] == (declared.default if declared.default is not None else "-")
        assert declared.help in line


def test_markdown_table_has_one_row_per_variable() -> None:
    rows = markdown_table().splitlines()
    assert rows[:2] == ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    assert [row.split("|")[1].strip() for row in rows[2:]] == [f"`{s.env}`" for s in SETTINGS]


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "svc", "svc_api.lab.example."])
def test_host_names_and_ip_addresses_are_accepted(host: str) -> None:
    assert Config.from_env({"HOST": host, "ADMIN_HOST": host}.get).host == host


def test_the_same_nonzero_port_for_both_listeners_is_one_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"PORT": "8080", "ADMIN_PORT": " 8080"}.get)
    assert caught.value.problems == [
        "PORT='8080' is the same port as ADMIN_PORT='8080' (the listeners need two ports, or 0)"
    ]


def test_the_default_admin_port_clashes_with_port_9000() -> None:
    with pytest.raises(ConfigError):
        Config.from_env({"PORT": "9000"}.get)


def test_a_client_certificate_without_its_key_is_one_problem(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("not checked here: only that it can be read\n")
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(pem)}.get)
    assert caught.value.problems == [
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together (both or neither)"
    ]


def test_port_0_for_both_listeners_is_fine() -> None:
    config = Config.from_env({"PORT": "0", "ADMIN_PORT": "0"}.get)
    assert (config.port, config.admin_port) == (0, 0)


# DSNs on both sides of each rule the Sentry SDK applies when a client is made (scheme, host, port, key, project).
DSNS = [
    "https://key@o1.ingest.sentry.io/42",
    "http://lab@sentry-sink:8969/1",
    "https://key:secret@sentry.example.com/prefix/7",
    "https://key@[::1]:9000/3",
    "https://key@host/notanumber",
    "https://key@host/1x",
    "https://key@host/1/",
    "https://key@host/",
    "https://key@host",
    "https://key@host:99999/1",
    "https://key@host:port/1",
    "https://key@[::1/1",
    "https://@host/1",
    "https://host/1",
    "https://key@/1",
    "ftp://key@host/1",
    "key@host/1",
    "not-a-dsn",
]


def _sdk_accepts(dsn: str) -> bool:
    # The public way to ask the SDK: a client is made from the DSN, or the constructor raises (BadDsn, ValueError).
    try:
        client = sentry_sdk.Client(dsn=dsn, default_integrations=False, auto_enabling_integrations=False)
    except Exception:
        return False
    client.close(timeout=0)
    return True


def _config_accepts(dsn: str) -> bool:
    try:
        Config.from_env({"SENTRY_DSN": dsn}.get)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("dsn", DSNS)
def test_sentry_dsn_is_accepted_exactly_when_the_installed_sentry_sdk_accepts_it(dsn: str) -> None:
    assert _config_accepts(dsn) == _sdk_accepts(dsn), f"svc.config and sentry_sdk disagree on {dsn!r}"


def test_the_dsn_cases_cover_both_verdicts() -> None:
    verdicts = {_sdk_accepts(dsn) for dsn in DSNS}
    assert verdicts == {True, False}
