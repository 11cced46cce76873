"""The HTTP edge, attacked: svc before and after, and Go net/http (bench/go) under the same hostile clients.

    uv run python -m reliability.edge --before /tmp/svc-main --rounds 10      (writes reliability/results/edge.*)

`--before` is a checkout of the commit to compare with (for example `git worktree add /tmp/svc-main <commit>`);
it runs with this checkout's Python environment. Go is built from bench/go when `go` is installed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.gobuild import build_go
from harness.mix import Call
from harness.polling import wait_for
from harness.process import ServerProcess, server_process, wait_started
from harness.procfs import cpu_seconds
from harness.results import environment, markdown_table, write_result
from harness.seed import SLUG, seed_database
from reliability.hostile import Answer, big_head, get, hammer, many_headers, slowloris
from reliability.load import HARD_MAX_REQUESTS, run_load
from reliability.report import RESULTS_DIR

__all__ = ["Target", "main", "shutdown_round", "start_go", "start_svc"]

REPO = Path(__file__).resolve().parents[1]
_GO_LISTENING = re.compile(r'"server.address":"127\.0\.0\.1:(\d+)"')


@dataclass
class Target:
    """A running server: its port, the path a probe may GET, its process and what it printed."""

    name: str
    port: int
    probe_path: str
    server: ServerProcess

    @property
    def proc(self) -> subprocess.Popen[str]:
        """The server's process."""
        return self.server.proc

    def text(self) -> str:
        """Everything it printed so far."""
        return self.server.text()


@contextmanager
def _started(
    name: str, argv: list[str], env: dict[str, str], cwd: Path, find_port: Callable[[str], int | None], probe: str
) -> Iterator[Target]:
    nofile = env.pop("_NOFILE", None)
    if nofile is not None:  # the shell lowers its own fd limit, then becomes the server (same pid for signals)
        argv = ["sh", "-c", f'ulimit -n {int(nofile)} && exec "$@"', "sh", *argv]
    with server_process(argv, env, cwd) as server:
        port = wait_started(lambda: find_port(server.text()), server.running, server.text, 20, f"{name} listening")
        target = Target(name, port, probe, server)
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200, 20, what=probe)
        yield target


def _svc_port(text: str) -> int | None:
    for line in text.splitlines():
        if '"labels.listener":"public"' in line and '"server.port"' in line:
            return int(json.loads(line)["server.port"])
    return None


def _go_port(text: str) -> int | None:
    match = _GO_LISTENING.search(text)
    return int(match.group(1)) if match else None


def start_svc(name: str, repo: Path, work: Path, **env: str) -> Any:
    """`python -m svc` from repo (this environment's Python) on a free port, its database in work."""
    base = {"HOST": "127.0.0.1", "PORT": "0", "ADMIN_PORT": "0", "DATABASE_PATH": str(work / f"{name}.db")}
    return _started(name, [sys.executable, "-m", "svc"], {**base, **env}, repo, _svc_port, "/healthz")


def start_go(binary: Path, work: Path, **env: str) -> Any:
    """bench/go's linkserver (net/http, ReadHeaderTimeout 10 s, Shutdown on SIGTERM) on a free port."""
    db = work / "go.db"
    if not db.exists():
        seed_database(db)
    return _started("go", [str(binary)], {"PORT": "0", "DATABASE_PATH": str(db), **env}, work, _go_port, "/readyz")


def _seed(target: Target) -> str:
    if target.name == "go":
        return f"/links/{SLUG}"
    response = httpx.post(f"http://127.0.0.1:{target.port}/links", json={"url": "https://example.com/", "slug": SLUG})
    assert response.status_code in (201, 409), response.text
    return f"/links/{SLUG}"


# --- the cases -------------------------------------------------------------------------------------------------


def _same_call(call: Call, _index: int) -> Call:
    """The one call every worker of a probe load makes."""
    return call


def _others_wait(target: Target, action: Callable[[], Answer]) -> dict[str, Any]:
    """Run action while another client GETs every 50 ms; how long did that client's slowest request take?"""
    done = threading.Event()
    latencies: list[float] = []

    def other() -> None:
        while not done.is_set():
            try:
                latencies.append(get(target.port, target.probe_path, timeout=30).seconds)
            except OSError:
                latencies.append(30.0)
            time.sleep(0.05)

    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    answer = action()
    done.set()
    thread.join(35)
    return {
        "status": answer.status,
        "end": answer.end,
        "ms": round(answer.seconds * 1000, 1),
        "others_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def head_cases(target: Target) -> dict[str, Any]:
    """50 MB, 1 MB and 20 KiB header values; 10,000 and 150 header fields."""
    out: dict[str, Any] = {}
    for label, size in (("50MB", 50 * 2**20), ("1MB", 2**20), ("20KiB", 20 * 1024)):
        out[f"header_{label}"] = _others_wait(target, functools.partial(big_head, target.port, size, target.probe_path))
    for count in (10_000, 150):
        answer = many_headers(target.port, count, target.probe_path)
        out[f"headers_{count}"] = {"status": answer.status, "end": answer.end, "ms": round(answer.seconds * 1000, 1)}
    return out


def slowloris_case(target: Target, connections: int, interval: float, duration: float) -> dict[str, Any]:
    """Trickling connections: how many did the server close, how soon, and were other clients served?"""
    result = slowloris(
        target.port, connections, interval, duration, probe=lambda: _served(target.port, target.probe_path)
    )
    return asdict(result) | {"answers": dict(result.answers)}


def _served(port: int, path: str) -> bool:
    try:
        return get(port, path, timeout=1.0).status == 200
    except OSError:
        return False


def shutdown_round(target: Target, path: str, clients: int = 16, sigterm_after: float = 1.5) -> dict[str, Any]:
    """SIGTERM under a fresh-connection hammer; count every request until 1.5 s after the process exited."""
    stop = threading.Event()
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(hammer(target.port, path, clients, stop)), daemon=True)
    thread.start()
    time.sleep(sigterm_after)
    target.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code = target.proc.wait(30)
    exit_s = time.monotonic() - sent
    time.sleep(1.5)  # late connections: they must be refused, not reset or left hanging
    stop.set()
    thread.join(30)
    [result] = results
    return {
        "exit_code": code,
        "exit_s": round(exit_s, 2),
        "ok": result.ok,
        "failed": result.failures,
        "failed_by_kind": dict(result.failed),
        "statuses": dict(result.statuses),
        "refused": result.refused,
        "refused_connect_s_max": round(result.refused_connect_seconds_max, 2),
        "connect_timeouts": result.connect_timeouts,
    }


def throughput_ab(before: Path, work: Path, rounds: int, seconds: float = 3.0) -> dict[str, Any]:
    """Both svc versions up at once, measured in turns (A, B, B, A...) so machine noise hits both alike.

    Keep-alive GET /links/{slug} from 32 closed-loop workers (reliability/load.py's client). Requests per second
    swing with whatever else runs on the machine; the server's own CPU time per request (from /proc) does not,
    so the ratio is taken on that.
    """
    with start_svc("before", before, work) as old, start_svc("after", REPO, work) as new:
        paths = {t.name: _seed(t) for t in (old, new)}
        rps: dict[str, list[float]] = {"before": [], "after": []}
        cpu_us: dict[str, list[float]] = {"before": [], "after": []}
        for i in range(rounds):
            for target in (old, new) if i % 2 == 0 else (new, old):
                url = f"http://127.0.0.1:{target.port}"
                cpu = cpu_seconds([target.proc.pid])
                started = time.monotonic()
                outcomes = run_load(
                    url,
                    functools.partial(_same_call, Call("GET", paths[target.name])),
                    duration=seconds,
                    max_requests=HARD_MAX_REQUESTS,
                    concurrency=32,
                )
                elapsed = time.monotonic() - started
                served = sum(1 for o in outcomes if o.status == 200)
                rps[target.name].append(round(served / elapsed, 1))
                cpu_us[target.name].append(round((cpu_seconds([target.proc.pid]) - cpu) / max(served, 1) * 1e6, 1))

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return {
        "rps": rps,
        "cpu_us_per_request": cpu_us,
        "median_rps": {name: median(v) for name, v in rps.items()},
        "median_cpu_us": {name: median(v) for name, v in cpu_us.items()},
        "cpu_ratio_after_before": round(median(cpu_us["after"]) / median(cpu_us["before"]), 3),
    }


def redirect_case(target: Target) -> dict[str, Any]:
    """GET /r/{slug}: the content type sent next to the one the served OpenAPI document declares for 307."""
    base = f"http://127.0.0.1:{target.port}"
    response = httpx.get(f"{base}/r/{SLUG}", follow_redirects=False)
    spec = httpx.get(f"{base}/openapi.json").json()
    declared = sorted(spec["paths"]["/r/{slug}"]["get"]["responses"]["307"].get("content", {}))
    sent = response.headers.get("content-type", "").split(";")[0]
    return {"status": response.status_code, "sent": sent, "declared": declared, "agree": declared in ([sent], [])}


# --- the run ---------------------------------------------------------------------------------------------------


def run_all(before: Path | None, go: Path | None, rounds: int, work: Path) -> dict[str, Any]:
    """Every case against every target, one after another on this machine."""
    starters: list[tuple[str, Callable[..., Any]]] = [("after", lambda **e: start_svc("after", REPO, work, **e))]
    if before is not None:
        starters.insert(0, ("before", lambda **e: start_svc("before", before, work, **e)))
    if go is not None:
        starters.append(("go", lambda **e: start_go(go, work, **e)))
    data: dict[str, Any] = {}
    for name, start in starters:
        row: dict[str, Any] = {}
        with start() as target:
            _seed(target)
            row["heads"] = head_cases(target)
            if name != "go":
                row["redirect"] = redirect_case(target)
            row["slowloris"] = slowloris_case(target, connections=200, interval=1.0, duration=15.0)
        with start(_NOFILE="1024") as target:
            row["fd_limit"] = slowloris_case(target, connections=1100, interval=1.0, duration=15.0)
            row["fd_limit"]["logged"] = _fd_lines(target.text())
        row["shutdown"] = []
        for _ in range(rounds):
            with start(SHUTDOWN_DRAIN="2") as target:
                path = _seed(target)
                row["shutdown"].append(shutdown_round(target, path))
        data[name] = row
        print(f"{name}: {json.dumps(row)[:3000]}", flush=True)
    return data


def _fd_lines(text: str) -> list[str]:
    keys = ("connection_limit", "fd_exhausted", "too many open files", "Accept error")
    return [line[:300] for line in text.splitlines() if any(k in line for k in keys)][:3]


def _markdown(data: dict[str, Any], env: dict[str, Any]) -> str:
    names = list(data)
    header = ["case", *names]

    def cell(name: str, get_value: Callable[[dict[str, Any]], Any]) -> str:
        try:
            return str(get_value(data[name]))
        except (KeyError, TypeError, IndexError):
            return "n/a"

    def head(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: "{status} in {ms} ms ({end}); others' slowest {others_max_ms} ms".format(**r["heads"][key])

    def shutdown(r: dict[str, Any]) -> str:
        s = r["shutdown"]
        failed = [x["failed"] for x in s]
        codes = sorted({x["exit_code"] for x in s})
        late = max(x["refused_connect_s_max"] for x in s)
        return (
            f"failed per round {failed} (mean {sum(failed) / len(s):.1f}); exit {codes} in "
            f"{min(x['exit_s'] for x in s)}-{max(x['exit_s'] for x in s)} s; ok {sum(x['ok'] for x in s)}; "
            f"late connects refused within {late} s; connect timeouts {sum(x['connect_timeouts'] for x in s)}"
        )

    rows: list[list[Any]] = [
        ["one 50 MB header", *[cell(n, head("header_50MB")) for n in names]],
        ["one 1 MB header", *[cell(n, head("header_1MB")) for n in names]],
        ["one 20 KiB header", *[cell(n, head("header_20KiB")) for n in names]],
        [
            "10,000 header fields",
            *[cell(n, lambda r: "{status} ({end})".format(**r["heads"]["headers_10000"])) for n in names],
        ],
        [
            "150 header fields",
            *[cell(n, lambda r: "{status} ({end})".format(**r["heads"]["headers_150"])) for n in names],
        ],
        [
            "slowloris: 200 connections, 1 byte/s for 15 s",
            *[
                cell(
                    n,
                    lambda r: (
                        "closed {closed_by_server}/{opened} (last at {seconds_to_close_max} s), answers "
                        "{answers}; probes served {probes_served}/{probes}".format(**r["slowloris"])
                    ),
                )
                for n in names
            ],
        ],
        [
            "fd limit 1,024: 1,100 slowloris connections for 15 s",
            *[
                cell(
                    n,
                    lambda r: (
                        "held {opened}, closed {closed_by_server}, answers {answers}; probes served "
                        "{probes_served}/{probes}; logged: {logged_yes}".format(
                            **r["fd_limit"], logged_yes="yes" if r["fd_limit"]["logged"] else "**nothing**"
                        )
                    ),
                )
                for n in names
            ],
        ],
        [
            f"SIGTERM under a 16-client fresh-connection hammer (drain 2 s), {len(data[names[0]]['shutdown'])} rounds",
            *[cell(n, shutdown) for n in names],
        ],
        [
            "GET /r/{slug}: content type sent / declared for 307",
            *[cell(n, lambda r: "{sent} / {declared}: {agree}".format(**r["redirect"])) for n in names],
        ],
    ]
    return "\n\n".join(
        [
            "# The HTTP edge under hostile clients",
            f"{env['date']}, commit {env['commit']}, {env['cpus']} CPUs (load average {env['load_average_1m_before']} "
            f"before the run), Python {env['python']}. Columns: {', '.join(names)} (go = bench/go, net/http with "
            "ReadHeaderTimeout 10 s and its default 1 MB MaxHeaderBytes). Same raw-socket clients "
            "(reliability/hostile.py) against each, one server at a time.",
            markdown_table(header, rows),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Attack the HTTP edge of svc (before/after) and of Go net/http.")
    parser.add_argument("--before", type=Path, default=None, help="checkout of the commit to compare with")
    parser.add_argument("--rounds", type=int, default=10, help="shutdown rounds per server")
    parser.add_argument("--no-go", action="store_true", help="skip the Go anchor")
    parser.add_argument("--throughput", type=int, default=0, help="only the before/after throughput A/B, N turns")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default reliability/results)")
    args = parser.parse_args(argv)
    load_before = round(os.getloadavg()[0], 2)
    out_dir = args.out or RESULTS_DIR
    if args.throughput:
        if args.before is None:
            parser.error("--throughput needs --before")
        with tempfile.TemporaryDirectory(prefix="svc-edge-") as tmp:
            ab = throughput_ab(args.before, Path(tmp), args.throughput)
        env = environment(load_before)
        text = (
            f"# Edge protocol cost: before/after\n\n{env['date']}, commit {env['commit']}, load average "
            f"{env['load_average_1m_before']} before. Keep-alive GET /links/{{slug}}, 32 closed-loop workers, "
            f"{args.throughput} turns of 3 s each, alternating. CPU time is the server process's own.\n\n"
            + markdown_table(
                ["", "before (httptools)", "after (EdgeProtocol)"],
                [
                    ["req/s per turn", ab["rps"]["before"], ab["rps"]["after"]],
                    [
                        "CPU µs per request per turn",
                        ab["cpu_us_per_request"]["before"],
                        ab["cpu_us_per_request"]["after"],
                    ],
                    ["median req/s", ab["median_rps"]["before"], ab["median_rps"]["after"]],
                    ["median CPU µs per request", ab["median_cpu_us"]["before"], ab["median_cpu_us"]["after"]],
                ],
            )
            + f"\n\nCPU per request, after/before: **{ab['cpu_ratio_after_before']}**\n"
        )
        paths = write_result("edge-throughput", {"environment": env, **ab}, text, out_dir)
        print(f"{ab}\nwrote {paths[0]} and {paths[1]}")
        return 0
    with tempfile.TemporaryDirectory(prefix="svc-edge-") as tmp:
        go = None if args.no_go else build_go(Path(tmp))
        data = run_all(args.before, go, args.rounds, Path(tmp))
    env = environment(load_before)
    json_path, md_path = write_result("edge", {"environment": env, "targets": data}, _markdown(data, env), out_dir)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
