"""Python servers for the variants that are not `python -m svc` itself.

    python -m bench.servers bare  --port P --db PATH [--server uvicorn|granian]
    python -m bench.servers bare  --port P --database-url URL [--driver asyncpg|psycopg]
    python -m bench.servers naive --port P --db PATH --otlp URL --sentry-dsn DSN
    python -m bench.servers svc   --port P [--server granian]     (svc configured from the environment)

bare: svc's own route handlers in svc's Litestar app, without svc's middleware or any telemetry (the ceiling).
naive: the same handlers with the obvious stock assembly: Litestar's OpenTelemetry plugin, its Prometheus
middleware and controller, its logging config and logging middleware, and sentry_sdk.init (which auto-enables
sentry's LitestarIntegration), exporting to the same OTLP receiver.
Every variant is assembled by svc.service.Service around its public app; under uvicorn the Service also serves
it (svc's settings: uvloop, httptools, the edge protocol, no access log, no server header; an admin listener on
a free port; SIGTERM drains), under granian only the app is served and the Service flushes its telemetry. Bare
and svc also get svc's GC settings (svc.main.tune_gc), naive keeps CPython's defaults as its users would.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from typing import Any

import uvloop
from litestar import Litestar
from litestar.types import ASGIApp

from bench.psycopg_store import PsycopgStore
from svc.app import routes
from svc.buildinfo import read_build_info
from svc.config import Config
from svc.health import Phase
from svc.logs import configure_logging
from svc.main import tune_gc
from svc.server import run_server
from svc.service import AppFactory, Parts, Service
from svc.service import bare_app as bare
from svc.sqlite_store import SqliteStore
from svc.store import Store

__all__ = ["bare_app", "main", "naive"]


def _bare_service(db_path: str, database_url: str | None = None, driver: str = "asyncpg", port: int = 0) -> Service:
    config = Config(port=port, admin_port=0, database_path=db_path, database_url=database_url, otel_disabled=True)
    store: Store | None = None  # what svc runs: SQLite, or the asyncpg store for a DATABASE_URL
    if database_url is not None and driver == "psycopg":
        store = PsycopgStore(database_url, config.database_pool_size)
    return Service(config, store=store, app=bare)


def bare_app(db_path: str, database_url: str | None = None, driver: str = "asyncpg") -> ASGIApp:
    """svc's Litestar app with telemetry off and without svc's middleware, on SQLite or PostgreSQL."""
    return _bare_service(db_path, database_url, driver).app


def naive(otlp_endpoint: str, sentry_dsn: str) -> AppFactory:
    """The stock assembly the issue measured: every plugin with its documented defaults, around svc's routes."""
    import sentry_sdk
    from litestar.logging.config import LoggingConfig
    from litestar.middleware.logging import LoggingMiddlewareConfig
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
    from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    def app(parts: Parts) -> ASGIApp:
        # Sentry's quick start: errors only (no traces_sample_rate), the Litestar integration auto-enabled.
        sentry_sdk.init(dsn=sentry_dsn, environment="bench")
        provider = TracerProvider(resource=Resource.create({"service.name": "naive"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)))
        trace.set_tracer_provider(provider)
        handlers: list[Any] = [*routes(parts.config, parts.lifecycle, parts.build, parts.store, parts.telemetry)]
        handlers.append(PrometheusController)

        async def on_startup() -> None:
            await parts.store.open()
            parts.lifecycle.phase = Phase.SERVING

        return Litestar(
            route_handlers=handlers,
            on_startup=[on_startup],
            on_shutdown=[parts.store.close],
            plugins=[OpenTelemetryPlugin(OpenTelemetryConfig())],
            middleware=[PrometheusConfig().middleware, LoggingMiddlewareConfig().middleware],
            logging_config=LoggingConfig(),
            debug=False,
        )

    return app


def _naive_service(db_path: str, otlp_endpoint: str, sentry_dsn: str, port: int) -> Service:
    config = Config(port=port, admin_port=0, database_path=db_path, otel_disabled=True)
    return Service(config, store=SqliteStore(db_path), app=naive(otlp_endpoint, sentry_dsn))


def _svc_service(port: int) -> Service:
    """svc configured from the environment, as `python -m svc` builds it, on --port."""
    config = Config.from_env(os.environ.get).replace(port=port)
    build = read_build_info()
    configure_logging(config, build.version, sys.stdout)
    return Service(config, build)


async def _serve_granian(service: Service) -> int:
    # granian is in the `bench` dependency group only: imported by name so type checks pass without it.
    interfaces = importlib.import_module("granian.constants").Interfaces
    embed = importlib.import_module("granian.server.embed")
    config = service.parts.config
    server = embed.Server(
        service.app, address=config.host, port=config.port, interface=interfaces.ASGI, log_enabled=False
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.stop)
    try:
        await server.serve()
    finally:
        await service.flush()  # the public app alone under granian; its telemetry still flushes like svc's
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build the variant's app and serve it until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=["bare", "naive", "svc"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default="svc.db")
    parser.add_argument("--database-url", help="bare: serve from this PostgreSQL database instead of --db")
    parser.add_argument("--driver", choices=["asyncpg", "psycopg"], default="asyncpg", help="bare: PostgreSQL driver")
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--otlp", default="http://127.0.0.1:4317")
    parser.add_argument("--sentry-dsn", default="http://key@127.0.0.1:8969/1")
    parser.add_argument("--default-gc", action="store_true", help="keep CPython's GC settings (bare: svc's tune_gc)")
    args = parser.parse_args(argv)
    if args.kind in ("bare", "svc") and not args.default_gc:
        tune_gc()  # the process settings `python -m svc` uses, so the ceiling differs from svc by telemetry alone
    if args.kind == "bare":
        service = _bare_service(args.db, args.database_url, args.driver, args.port)
    elif args.kind == "naive":
        service = _naive_service(args.db, args.otlp, args.sentry_dsn, args.port)
    else:
        service = _svc_service(args.port)
    if args.server == "granian":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_serve_granian(service))
    # Under uvicorn, the service's own lifecycle: both listeners (the admin one on a free port), SIGTERM drains.
    return run_server(service.run)


if __name__ == "__main__":
    sys.exit(main())
