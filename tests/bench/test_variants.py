"""The variants table: every row is complete and launches as it says (command lines only; nothing is started)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.launch import REPO, launch_for
from bench.receivers import Backends, running_backends
from bench.variants import DEFAULT_VARIANTS, TABLE, VARIANTS, Runs, Variant, check_keys, variant_of

GO_BINARY = Path("/opt/bench/linkserver")
POSTGRES_URL = "postgresql://bench@127.0.0.1:5432/bench"
# The program each kind of variant runs: the start of its command line.
PROGRAMS = {
    Runs.SVC: [sys.executable, "-m", "svc"],
    Runs.SVC_RUN: [sys.executable, "-c"],
    Runs.SVC_APP: [sys.executable, "-m", "bench.servers", "svc"],
    Runs.BARE: [sys.executable, "-m", "bench.servers", "bare"],
    Runs.NAIVE: [sys.executable, "-m", "bench.servers", "naive"],
    Runs.GO: [str(GO_BINARY)],
}


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    with running_backends([0]) as running:
        yield running


def _launch(variant: Variant, backends: Backends, baseline: Path | None = None) -> list[str]:
    launch = launch_for(
        variant, REPO / "x.db", backends, go_binary=GO_BINARY, baseline=baseline, postgres_url=POSTGRES_URL
    )
    return launch.argv


def test_every_key_is_unique_and_so_is_every_label() -> None:
    assert len({v.key for v in TABLE}) == len(TABLE)
    assert len({v.label for v in TABLE}) == len(TABLE)
    assert list(VARIANTS) == [v.key for v in TABLE]
    assert set(DEFAULT_VARIANTS) <= set(VARIANTS)


def test_every_variant_that_exports_names_a_backend_mode_and_no_other_does() -> None:
    for v in TABLE:
        exports = v.runs.is_svc or v.runs is Runs.NAIVE
        assert (v.mode != "none") == exports, v.key


def test_only_svc_variants_change_svcs_environment() -> None:
    assert all(v.runs.is_svc for v in TABLE if v.env)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_every_variant_launches_the_program_its_row_names(key: str, backends: Backends) -> None:
    variant = VARIANTS[key]
    argv = _launch(variant, backends)
    program = PROGRAMS[variant.runs]
    assert argv[: len(program)] == program
    assert argv[len(argv) - len(variant.args) :] == list(variant.args)


@pytest.mark.parametrize("key", [k for k, v in VARIANTS.items() if v.runs.is_svc])
def test_an_svc_variant_sends_its_telemetry_where_its_mode_says_unless_its_row_removes_it(
    key: str, backends: Backends
) -> None:
    variant = VARIANTS[key]
    env = launch_for(variant, REPO / "x.db", backends, postgres_url=POSTGRES_URL).env
    expected = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": backends.otlp_endpoint(variant.mode),
        "SENTRY_DSN": backends.sentry_dsn(variant.mode),
    }
    for name, value in {**expected, **variant.env}.items():
        assert env.get(name) == value, name  # a row's None removes the variable


def test_the_postgres_variants_get_the_database_url_and_the_others_the_sqlite_file(backends: Backends) -> None:
    for v in TABLE:
        launch = launch_for(v, REPO / "x.db", backends, go_binary=GO_BINARY, postgres_url=POSTGRES_URL)
        command = " ".join([*launch.argv, *launch.env.values()])
        assert (POSTGRES_URL in command) == v.postgres, v.key
        assert (str(REPO / "x.db") in command) != (v.postgres and not v.runs.is_svc), v.key


def test_a_postgres_variant_without_a_database_is_refused(backends: Backends) -> None:
    with pytest.raises(RuntimeError, match="a-pg needs PostgreSQL"):
        launch_for(VARIANTS["a-pg"], REPO / "x.db", backends)


def test_a_baseline_variant_runs_the_same_program_from_the_baseline_tree(backends: Backends, tmp_path: Path) -> None:
    variant = variant_of("b@base")
    assert variant.baseline
    assert variant.label == "(b) svc, full telemetry [baseline]"
    launch = launch_for(variant, REPO / "x.db", backends, baseline=tmp_path)
    assert launch.argv == launch_for(VARIANTS["b"], REPO / "x.db", backends).argv
    assert launch.cwd == tmp_path
    assert launch.env["PYTHONPATH"] == str(tmp_path)


def test_a_baseline_variant_needs_a_baseline_tree(backends: Backends) -> None:
    with pytest.raises(SystemExit, match="needs --baseline"):
        launch_for(variant_of("b@base"), REPO / "x.db", backends)


def test_only_an_svc_variant_has_a_baseline_form() -> None:
    with pytest.raises(SystemExit, match="only an svc variant"):
        variant_of("a@base")


def test_unknown_keys_are_named_with_the_known_ones() -> None:
    check_keys(["a", "b@base"])
    with pytest.raises(SystemExit, match=r"unknown variants: nope, zz; known: a, b, c,"):
        check_keys(["a", "zz", "nope"])
