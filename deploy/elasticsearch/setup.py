"""One-shot lab job: install the svc-logs ILM policy and index template before Fluent Bit writes a line.

Runs in a plain python image (stdlib only). Order matters: if Fluent Bit wrote first, Elasticsearch would
auto-create `svc-logs` as a plain index with guessed types, and the template would never apply to it.
Idempotent: PUT replaces both objects, so re-running `docker compose up` is safe.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NAME = "svc-logs"  # data stream, index template and ILM policy share one name

Sleep = Callable[[float], None]


def request(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> tuple[int, str]:
    """One HTTP call; returns (status, body text) for any HTTP answer, raises OSError when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    # S310: the URL is ELASTICSEARCH_URL from compose (http://elasticsearch:9200), never user input.
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for_cluster(base: str, deadline_s: float, sleep: Sleep = time.sleep) -> None:
    """Poll cluster health until yellow (a single node never reaches green with replicas, we set 0 anyway)."""
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            status, _ = request("GET", f"{base}/_cluster/health?wait_for_status=yellow&timeout=5s")
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > give_up:
            raise TimeoutError(f"Elasticsearch at {base} not healthy after {deadline_s:.0f}s")
        sleep(2.0)


def plan() -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of each PUT, in order: the ILM policy, then the index template that names it."""
    return [
        (f"/_ilm/policy/{NAME}", json.loads((HERE / "ilm-policy.json").read_text())),
        (f"/_index_template/{NAME}", json.loads((HERE / "index-template.json").read_text())),
    ]


def install(base: str, steps: list[tuple[str, dict[str, Any]]] | None = None) -> list[str]:
    """PUT each step of ``plan()`` (or of ``steps``); returns one line per object installed, stops at a refusal."""
    done: list[str] = []
    for path, body in plan() if steps is None else steps:
        status, text = request("PUT", base + path, body)
        if status != 200:
            raise RuntimeError(f"PUT {path} -> {status}: {text[:500]}")
        done.append(f"PUT {path} -> {status}")
    return done


def main() -> int:
    base = os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200").rstrip("/")
    try:
        wait_for_cluster(base, float(os.environ.get("SETUP_TIMEOUT_S", "180")))
        for line in install(base):
            print(f"es-setup: {line}", flush=True)
    except (OSError, RuntimeError) as err:  # TimeoutError is an OSError
        print(f"es-setup: failed: {err}", file=sys.stderr, flush=True)
        return 1
    print(f"es-setup: data stream {NAME} ready for Fluent Bit", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
