"""Python servers for the variants that are not `python -m svc` itself.

    python -m bench.servers bare  --port P --db PATH [--server uvicorn|granian]
    python -m bench.servers bare  --port P --database-url URL [--driver asyncpg|psycopg]
    python -m bench.servers naive --port P --db PATH --otlp URL --sentry-dsn DSN
    python -m bench.servers svc   --port P [--server granian]     (svc configured from the environment)

bare: svc's own route handlers in svc's Litestar app, without svc's middleware or any telemetry (the ceiling).
naive: the same handlers with the obvious stock assembly: Litestar's OpenTelemetry plugin, its Prometheus
middleware and controller, its logging config and logging middleware, and sentry_sdk.init (which auto-enables
sentry's LitestarIntegration), exporting to the same OTLP receiver.
Under uvicorn every variant uses svc.server's settings (uvloop, httptools, no access log, no server header);
bare and svc also get svc's GC settings (svc.main.tune_gc), naive keeps CPython's defaults as its users would.
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
from svc.app import build_litestar, create_app, routes
from svc.buildinfo import read_build_info
from svc.config import Config
from svc.health import Lifecycle, Phase
from svc.listener import bind
from svc.logs import configure_logging
from svc.main import tune_gc
from svc.metrics import Metrics
from svc.server import edge_for, uvicorn_server
from svc.sqlite_store import SqliteStore
from svc.store import Store
from svc.stores import create_store
from svc.telemetry import Telemetry

__all__ = ["main"]


def bare_app(db_path: str, database_url: str | None = None, driver: str = "asyncpg") -> ASGIApp:
    """svc's Litestar app with telemetry off and without the access-log middleware, on SQLite or PostgreSQL."""
    config = Config(database_path=db_path, database_url=database_url, otel_disabled=True)
    build = read_build_info()
    telemetry = Telemetry.from_config(config, build)
    store: Store
    if database_url is not None and driver == "psycopg":
        store = PsycopgStore(database_url, config.database_pool_size)
    else:
        store = create_store(config)  # what svc runs: SQLite, or the asyncpg store for a DATABASE_URL
    return build_litestar(config, Lifecycle(), build, store, telemetry)


def naive_app(db_path: str, otlp_endpoint: str, sentry_dsn: str) -> ASGIApp:
    """The stock assembly the issue measured: every plugin with its documented defaults."""
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

    # Sentry's quick start: errors only (no traces_sample_rate), the Litestar integration auto-enabled.
    sentry_sdk.init(dsn=sentry_dsn, environment="bench")
    provider = TracerProvider(resource=Resource.create({"service.name": "naive"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)))
    trace.set_tracer_provider(provider)

    config = Config(database_path=db_path, otel_disabled=True)
    build = read_build_info()
    lifecycle = Lifecycle()
    db = SqliteStore(db_path)
    handlers: list[Any] = [*routes(config, lifecycle, build, db, Telemetry.from_config(config, build))]
    handlers.append(PrometheusController)

    async def on_startup() -> None:
        await db.open()
        lifecycle.phase = Phase.SERVING

    return Litestar(
        route_handlers=handlers,
        on_startup=[on_startup],
        on_shutdown=[db.close],
        plugins=[OpenTelemetryPlugin(OpenTelemetryConfig())],
        middleware=[PrometheusConfig().middleware, LoggingMiddlewareConfig().middleware],
        logging_config=LoggingConfig(),
        debug=False,
    )


def svc_app() -> ASGIApp:
    """svc's public app configured from the environment, as `python -m svc` builds it (no admin listener)."""
    config = Config.from_env(os.environ.get)
    build = read_build_info()
    configure_logging(config, build.version, sys.stdout)
    return create_app(config, telemetry=Telemetry.from_config(config, build), lifecycle=Lifecycle(), build=build)


async def _serve_uvicorn(app: ASGIApp, port: int) -> None:
    config = Config(port=port)
    edge = edge_for("public", config, config.max_connections, Metrics(read_build_info()))
    server = uvicorn_server(app, config, edge)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
    await server.serve(sockets=[bind("127.0.0.1", port)])


async def _serve_granian(app: ASGIApp, port: int) -> None:
    # granian is in the `bench` dependency group only: imported by name so type checks pass without it.
    interfaces = importlib.import_module("granian.constants").Interfaces
    embed = importlib.import_module("granian.server.embed")
    server = embed.Server(app, address="127.0.0.1", port=port, interface=interfaces.ASGI, log_enabled=False)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.stop)
    await server.serve()


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
        app = bare_app(args.db, args.database_url, args.driver)
    elif args.kind == "naive":
        app = naive_app(args.db, args.otlp, args.sentry_dsn)
    else:
        app = svc_app()
    serve = _serve_granian if args.server == "granian" else _serve_uvicorn
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(app, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
