"""A variant's command line and environment on fresh ports: what bench/process.py starts."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.receivers import Backends
from bench.variants import Runs, Variant
from harness.backends import free_port

__all__ = ["REPO", "Launch", "launch_for"]

REPO = Path(__file__).resolve().parent.parent
# svc.main.run as `python -m svc` calls it, minus the tune_gc() of svc/__main__.py.
_RUN_WITHOUT_TUNE_GC = "import os, sys; from svc.main import run; sys.exit(run(['svc'], os.environ.get, sys.stdout))"


@dataclass
class Launch:
    """How to start one variant."""

    argv: list[str]
    env: dict[str, str]
    port: int
    admin_port: int | None = None
    cwd: Path = REPO


def _base_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


def _svc_env(variant: Variant, port: int, admin_port: int, db: Path, backends: Backends) -> dict[str, str]:
    """svc's configuration for (b), with the variant's changes on top."""
    env = _base_env() | {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(admin_port),
        "DATABASE_PATH": str(db),
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
        "SHUTDOWN_TIMEOUT": "5",
        "DEPLOYMENT_ENVIRONMENT": "bench",
        "OTEL_EXPORTER_OTLP_ENDPOINT": backends.otlp_endpoint(variant.mode),
        "SENTRY_DSN": backends.sentry_dsn(variant.mode),
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
    }
    for name, value in variant.env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _servers(kind: str, port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench.servers", kind, "--port", str(port), *args]


def launch_for(
    variant: Variant,
    db: Path,
    backends: Backends,
    *,
    go_binary: Path | None = None,
    baseline: Path | None = None,
    postgres_url: str | None = None,
) -> Launch:
    """The command line and environment of the variant on fresh ports."""
    port = free_port()
    if variant.postgres and postgres_url is None:
        raise RuntimeError(f"variant {variant.key} needs PostgreSQL (bench/postgres.py)")
    store = ["--database-url", postgres_url] if variant.postgres and postgres_url else ["--db", str(db)]
    match variant.runs:
        case Runs.BARE:
            launch = Launch(_servers("bare", port, *store, *variant.args), _base_env(), port)
        case Runs.NAIVE:
            live = ["--otlp", backends.otlp_endpoint(variant.mode), "--sentry-dsn", backends.sentry_dsn(variant.mode)]
            launch = Launch(_servers("naive", port, *store, *live, *variant.args), _base_env(), port)
        case Runs.GO:
            if go_binary is None:
                raise RuntimeError(f"variant {variant.key} needs Go (go build failed or go is not installed)")
            launch = Launch([str(go_binary)], _base_env() | {"PORT": str(port), "DATABASE_PATH": str(db)}, port)
        case Runs.SVC | Runs.SVC_RUN | Runs.SVC_APP:
            admin_port = free_port()
            env = _svc_env(variant, port, admin_port, db, backends)
            if variant.postgres and postgres_url:
                env["DATABASE_URL"] = postgres_url
            if variant.runs is Runs.SVC_APP:  # bench.servers svc serves the public app only: no admin listener
                launch = Launch(_servers("svc", port, *variant.args), env, port)
            elif variant.runs is Runs.SVC_RUN:
                launch = Launch([sys.executable, "-c", _RUN_WITHOUT_TUNE_GC], env, port, admin_port)
            else:
                launch = Launch([sys.executable, "-m", "svc"], env, port, admin_port)
    if variant.baseline:
        if baseline is None:
            raise SystemExit(f"{variant.key}: needs --baseline TREE")
        launch.env["PYTHONPATH"] = str(baseline)
        launch.cwd = baseline
    return launch
