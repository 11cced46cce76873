"""harness.results: a run's environment names its checkout as svc reads it; a run writes one JSON and one Markdown."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checkout import read_checkout
from harness.results import environment, markdown_table, write_result


def test_the_environment_names_the_commit_and_dirty_flag_of_this_checkout() -> None:
    checkout = read_checkout()
    env = environment(load_before=0.5)
    assert (env["commit"], env["dirty"]) == (checkout.short, checkout.dirty)
    assert env["load_average_1m_before"] == 0.5


def test_a_result_is_one_json_and_one_markdown_file_replacing_the_last(tmp_path: Path) -> None:
    write_result("soak", {"old": True}, "# old", tmp_path / "out")
    json_path, md_path = write_result("soak", {"b": 2, "a": 1}, "# Soak\n\n\n", tmp_path / "out")
    assert json.loads(json_path.read_text()) == {"a": 1, "b": 2}
    assert md_path.read_text() == "# Soak\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["soak.json", "soak.md"]


def test_a_markdown_table_leaves_none_cells_empty() -> None:
    assert markdown_table(["a", "b"], [[1, None]]) == "| a | b |\n|---|---|\n| 1 |  |"
