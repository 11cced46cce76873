"""Latency tail with the OTLP collector healthy vs refusing, svc and (optionally) a baseline tree, in one run.

    uv run python -m bench.gc_pause [--seconds 20] [--rate 100] [--baseline /path/to/other/tree]

Starts every variant at once (b: healthy collector, d-refused: nothing listens on the OTLP port), all pinned
to the server core, and loads each at the same fixed rate from its own thread on the other core. Latency is
measured from each request's scheduled start (open loop, so a pause delays the requests queued behind it, as
a real client sees it). A stop-the-world pause on the server (a full gc.collect() of 30-137 ms) shows in p99.9
and max; at this low rate nothing else queues. Also prints each server's count of full collections. A stall of
the whole machine (other load on a shared core) shows in every variant at once: compare variants, not runs.
Prints one line per variant; no assertion.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.launch import launch_for
from bench.process import Server
from bench.receivers import running_backends
from bench.variants import variant_of
from harness.seed import LINK_PATH, seed_database

__all__ = ["main"]


def _load(port: int, rate: float, seconds: float, out: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    start = time.monotonic() + 0.1
    count = int(rate * seconds)
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the open-loop load
        connection.request("GET", LINK_PATH)
        response = connection.getresponse()
        response.read()
        out.append(time.monotonic() - scheduled)
    connection.close()


def _full_collections(server: Server) -> float | None:
    """python_gc_collections_total{generation="2"} from the admin listener: full collections since start."""
    text = server.metrics()
    for line in (text or "").splitlines():
        if line.startswith('python_gc_collections_total{generation="2"}'):
            return float(line.split()[-1])
    return None


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Run every variant side by side; print p50/p99/p99.9/max per variant."""
    parser = argparse.ArgumentParser(prog="python -m bench.gc_pause")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second per variant")
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    keys = ["b", "d-refused"] + (["b@base", "d-refused@base"] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="gc-pause-") as tmp, running_backends([args.load_cpu]) as backends:
        servers: dict[str, Server] = {}
        try:
            for key in keys:
                db = Path(tmp) / f"{key}.db"
                seed_database(db)
                launch = launch_for(variant_of(key), db, backends, baseline=args.baseline)
                servers[key] = Server(launch, args.cpu, Path(tmp) / f"{key}.log")
            for server in servers.values():
                server.wait_ready(LINK_PATH)
                _load(server.launch.port, args.rate * 5, 2.0, [])  # warm-up: first requests, first exports
            latencies: dict[str, list[float]] = {key: [] for key in keys}
            threads = [
                threading.Thread(target=_load, args=(servers[k].launch.port, args.rate, args.seconds, latencies[k]))
                for k in keys
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            dropped = {key: server.dropped_spans() for key, server in servers.items()}
            full = {key: _full_collections(server) for key, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    print(f"{args.rate:.0f} req/s per variant for {args.seconds:.0f} s, all variants at once on one core")
    for key in keys:
        ms = [v * 1000 for v in latencies[key]]
        print(
            f"{key:>15}: p50 {statistics.median(ms):6.2f} ms  p99 {_quantile(ms, 0.99):7.2f} ms  "
            f"p99.9 {_quantile(ms, 0.999):7.2f} ms  max {max(ms):7.2f} ms  ({len(ms)} requests, "
            f"spans dropped {dropped[key]}, full collections {full[key]})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
