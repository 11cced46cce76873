"""The README's environment-variable table is generated from the config declarations and cannot drift."""

from __future__ import annotations

from svc.config import markdown_table
from tests.support.service import REPO

START = "<!-- env-table:start -->"
END = "<!-- env-table:end -->"


def test_readme_env_table_equals_the_config_declarations() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.count(START) == 1, f"README.md needs exactly one {START} marker"
    assert readme.count(END) == 1, f"README.md needs exactly one {END} marker"
    between = readme.split(START, 1)[1].split(END, 1)[0]
    assert between.strip("\n") == markdown_table(), (
        "README.md's env table differs from svc.config.SETTINGS; replace the lines between the markers with the "
        'output of: uv run python -c "from svc.config import markdown_table; print(markdown_table())"'
    )
