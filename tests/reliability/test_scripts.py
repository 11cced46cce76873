"""The slow reliability runs stay runnable: each script exists, is executable and starts its module."""

from __future__ import annotations

import os
import re

import pytest

from reliability import backend_faults, shutdown, soak
from reliability.load import require_loopback
from tests.support.service import REPO

SCRIPTS = {
    "soak": soak,
    "shutdown-under-load": shutdown,
    "backend-faults": backend_faults,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_script_runs_its_module(name: str) -> None:
    script = REPO / "scripts" / name
    assert os.access(script, os.X_OK), f"{script} is not executable"
    module = SCRIPTS[name].__name__
    assert re.search(rf"python -m {re.escape(module)}\b", script.read_text()), script.read_text()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_module_has_a_working_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        SCRIPTS[name].main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:8000"])
def test_the_load_generator_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        require_loopback(url)
