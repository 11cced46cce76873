"""`python -m bench` and the duel commands read their shared options the same way, into the same Settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli import parse_args
from bench.duel import add_duel_options
from bench.settings import comma_list, settings_from_args

SHARED = ["--rounds", "2", "--duration", "5", "--warmup", "1", "--connections", "8", "--server-cpu", "1"]
SHARED += ["--load-cpus", "0, 2", "--keep-logs", "--baseline", "/tmp/base"]


def _duel_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_duel_options(parser)
    return parser.parse_args(argv)


def test_both_commands_build_the_same_settings_from_the_same_options() -> None:
    bench, duel = settings_from_args(parse_args(SHARED)), settings_from_args(_duel_args(SHARED))
    for settings in (bench, duel):
        assert (settings.rounds, settings.duration, settings.warmup, settings.connections) == (2, 5, 1, 8)
        assert (settings.server_cpu, settings.load_cpus) == (1, [0, 2])
        assert settings.keep_logs
        assert settings.baseline == Path("/tmp/base")


def test_each_command_keeps_its_own_defaults() -> None:
    bench, duel = settings_from_args(parse_args([])), settings_from_args(_duel_args([]))
    assert (bench.rounds, bench.duration, bench.connections) == (4, 12, 32)
    assert (duel.rounds, duel.duration, duel.connections) == (4, 10, 16)
    assert bench.load_cpus == duel.load_cpus
    assert all(isinstance(cpu, int) for cpu in bench.load_cpus)


def test_a_comma_list_drops_blanks_and_spaces() -> None:
    assert comma_list(" a, b,,c@base ,") == ["a", "b", "c@base"]
