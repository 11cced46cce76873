"""The lab's error view, real Sentry Spotlight: svc's real sentry-sdk reports a forced 500 to it, and lab-check's
own lookup (Spotlight's /stream, by trace id) reads the event back."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import yaml

from harness.service import base_env, service_process
from tests.lab.files import COMPOSE, LAB_CHECK, load_script
from tests.peers.process import wait_until
from tests.peers.spotlight import SpotlightPeer

PACKAGE = Path(__file__).resolve().parent / "spotlight" / "package.json"
lab_check = load_script(LAB_CHECK, "lab_check_for_spotlight")


def test_a_forced_500_is_found_in_spotlight_by_lab_checks_lookup(spotlight: SpotlightPeer, tmp_path: Path) -> None:
    trace_id = secrets.token_hex(16)
    env = base_env(tmp_path, FAULTS_ENABLED="true", SENTRY_DSN=spotlight.dsn())
    with service_process(env) as svc:
        response = httpx.get(
            f"{svc.url}/fault",
            params={"tag": "spotlight"},
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
            timeout=5,
        )
        assert response.status_code == httpx.codes.INTERNAL_SERVER_ERROR

        def lookup() -> list[dict[str, object]] | None:
            lines = lab_check.stream_lines(f"{spotlight.url}/stream", read_s=1.0)
            return lab_check.spotlight_events(lines, trace_id) or None

        [event] = wait_until(lookup, 15, f"Spotlight event of trace {trace_id}")
    exception = event["exception"]["values"][-1]  # type: ignore[index]
    assert (exception["type"], exception["value"]) == ("InjectedFaultError", "injected fault spotlight")


def test_lab_checks_health_path_is_spotlights(spotlight: SpotlightPeer) -> None:
    _, path = lab_check.ENDPOINTS["spotlight"]
    response = httpx.get(f"{spotlight.url}{path}", timeout=5)
    assert (response.status_code, response.text) == (200, "OK")


def test_an_event_of_another_trace_is_not_taken_for_ours(spotlight: SpotlightPeer, tmp_path: Path) -> None:
    env = base_env(tmp_path, FAULTS_ENABLED="true", SENTRY_DSN=spotlight.dsn())
    with service_process(env) as svc:
        assert httpx.get(f"{svc.url}/fault", timeout=5).status_code == httpx.codes.INTERNAL_SERVER_ERROR
        wait_until(
            lambda: any(True for _ in lab_check.sse_data(lab_check.stream_lines(f"{spotlight.url}/stream", 1.0))),
            15,
            "an envelope in Spotlight",
        )
    lines = lab_check.stream_lines(f"{spotlight.url}/stream", read_s=1.0)
    assert lab_check.spotlight_events(lines, secrets.token_hex(16)) == []


def test_the_tested_spotlight_is_the_labs_image_version() -> None:
    image = yaml.safe_load(COMPOSE.read_text())["services"]["spotlight"]["image"]
    name, _, tag = image.rpartition(":")
    assert name == "ghcr.io/getsentry/spotlight"
    assert tag == json.loads(PACKAGE.read_text())["dependencies"]["@spotlightjs/spotlight"]
