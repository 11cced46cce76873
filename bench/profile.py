"""Where the time goes: py-spy on one variant under wrk load, summarised by thread, package and function.

    uv run --group bench python -m bench.profile b [--seconds 20] [--out DIR | --write-results]

Writes profile-<variant>.speedscope.json (open it at https://www.speedscope.app) and profile-<variant>.md.
py-spy comes from the `bench` dependency group.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.context import Context, open_context
from bench.settings import Settings
from bench.variants import VARIANTS, variant_of
from bench.wrk import run_wrk, start_wrk
from harness import procfs
from harness.results import add_results_arguments, results_dir

__all__ = ["Recording", "Samples", "categorize", "main", "parse_collapsed", "record_samples", "summarize_profile"]

# Leaf-first: a sample belongs to the first of these its innermost frames match (main thread only).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("svc access middleware", ("svc/middleware.py", "svc/exchange.py", "svc/server_span.py")),
    ("svc log formatter (orjson)", ("svc/logs.py", "svc/access_log.py")),
    ("svc metrics", ("svc/metrics.py",)),
    ("svc db wrapper", ("svc/sqlite_store.py", "svc/postgres_store.py", "svc/store_telemetry.py")),
    ("OTLP encoding, gRPC", ("svc/otlp.py", "svc/posting.py", "grpc/", "google/protobuf/")),
    ("span recorder and export queue", ("svc/spans.py", "svc/export.py", "svc/tracing.py")),
    ("svc other", ("svc/",)),
    ("stdlib logging", ("logging/",)),
    ("OTel spans (SDK, API, context)", ("opentelemetry/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("sentry_sdk", ("sentry_sdk/",)),
    ("Litestar", ("litestar/",)),
    ("msgspec", ("msgspec/",)),
    ("uvicorn", ("uvicorn/",)),
    ("granian", ("granian/",)),
    ("asyncio", ("asyncio/",)),
    ("threads, futures", ("threading.py", "concurrent/", "queue.py")),
    ("sqlite3", ("sqlite3/",)),
)
_THREAD = re.compile(r"^thread \((?:0x)?[0-9a-fA-F]+\): ?(.*)$")
_FRAME_FILE = re.compile(r"\((.*):\d+\)$")

Stack = tuple[str, ...]
Samples = Counter[tuple[str, Stack]]


_SITE = re.compile(r"\((?:[^():]*/(?:site-packages|dist-packages|lib/python3\.\d+)/|[^():]*/(?=svc/|bench/))")


def _shorten(frame: str) -> str:
    """A frame with its file relative to site-packages, the stdlib or the repo: `f (litestar/app.py:623)`."""
    return _SITE.sub("(", frame, count=1)


def parse_collapsed(text: str) -> Counter[tuple[str, Stack]]:
    """py-spy `--format raw --threads` lines: (thread name, frames root first) -> samples."""
    samples: Counter[tuple[str, Stack]] = Counter()
    for line in text.splitlines():
        head, _, count = line.rpartition(" ")
        if not head or not count.isdigit():
            continue
        frames = [_shorten(frame) for frame in head.split(";")]
        thread = "?"
        match = _THREAD.match(frames[0])
        if match:
            thread = match.group(1) or frames[0]
            frames = frames[1:]
        if frames and not frames[0].startswith("thread ") and "(" not in frames[0]:
            thread = f"{thread} {frames[0]}".strip()
            frames = frames[1:]
        samples[(thread, tuple(frames))] += int(count)
    return samples


def _file(frame: str) -> str:
    match = _FRAME_FILE.search(frame)
    return match.group(1) if match else frame


def categorize(stack: Stack) -> str:
    """The category of the innermost frame that belongs to a known package."""
    for frame in reversed(stack):
        path = _file(frame)
        for name, prefixes in CATEGORIES:
            if any(p in path for p in prefixes):
                return name
    return "other (interpreter, stdlib)"


def _thread_group(thread: str) -> str:
    lowered = thread.lower()
    if "mainthread" in lowered:
        return "main thread (event loop)"
    if "otel" in lowered or "batch" in lowered or "span" in lowered:
        return "span export thread"
    if "sqlite" in lowered:
        return "SQLite worker thread"
    return f"other thread: {thread}"


def summarize_profile(samples: Counter[tuple[str, Stack]], top: int = 25) -> dict[str, Any]:
    """Shares by thread, by package (leaf-first, all threads), and the top functions of the main thread."""
    total = sum(samples.values()) or 1
    threads: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    main_total = 0
    for (thread, stack), count in samples.items():
        group = _thread_group(thread)
        threads[group] += count
        categories[group if group != "main thread (event loop)" else categorize(stack)] += count
        if group == "main thread (event loop)":
            main_total += count
            if stack:
                own[stack[-1]] += count
            for frame in set(stack):
                inclusive[frame] += count

    def shares(counter: Counter[str], of: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / of, 1)) for k, v in counter.most_common()]

    return {
        "samples": total,
        "threads": shares(threads, total),
        "categories": shares(categories, total),
        "main_self": shares(own, max(main_total, 1))[:top],
        "main_inclusive": shares(inclusive, max(main_total, 1))[:top],
    }


def speedscope(samples: Counter[tuple[str, Stack]], name: str) -> dict[str, Any]:
    """A speedscope file with one sampled profile per thread."""
    frame_index: dict[str, int] = {}
    frames: list[dict[str, Any]] = []
    by_thread: dict[str, list[tuple[list[int], int]]] = {}
    for (thread, stack), count in samples.items():
        indexes = []
        for frame in stack:
            if frame not in frame_index:
                frame_index[frame] = len(frames)
                func, _, where = frame.partition(" (")
                file, _, line = where.rstrip(")").rpartition(":")
                entry: dict[str, Any] = {"name": func, "file": file}
                if line.isdigit():
                    entry["line"] = int(line)
                frames.append(entry)
            indexes.append(frame_index[frame])
        by_thread.setdefault(thread, []).append((indexes, count))
    profiles = []
    for thread, stacks in sorted(by_thread.items(), key=lambda kv: -sum(c for _, c in kv[1])):
        weights = [c for _, c in stacks]
        profiles.append(
            {
                "type": "sampled",
                "name": thread,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": [s for s, _ in stacks],
                "weights": weights,
            }
        )
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": name,
        "exporter": "svc bench.profile (py-spy raw)",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": profiles,
    }


def render(summary: dict[str, Any], title: str) -> str:
    """The profile summary as Markdown."""
    lines = [f"# {title}", "", f"{summary['samples']} samples.", "", "## By thread", ""]
    lines += [f"- {k}: {v} %" for k, v in summary["threads"]]
    lines += ["", "## By package (main thread: innermost known frame; other threads: whole thread)", ""]
    lines += [f"- {k}: {v} %" for k, v in summary["categories"]]
    lines += ["", "## Main thread, self time", "", "| % | function |", "| ---: | --- |"]
    lines += [f"| {v} | `{k}` |" for k, v in summary["main_self"]]
    lines += ["", "## Main thread, inclusive time", "", "| % | function |", "| ---: | --- |"]
    lines += [f"| {v} | `{k}` |" for k, v in summary["main_inclusive"]]
    return "\n".join(lines) + "\n"


@dataclass
class Recording:
    """py-spy's samples of one run, and each thread's own CPU seconds (from /proc) over the same window."""

    samples: Samples
    thread_cpu: dict[str, float]


_DUMP_THREAD = re.compile(r'^Thread (\d+) \([^)]*\): "(.*)"', re.MULTILINE)


def _python_thread_names(py_spy: str, pid: int) -> dict[int, str]:
    """tid -> Python thread name, from `py-spy dump` (the OS names Python threads `python`)."""
    dump = subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=False).stdout
    return {int(tid): name for tid, name in _DUMP_THREAD.findall(dump)}


def record_samples(ctx: Context, key: str, seconds: int, rate: int, raw: Path, extra: Sequence[str] = ()) -> Recording:
    """Load the variant and record it with py-spy (pinned beside wrk, off the server's core)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    s = ctx.settings
    server, _ = ctx.start(key, "profile")
    try:
        port = server.launch.port
        pid = server.proc.pid
        run_wrk(port, s.path, s.warmup, s.connections, s.load_cpus)
        load = start_wrk(port, s.path, seconds + 4, s.connections, s.load_cpus)
        time.sleep(1)
        pin = ["taskset", "-c", ",".join(map(str, s.load_cpus))]
        record = [*pin, py_spy, "record", "--pid", str(pid), "--duration", str(seconds)]
        before = procfs.thread_cpu(pid)
        subprocess.run(
            [*record, "--rate", str(rate), "--format", "raw", "--threads", "--full-filenames", "-o", str(raw), *extra],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        after = procfs.thread_cpu(pid)
        names = _python_thread_names(py_spy, pid)
        load.wait(seconds + 60)
    finally:
        ctx.finish(server)
    thread_cpu: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        name = "MainThread" if tid == pid else names.get(tid, comm)
        thread_cpu[name] = thread_cpu.get(name, 0.0) + cpu - before.get(tid, (comm, 0.0))[1]
    samples = parse_collapsed(raw.read_text())
    raw.unlink()
    return Recording(samples, thread_cpu)


def profile_variant(ctx: Context, key: str, seconds: int, rate: int, out: Path, extra: list[str]) -> Path:
    """Record the variant with py-spy; writes its speedscope file and returns the Markdown summary's path."""
    samples = record_samples(ctx, key, seconds, rate, out / f"profile-{key}.txt", extra).samples
    title = f"py-spy profile of {variant_of(key).label} under wrk load ({seconds} s at {rate} Hz)"
    (out / f"profile-{key}.speedscope.json").write_bytes(orjson.dumps(speedscope(samples, title)))
    md = out / f"profile-{key}.md"
    md.write_text(render(summarize_profile(samples), title))
    return md


def main(argv: list[str] | None = None) -> int:
    """Profile each named variant."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL (py-spy --gil)")
    add_results_arguments(parser, Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    out = results_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(variants=args.variants, connections=args.connections)
    extra = ["--gil"] if args.gil else []
    with open_context(settings, args.variants) as ctx:
        for key in args.variants:
            md = profile_variant(ctx, key, args.seconds, args.rate, out, extra)
            print(md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
