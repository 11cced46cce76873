"""One-shot lab job: provision Kibana through its HTTP API, because data views cannot be provisioned from files.

Creates (idempotently) the `svc-logs` data view with `@timestamp` as time field, a URL field format that turns
`trace.id` into a link to the trace in the Jaeger UI (plus a runtime field linking to the trace's page in Sentry
Spotlight, the lab's error view), makes it the default data view, and imports the "svc errors" saved search.
Stdlib only: runs in a plain python image. Every request carries `kbn-xsrf`, without which Kibana rejects writes.
"""

from __future__ import annotations

import json
import os
import string
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_VIEW_ID = "svc-logs"

Sleep = Callable[[float], None]


def request(
    method: str, url: str, body: bytes | None = None, content_type: str = "application/json", timeout: float = 30.0
) -> tuple[int, str]:
    """One HTTP call to Kibana; returns (status, body) for any HTTP answer, raises OSError when nothing answered."""
    headers = {"kbn-xsrf": "svc-lab-setup"}
    if body is not None:
        headers["Content-Type"] = content_type
    # S310: the URL is KIBANA_URL from compose (http://kibana:5601), never user input.
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_until_available(base: str, deadline_s: float, sleep: Sleep = time.sleep) -> None:
    """Kibana answers HTTP long before its plugins are ready; only overall level 'available' means ready."""
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            status, text = request("GET", f"{base}/api/status")
            if status == 200 and json.loads(text).get("status", {}).get("overall", {}).get("level") == "available":
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > give_up:
            raise TimeoutError(f"Kibana at {base} not available after {deadline_s:.0f}s")
        sleep(3.0)


def data_view_body(jaeger_ui_url: str, sentry_ui_url: str) -> dict[str, Any]:
    """The create-data-view request body, with the browser-facing URLs filled in."""
    raw = (HERE / "data-view.json").read_text()
    filled = string.Template(raw).substitute(
        JAEGER_UI_URL=jaeger_ui_url.rstrip("/"), SENTRY_UI_URL=sentry_ui_url.rstrip("/")
    )
    body: dict[str, Any] = json.loads(filled)
    return body


def saved_search_ndjson() -> bytes:
    """The saved search as one export line: Kibana stores searchSourceJSON as a JSON string, not an object."""
    obj: dict[str, Any] = json.loads((HERE / "saved-search.json").read_text())
    meta = obj["attributes"]["kibanaSavedObjectMeta"]
    meta["searchSourceJSON"] = json.dumps(meta["searchSourceJSON"], separators=(",", ":"))
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def multipart(field: str, filename: str, payload: bytes) -> tuple[bytes, str]:
    """A one-file multipart/form-data body (the saved objects import API takes nothing else)."""
    boundary = f"svc-lab-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def provision(base: str, jaeger_ui_url: str, sentry_ui_url: str) -> list[str]:
    """Data view, default data view, saved search; returns one line per step, raises on the first failure."""
    steps: list[tuple[str, str, bytes, str]] = [
        (
            "POST",
            "/api/data_views/data_view",
            json.dumps(data_view_body(jaeger_ui_url, sentry_ui_url)).encode(),
            "application/json",
        ),
        (
            "POST",
            "/api/data_views/default",
            json.dumps({"data_view_id": DATA_VIEW_ID, "force": True}).encode(),
            "application/json",
        ),
        ("POST", "/api/saved_objects/_import?overwrite=true", *multipart("file", "svc.ndjson", saved_search_ndjson())),
    ]
    done: list[str] = []
    for method, path, body, content_type in steps:
        status, text = request(method, base + path, body, content_type)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> {status}: {text[:500]}")
        if path.startswith("/api/saved_objects/_import") and not json.loads(text).get("success", False):
            raise RuntimeError(f"{method} {path} reported errors: {text[:500]}")
        done.append(f"{method} {path} -> {status}")
    return done


def main() -> int:
    base = os.environ.get("KIBANA_URL", "http://kibana:5601").rstrip("/")
    jaeger_ui = os.environ.get("JAEGER_UI_URL", "http://localhost:16686")
    sentry_ui = os.environ.get("SENTRY_UI_URL", "http://localhost:8969")
    try:
        wait_until_available(base, float(os.environ.get("SETUP_TIMEOUT_S", "300")))
        for line in provision(base, jaeger_ui, sentry_ui):
            print(f"kibana-setup: {line}", flush=True)
    except (OSError, RuntimeError, ValueError) as err:
        print(f"kibana-setup: failed: {err}", file=sys.stderr, flush=True)
        return 1
    print(f"kibana-setup: open {os.environ.get('KIBANA_PUBLIC_URL', 'http://localhost:5601')}/app/discover", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
