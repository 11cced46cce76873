"""Tests mirror the code: every module of svc has a tests/**/test_<module>.py, or a reason below why not."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Modules whose tests do not live in a test_<module>.py of their own, each with the reason. Keep it short: a new
# module gets its own test file; an entry leaves this list when that file appears (the last test says so).
EXEMPT = {
    "__init__": "the package marker: no code",
    "__main__": "two lines calling svc.cli.main: every `python -m svc` test (tests/service/test_cli.py, "
    "test_shutdown.py, tests/support/service.py's service_process) runs it",
    # The assembly (issue 17's root part): held through the Service and the real service, not on their own.
    "app": "the routes and the middleware put together: every tests/service endpoint test runs create_app through "
    "Litestar's TestClient (tests/service/conftest.py), tests/service/test_service.py through the Service",
    "main": "parse, log, run the Service, exit code: tests/service/test_cli.py and test_shutdown.py run it as a "
    "process, tests/support/service.py in a thread for every service test",
    "server": "uvicorn serving one socket with its quiet close: tests/service/test_service.py and test_shutdown.py, "
    "tests/reliability/test_edge.py against the real listener",
    # The request path's parts, split out of the middleware (issue 17's request part): tests/service/test_middleware.py
    # runs the middleware that builds the record, starts and ends the span and writes the line, on its own.
    "exchange": "the per-request record, through tests/service/test_middleware.py",
    "server_span": "the server span, through tests/service/test_middleware.py (span fields, name, status)",
    "access_log": "the access line, through tests/service/test_middleware.py and tests/service/test_logs.py",
    "pg_schema": "the schema's migrations on both stores are one behaviour: tests/service/test_schema.py",
    "sqlite_store": "run by tests/service/test_store.py's contract, and test_schema.py, "
    "tests/reliability/test_durability.py and test_disk_full.py",
    "postgres_store": "run by tests/service/test_store.py's contract, and test_schema.py, "
    "tests/reliability/test_database_failures.py",
}


def _modules() -> set[str]:
    return {path.stem for path in (REPO / "svc").glob("*.py")}


def _tested() -> set[str]:
    return {path.stem.removeprefix("test_") for path in (REPO / "tests").rglob("test_*.py")}


def test_every_svc_module_has_a_test_file_named_for_it_or_a_stated_exemption() -> None:
    missing = sorted(_modules() - _tested() - EXEMPT.keys())
    assert missing == [], f"add tests/<area>/test_<module>.py for: {missing} (or an EXEMPT entry saying why not)"


def test_the_exemptions_name_only_modules_that_exist_and_still_lack_a_test_file() -> None:
    stale = sorted(name for name in EXEMPT if name not in _modules() or name in _tested())
    assert stale == [], f"remove from EXEMPT (the module is gone or has its test file now): {stale}"
