"""The benchmark's variants, one table: each row says what it is, how it starts, where its telemetry goes."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BASELINE_SUFFIX",
    "DEFAULT_VARIANTS",
    "TABLE",
    "VARIANTS",
    "Mode",
    "Runs",
    "Variant",
    "check_keys",
    "variant_of",
]

# Where a variant's OTLP endpoint and Sentry DSN point (bench/receivers.py): none, the live receivers, a port
# nothing listens on, or a listener that accepts and never answers.
Mode = Literal["none", "live", "refused", "blackhole"]
BASELINE_SUFFIX = "@base"


class Runs(enum.Enum):
    """The program a variant runs (bench/launch.py turns it into a command line)."""

    SVC = "python -m svc"
    SVC_RUN = "svc.main.run, without tune_gc()"
    SVC_APP = "python -m bench.servers svc"
    BARE = "python -m bench.servers bare"
    NAIVE = "python -m bench.servers naive"
    GO = "bench/go binary"

    @property
    def is_svc(self) -> bool:
        """svc configured from the environment: the programs a `<key>@base` variant can take from another tree."""
        return self in (Runs.SVC, Runs.SVC_RUN, Runs.SVC_APP)


@dataclass(frozen=True, slots=True)
class Variant:
    """One server configuration under test."""

    key: str
    label: str
    description: str
    runs: Runs
    mode: Mode
    # svc variants: changes to the environment of (b) (None removes the variable). Diagnostic variants take one
    # part of the telemetry away, to price each part.
    env: Mapping[str, str | None] = field(default_factory=dict)
    args: tuple[str, ...] = ()  # appended to a bench.servers command line
    postgres: bool = False  # served from the benchmark's PostgreSQL database instead of the SQLite file
    baseline: bool = False  # svc imported from the --baseline tree


_SAMPLED_10 = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
_NO_TRACING = {"OTEL_SDK_DISABLED": "true"}

TABLE: tuple[Variant, ...] = (
    Variant(
        "a",
        "(a) bare Litestar",
        "svc's route handlers in svc's Litestar app, no middleware, no telemetry; uvicorn+uvloop+httptools "
        "and svc's GC settings, as python -m svc runs",
        Runs.BARE,
        "none",
    ),
    Variant(
        "b",
        "(b) svc, full telemetry",
        "python -m svc: 100 % of traces exported over OTLP/gRPC to a live receiver, one access line per "
        "request to a file, RED metrics, Sentry armed (DSN to a live sink)",
        Runs.SVC,
        "live",
    ),
    Variant(
        "c",
        "(c) svc, 10 % sampling",
        "as (b) with OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0.1",
        Runs.SVC,
        "live",
        _SAMPLED_10,
    ),
    Variant(
        "c0",
        "(c0) svc, tracing on, 0 % sampled",
        "as (c) with OTEL_TRACES_SAMPLER_ARG=0: no span recorded",
        Runs.SVC,
        "live",
        {**_SAMPLED_10, "OTEL_TRACES_SAMPLER_ARG": "0"},
    ),
    Variant(
        "d-refused",
        "(d) svc, backends refusing",
        "as (b) with the OTLP and Sentry endpoints on a port nothing listens on (connection refused)",
        Runs.SVC,
        "refused",
    ),
    Variant(
        "d-blackhole",
        "(d) svc, backends blackholed",
        "as (b) with the OTLP and Sentry endpoints on a listener that accepts and never answers",
        Runs.SVC,
        "blackhole",
    ),
    Variant(
        "e",
        "(e) naive stack",
        "the same handlers with Litestar's stock OpenTelemetry plugin, Prometheus middleware, LoggingConfig and "
        "LoggingMiddleware, and sentry_sdk.init (LitestarIntegration auto-enabled), exporting to the same receiver",
        Runs.NAIVE,
        "live",
    ),
    Variant(
        "f",
        "(f) Go net/http + slog",
        "bench/go: stdlib net/http, log/slog JSON access line per request, same SQLite query (modernc.org/sqlite)",
        Runs.GO,
        "none",
    ),
    Variant(
        "a-granian",
        "(a') bare Litestar on granian",
        "as (a) served by granian's embedded server",
        Runs.BARE,
        "none",
        args=("--server", "granian"),
    ),
    Variant(
        "a-default-gc",
        "(a') bare Litestar, default GC",
        "as (a) with CPython's default GC settings",
        Runs.BARE,
        "none",
        args=("--default-gc",),
    ),
    Variant(
        "b-noexport",
        "(b-) svc, spans not exported",
        "as (b) without an OTLP endpoint: spans made, not sent",
        Runs.SVC,
        "live",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": None},
    ),
    Variant(
        "b-nolog",
        "(b-) svc, no access line",
        "as (b) with LOG_LEVEL=warning",
        Runs.SVC,
        "live",
        {"LOG_LEVEL": "warning"},
    ),
    Variant("b-notrace", "(b-) svc, tracing off", "as (b) with OTEL_SDK_DISABLED=true", Runs.SVC, "live", _NO_TRACING),
    Variant("b-nosentry", "(b-) svc, Sentry off", "as (b) without SENTRY_DSN", Runs.SVC, "live", {"SENTRY_DSN": None}),
    Variant(
        "b-default-gc",
        "(b') svc, default GC",
        "as (b) started through svc.main.run without tune_gc()",
        Runs.SVC_RUN,
        "live",
    ),
    Variant(
        "b-middleware",
        "(b-) svc, middleware and metrics only",
        "as (b) with tracing off, no access line, no Sentry: the request id, RED metrics and one extra ASGI pass",
        Runs.SVC,
        "live",
        {**_NO_TRACING, "LOG_LEVEL": "warning", "SENTRY_DSN": None},
    ),
    Variant(
        "b-granian",
        "(b') svc on granian",
        "as (b) (public app only) served by granian's embedded server",
        Runs.SVC_APP,
        "live",
        args=("--server", "granian"),
    ),
    Variant(
        "a-pg",
        "(a) bare Litestar, PostgreSQL",
        "as (a) on PostgreSQL through svc's asyncpg store (pool of 10) instead of the SQLite file; a throwaway "
        "PostgreSQL 15 cluster on loopback, fsync on, pinned to the load cores",
        Runs.BARE,
        "none",
        args=("--driver", "asyncpg"),
        postgres=True,
    ),
    Variant(
        "a-pg-psycopg",
        "(a) bare Litestar, PostgreSQL via psycopg 3",
        "as (a-pg) through psycopg 3 (binary) and psycopg_pool instead of asyncpg (bench/psycopg_store.py)",
        Runs.BARE,
        "none",
        args=("--driver", "psycopg"),
        postgres=True,
    ),
    Variant(
        "b-pg",
        "(b) svc, full telemetry, PostgreSQL",
        "as (b) with DATABASE_URL: svc's asyncpg store",
        Runs.SVC,
        "live",
        postgres=True,
    ),
)
VARIANTS: dict[str, Variant] = {v.key: v for v in TABLE}  # in the order of the table: --help lists them so
DEFAULT_VARIANTS = ("a", "b", "c", "d-refused", "d-blackhole", "e", "f")


def variant_of(key: str) -> Variant:
    """The variant for key; `<svc variant>@base` is that variant run from the --baseline tree's svc."""
    if not key.endswith(BASELINE_SUFFIX):
        return VARIANTS[key]
    plain = VARIANTS[key.removesuffix(BASELINE_SUFFIX)]
    if not plain.runs.is_svc:
        raise SystemExit(f"{key}: only an svc variant runs from a --baseline tree")
    return dataclasses.replace(
        plain,
        key=key,
        label=f"{plain.label} [baseline]",
        description=f"{plain.description}; svc imported from the baseline tree",
        baseline=True,
    )


def check_keys(keys: Iterable[str]) -> None:
    """Exit with the list of known keys unless every key names a variant (or one's `@base`)."""
    unknown = sorted({k for k in keys if k.removesuffix(BASELINE_SUFFIX) not in VARIANTS})
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
