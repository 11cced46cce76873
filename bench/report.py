"""The benchmark's outputs: latest.json, latest.md (a table with ratios to (a)), latest.png; rss.* likewise."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from bench.duel_report import duel_section, duel_targets
from harness.checkout import read_checkout

__all__ = ["evaluate_targets", "machine_info", "render_markdown", "render_rss_markdown", "write_reports"]

PACKAGES = (
    "litestar",
    "uvicorn",
    "uvloop",
    "httptools",
    "granian",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-grpc",
    "prometheus-client",
    "sentry-sdk",
    "orjson",
    "msgspec",
)


def _cmd(*argv: str) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_info(repo: Path) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu_model = "unknown"
    mem_total = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_gib": mem_total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": _cmd("go", "version"),
        "wrk": _cmd("wrk", "-v"),
        "packages": versions,
        "commit": (checkout := read_checkout(repo)).short,
        "dirty": checkout.dirty,
    }


def _rps(variants: dict[str, Any], key: str) -> float | None:
    entry = variants.get(key)
    return None if entry is None else float(entry["summary"]["rps"])


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with what was measured and whether it was met (None: not measured)."""
    variants = report["variants"]
    duels = report.get("duels")
    targets: list[dict[str, Any]] = []

    def capacity(key: str) -> float | None:
        # By duel when dueled (share of (a)'s capacity, drift-free); else by throughput (drift-prone).
        if duels:
            entry = duels["duels"].get(key)
            return 1.0 if key == duels["base"] else None if entry is None else float(entry["share"]["median"])
        return _rps(variants, key)

    def ratio_target(name: str, key: str, base_key: str, minimum: float) -> None:
        value, base = capacity(key), capacity(base_key)
        if value is None or not base:
            return
        ratio = value / base
        how = "by duel" if duels else "by throughput"
        targets.append(
            {
                "target": name,
                "measured": f"{ratio:.1%} of ({base_key}) {how}",
                "ratio": round(ratio, 4),
                "met": ratio >= minimum,
            }
        )

    if duels:
        targets += duel_targets(duels, startup=False)  # issue 16's targets; startup from the solo runs below
    else:
        ratio_target("(b) >= 60 % of (a)", "b", "a", 0.60)
        ratio_target("(c) >= 80 % of (a)", "c", "a", 0.80)
    # One-sided: backends being down must not cost throughput; (d) faster than (b) is expected (nothing is sent).
    ratio_target("(d) refusing: at most 5 % below (b)", "d-refused", "b", 0.95)
    ratio_target("(d) blackholed: at most 5 % below (b)", "d-blackhole", "b", 0.95)
    ratio_target("(b) beats the naive stack (e)", "b", "e", 1.0)
    svc_keys = [k for k in ("b", "c", "d-refused", "d-blackhole") if k in variants]
    if svc_keys:
        worst = max(variants[k]["summary"]["startup_max_s"] for k in svc_keys)
        targets.append(
            {"target": "svc startup to ready <= 1 s", "measured": f"{worst:.2f} s (worst run)", "met": worst <= 1.0}
        )
    for key, check in report.get("rss", {}).items():
        if check.get("flat") is None:
            continue
        targets.append(
            {
                "target": f"RSS flat under load, {key}",
                "measured": f"{check['growth_mib']:+.1f} MiB over {check['samples'][-1][0]:.0f} s "
                f"({check['slope_mib_per_min']:+.2f} MiB/min in the second half)",
                "met": bool(check["flat"]),
            }
        )
    return targets


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The human report: main table with ratios to (a), targets, sanity checks, how it was run."""
    variants = report["variants"]
    settings = report["settings"]
    machine = report["machine"]
    base = _rps(variants, "a")
    lines = [
        "# svc benchmark",
        "",
        f"Measured {report['created']} at commit `{machine['commit']}`{' (dirty)' if machine['dirty'] else ''}: "
        f"`GET {settings['path']}` (a small JSON link, one SQLite query), wrk {settings['connections']} connections "
        f"for {settings['duration']} s after {settings['warmup']} s of warm-up, {settings['rounds']} interleaved "
        f"rounds; medians shown. Server pinned to CPU {settings['server_cpu']}, wrk and the telemetry receivers "
        f"on CPU {','.join(map(str, settings['load_cpus']))}.",
        "",
        "vs (a): requests/s as a share of (a)'s. CPU vs (a): (a)'s CPU time per request over the variant's, i.e. "
        "the share of (a)'s capacity per core; it does not depend on how busy the rest of the machine was.",
        "",
        "| Variant | req/s | vs (a) | p50 ms | p99 ms | CPU µs/req | CPU vs (a) | peak RSS MiB | ready s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base_cpu = variants["a"]["summary"]["cpu_us_per_request"] if "a" in variants else None
    for entry in variants.values():
        s = entry["summary"]
        ratio = f"{s['rps'] / base:.0%}" if base else "-"
        cpu_ratio = f"{base_cpu / s['cpu_us_per_request']:.0%}" if base_cpu and s["cpu_us_per_request"] else "-"
        lines.append(
            f"| {entry['label']} | {s['rps']:,.0f} | {ratio} | {_fmt(s['p50_ms'], 2)} | {_fmt(s['p99_ms'], 2)} | "
            f"{_fmt(s['cpu_us_per_request'])} | {cpu_ratio} | {_fmt(s['peak_rss_mib'])} | {_fmt(s['startup_s'], 2)} |"
        )
    if report.get("duels"):
        lines += ["", *duel_section(report["duels"])]
    targets = report.get("targets", [])
    if targets:
        lines += ["", "## Targets", "", "| Target | Measured | Met |", "| --- | --- | --- |"]
        for t in targets:
            lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    lines += [
        "",
        "## Sanity checks",
        "",
        "Telemetry really happened while measured: access lines written per request, spans the OTLP receiver got "
        "per request (svc: server span + SQLite client span), spans svc counted as dropped.",
        "",
        "| Variant | req/s min-max | errors | log lines/req | spans received/req | spans dropped | CPU use | "
        "slowest stop s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry in variants.values():
        s = entry["summary"]
        dropped = "-" if s["spans_dropped"] is None else f"{s['spans_dropped']:,.0f}"
        lines.append(
            f"| {entry['label']} | {s['rps_min']:,.0f}-{s['rps_max']:,.0f} | {s['errors']} | "
            f"{s['log_lines_per_request']:.2f} | {s['spans_received_per_request']:.2f} | "
            f"{dropped} | {s['cpu_utilization']:.0%} | "
            f"{s['stop_max_s']:.1f}{' (killed)' if s['killed_on_stop'] else ''} |"
        )
    if report.get("rss"):
        lines += ["", render_rss_markdown(report, heading="##")]
    lines += ["", "## Variants", ""]
    for key, entry in variants.items():
        lines.append(f"- **{entry['label']}** (`{key}`): {entry['description']}.")
    lines += ["", "## Machine", ""]
    lines.append(
        f"- {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['mem_gib']} GiB RAM, Linux {machine['kernel']}"
    )
    lines.append(f"- Python {machine['python']}; {machine['go'] or 'no Go'}; {machine['wrk'] or 'wrk ?'}")
    lines.append("- " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()))
    for note in report.get("notes", []):
        lines.append(f"- Note: {note}")
    lines += ["", f"Reproduce: `{settings['command']}`", ""]
    return "\n".join(lines)


def _heap(check: dict[str, Any], field: str, digits: int = 1) -> str:
    start, end = check.get("heap_start"), check.get("heap_end")
    if not start or not end:
        return "-"
    return f"{_fmt(start[field], digits)} -> {_fmt(end[field], digits)}"


def render_rss_markdown(report: dict[str, Any], heading: str = "#") -> str:
    """The RSS-flat check as a table, with the Python heap beside it (bench/heap.py)."""
    lines = [
        f"{heading} RSS under sustained load",
        "",
        "VmRSS sampled every second under wrk load; growth is measured from the end of the first quarter "
        "(after warm-up) to the end. Flat means at most 4 MiB of growth. At the same two points the server "
        "reported its Python heap (sys._debugmallocstats over SIGUSR1, bench/heap.py): *live* is the bytes "
        "in the small objects (up to 512 B, pymalloc's) the program holds, *arenas* the 1 MiB pymalloc arenas "
        "mapped. Larger objects and C allocations are in neither. Arenas growing while live stays flat is "
        "pymalloc keeping freed memory for reuse.",
        "",
        "| Variant | seconds | requests | RSS after 1st quarter MiB | RSS at end MiB | growth MiB | "
        "slope MiB/min (2nd half) | Python live MiB | pymalloc arenas | spans dropped | flat |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for check in report["rss"].values():
        dropped = "-" if check["spans_dropped"] is None else f"{check['spans_dropped']:,.0f}"
        lines.append(
            f"| {check['label']} | {check['samples'][-1][0]:.0f} | {check['requests']:,} | "
            f"{_fmt(check['rss_start_mib'])} | {_fmt(check['rss_end_mib'])} | {_fmt(check['growth_mib'])} | "
            f"{_fmt(check['slope_mib_per_min'], 2)} | {_heap(check, 'live_mib')} | {_heap(check, 'arenas', 0)} | "
            f"{dropped} | {'yes' if check['flat'] else '**no**'} |"
        )
    return "\n".join(lines)


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = report["variants"]
    labels = [v["label"] for v in variants.values()]
    summaries = [v["summary"] for v in variants.values()]
    base = _rps(variants, "a")
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.55 * len(labels) + 2.2), sharey=True)
    panels = (
        ("requests/s (higher is better)", [s["rps"] for s in summaries], "{:,.0f}"),
        ("p99 latency, ms (lower is better)", [s["p99_ms"] for s in summaries], "{:.1f}"),
        ("CPU µs per request (lower is better)", [s["cpu_us_per_request"] for s in summaries], "{:.0f}"),
    )
    positions = list(range(len(labels)))
    for ax, (title, values, fmt) in zip(axes, panels, strict=True):
        colors = ["#4c72b0" if not label.startswith(("(b)", "(c)", "(d)")) else "#dd8452" for label in labels]
        ax.barh(positions, values, color=colors)
        ax.set_title(title, fontsize=10)
        ax.invert_yaxis()
        for pos, value in zip(positions, values, strict=True):
            text = fmt.format(value)
            if title.startswith("requests") and base:
                text += f"  ({value / base:.0%})"
            ax.text(value, pos, " " + text, va="center", fontsize=8)
        ax.margins(x=0.35)
    if base:
        axes[0].axvline(base * 0.5, color="grey", linestyle="--", linewidth=0.8)
        axes[0].axvline(base * 0.75, color="grey", linestyle=":", linewidth=0.8)
    axes[0].set_yticks(positions, labels, fontsize=9)
    machine = report["machine"]
    fig.suptitle(
        f"svc benchmark: GET {report['settings']['path']}, 1 server core ({machine['cpu_model']}), "
        f"{report['created'][:10]}  (dashed: 50 % and 75 % of (a))",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rss_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for check in report["rss"].values():
        xs = [t for t, _ in check["samples"]]
        ys = [r for _, r in check["samples"]]
        ax.plot(xs, ys, label=check["label"])
    ax.set_xlabel("seconds under load")
    ax.set_ylabel("VmRSS MiB")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title("svc RSS with every telemetry backend down", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(report: dict[str, Any], out: Path) -> list[Path]:
    """latest.{json,md,png} when variants ran; rss.{json,md,png} when the RSS check ran."""
    out.mkdir(parents=True, exist_ok=True)
    report["targets"] = evaluate_targets(report)
    written: list[Path] = []
    if report["variants"]:
        (out / "latest.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        (out / "latest.md").write_text(render_markdown(report))
        _chart(report, out / "latest.png")
        written += [out / "latest.json", out / "latest.md", out / "latest.png"]
    if report.get("rss"):
        rss_report = {k: report[k] for k in ("created", "machine", "settings", "rss")}
        (out / "rss.json").write_bytes(orjson.dumps(rss_report, option=orjson.OPT_INDENT_2) + b"\n")
        (out / "rss.md").write_text(render_rss_markdown(report) + "\n")
        _rss_chart(report, out / "rss.png")
        written += [out / "rss.json", out / "rss.md", out / "rss.png"]
    return written


def created_now() -> str:
    """The report's timestamp."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str] | None = None) -> int:
    """Render latest.md/png (and rss.*) again from a latest.json, without measuring anything."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("json", type=Path, help="a latest.json written by python -m bench")
    parser.add_argument("--out", type=Path, help="where to write (default: next to the json)")
    args = parser.parse_args(argv)
    report: dict[str, Any] = orjson.loads(args.json.read_bytes())
    rss = args.json.with_name("rss.json")
    if not report.get("rss") and rss.exists():
        report["rss"] = orjson.loads(rss.read_bytes())["rss"]
    for path in write_reports(report, args.out or args.json.parent):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
