"""Figures the docs quote from the lab's config files are the config's own values."""

from __future__ import annotations

import re

from .files import DEPLOY, REPO

# "20 000 traces", "20,000 traces", "20000 traces": a trace count in the thousands, however a doc writes it (ratios
# such as "1 in 10 traces" are not counts).
TRACES = re.compile(r"(\d{1,3}(?:[ ,]\d{3})+|\d{4,}) traces")


def test_every_jaeger_trace_limit_in_the_docs_is_the_configs_max_traces() -> None:
    config = (DEPLOY / "jaeger" / "config.yaml").read_text()
    match = re.search(r"max_traces: \$\{env:JAEGER_MAX_TRACES:-(\d+)\}", config)
    assert match, "deploy/jaeger/config.yaml sets max_traces from JAEGER_MAX_TRACES with a default"
    docs = {path.name: path.read_text(encoding="utf-8") for path in [REPO / "README.md", *(REPO / "docs").glob("*.md")]}
    quoted = {(name, figure) for name, text in docs.items() for figure in TRACES.findall(text)}
    assert quoted, "the docs state how many traces the lab's Jaeger keeps"
    wrong = {(name, figure) for name, figure in quoted if re.sub(r"[ ,]", "", figure) != match.group(1)}
    assert wrong == set()
