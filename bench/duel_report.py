"""The duel's outputs: the control, each duel's share with its spread, µs above the base, issue 16's targets."""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["base_us", "duel_section", "duel_targets", "render_duel_markdown", "us_above"]

SVC_KEYS = ("b", "c", "c0", "d-refused", "d-blackhole")


def base_us(duels: dict[str, Any]) -> float:
    """The base's CPU µs per request: the median of its side in every round of every duel, control included."""
    values: list[float] = [
        r["left"]["cpu_us_per_request"] for d in [duels["control"], *duels["duels"].values()] for r in d["rounds"]
    ]
    values += [r["right"]["cpu_us_per_request"] for r in duels["control"]["rounds"]]
    return round(statistics.median(values), 1)


def us_above(share: float, bare: float) -> float:
    """CPU µs per request above the base, for a variant with this share of the base's capacity."""
    return bare / share - bare


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _row(entry: dict[str, Any], bare: float) -> str:
    share = entry["share"]
    dropped = "-" if entry["spans_dropped"] is None else f"{entry['spans_dropped']:,.0f}"
    above = us_above(share["median"], bare)
    # A higher share means fewer µs: the spread of µs runs the other way.
    spread = f"{us_above(share['max'], bare):+.1f} to {us_above(share['min'], bare):+.1f}"
    return (
        f"| {entry['label']} | {_pct(share['median'])} | {_pct(share['min'])}-{_pct(share['max'])} | "
        f"{above:+.1f} | {spread} | {entry['base_cpu_us_per_request']:.1f} / {entry['cpu_us_per_request']:.1f} | "
        f"{entry['rps']:,.0f} | {entry['log_lines_per_request']:.2f} | {entry['spans_received_per_request']:.2f} | "
        f"{dropped} | {entry['errors']} |"
    )


def duel_section(duels: dict[str, Any], heading: str = "##") -> list[str]:
    """The duel table as Markdown lines: the control first, then each contender."""
    bare = base_us(duels)
    control = duels["control"]["share"]
    lines = [
        f"{heading} By duel: share of {duels['base_label']}'s capacity",
        "",
        f"Each duel serves {duels['base_label']} and the variant at the same time, both pinned to one core, each "
        f"loaded by its own wrk ({duels['connections']} connections) from the other core, {duels['duration']} s "
        f"after {duels['warmup']} s of warm-up, fresh processes each of {duels['rounds']} rounds. Share = the base's "
        "CPU time per request over the variant's (utime + stime from /proc over the window, divided by requests "
        "served), median and min-max over rounds. µs converted at the base's CPU per request in these duels, "
        f"**{bare:.1f} µs** (the median of its side; absolute µs drift with the machine, shares do not). The "
        "control is the base against itself: its spread is the method's noise.",
        "",
        f"**Control, {duels['base_label']} vs itself: {_pct(control['median'])} "
        f"({_pct(control['min'])}-{_pct(control['max'])})**",
        "",
        "| Variant | share | min-max | µs/req above base | µs min-max | CPU µs/req base / variant "
        "| req/s (shared core) | log lines/req | spans received/req | spans dropped | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        _row(duels["control"], bare),
    ]
    lines += [_row(entry, bare) for entry in duels["duels"].values()]
    return lines


def duel_targets(duels: dict[str, Any], startup: bool = True) -> list[dict[str, Any]]:
    """Issue 16's targets, judged on the duel's shares (None: the variant was not dueled)."""
    entries = duels["duels"]
    targets: list[dict[str, Any]] = []

    def share(key: str) -> float | None:
        return entries[key]["share"]["median"] if key in entries else None

    def spread(key: str) -> str:
        s = entries[key]["share"]
        return f"{s['median']:.1%} ({s['min']:.1%}-{s['max']:.1%})"

    for key, minimum, name in (("b", 0.60, "(b) full telemetry"), ("c", 0.80, "(c) 10 % sampling")):
        value = share(key)
        if value is not None:
            targets.append(
                {"target": f"{name} >= {minimum:.0%} by duel", "measured": spread(key), "met": value >= minimum}
            )
    on, off = share("c0"), share("b-notrace")
    if on is not None and off is not None:
        gap = (off - on) * 100
        targets.append(
            {
                "target": "tracing on at 0 % within 3 points of tracing off, by duel",
                "measured": f"{on:.1%} vs {off:.1%}: {gap:+.1f} points",
                "met": gap <= 3.0,
            }
        )
    exporting = [k for k in ("b", "c", "c0") if k in entries and entries[k]["spans_dropped"] is not None]
    if exporting:
        lost = {k: entries[k]["spans_dropped"] for k in exporting}
        targets.append(
            {
                "target": "no lost spans at the benchmark's load",
                "measured": ", ".join(f"{k}: {v:,.0f} dropped" for k, v in lost.items()),
                "met": not any(lost.values()),
            }
        )
    if "b" in entries:
        spans = entries["b"]["spans_received_per_request"]
        targets.append(
            {
                "target": "the database span kept (server + SQLite span per request in (b))",
                "measured": f"{spans:.2f} spans received per request",
                "met": spans >= 1.95,
            }
        )
    svc = [entries[k]["startup_max_s"] for k in SVC_KEYS if k in entries]
    if svc and startup:
        worst = max(svc)
        targets.append(
            {
                "target": "svc startup to ready <= 1 s (in the duels)",
                "measured": f"{worst:.2f} s (worst run)",
                "met": worst <= 1.0,
            }
        )
    return targets


def render_duel_markdown(report: dict[str, Any]) -> str:
    """duel.md: the table, the targets, the machine."""
    machine = report["machine"]
    lines = [
        "# svc benchmark by duel",
        "",
        f"Measured {report['created']} at commit `{machine['commit']}`{' (dirty)' if machine['dirty'] else ''}.",
        "",
        *duel_section(report, heading="##"),
    ]
    targets = duel_targets(report)
    if targets:
        lines += ["", "## Targets (issue 16, by duel)", "", "| Target | Measured | Met |", "| --- | --- | --- |"]
        lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in targets]
    lines += [
        "",
        "## Machine",
        "",
        f"- {machine['nproc']} CPUs ({machine['cpu_model']}), Linux {machine['kernel']}, Python {machine['python']}",
        "",
        f"Reproduce: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)
