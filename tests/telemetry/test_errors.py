"""Errors: unhandled 5xx exceptions reach a Sentry envelope receiver, linked to their trace, with secrets left out."""

from __future__ import annotations

import json

import httpx

from harness.sentry_ingest import SentryReceiver
from harness.service import ServiceThread
from svc.buildinfo import read_build_info
from tests.telemetry.conftest import StartService
from tests.telemetry.support import trace_response

SECRETS = ("s3cr3t-bearer-value", "s3cr3t-cookie-value", "s3cr3t-query-token", "s3cr3t-api-key", "s3cr3t-password")


def test_an_unhandled_500_reaches_sentry_with_the_requests_trace_and_span_ids(
    traced: ServiceThread, sentry: SentryReceiver, client: httpx.Client
) -> None:
    response = client.get(f"{traced.url}/fault", params={"tag": "first"})
    assert response.status_code == 500
    ids = trace_response(response)

    event = sentry.wait_event(ids.trace_id)

    assert event["contexts"]["trace"]["trace_id"] == ids.trace_id
    assert event["contexts"]["trace"]["span_id"] == ids.span_id
    assert event["level"] == "error"
    [exception] = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("InjectedFaultError", "injected fault first")
    assert exception["mechanism"]["handled"] is False
    assert event["transaction"] == "GET /fault"
    assert event["tags"]["request_id"] == response.headers["x-request-id"]


def test_the_event_is_a_gzip_envelope_posted_to_the_project_endpoint_with_the_dsn_key(
    traced: ServiceThread, sentry: SentryReceiver, client: httpx.Client
) -> None:
    response = client.get(f"{traced.url}/fault")
    event = sentry.wait_event(trace_response(response).trace_id)

    [request] = [r for r in sentry.requests() if any(e["event_id"] == event["event_id"] for e in r.events())]
    assert request.path == f"/api/{sentry.project_id}/envelope/"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/x-sentry-envelope"
    auth = request.headers["x-sentry-auth"]
    assert auth.startswith("Sentry ")
    assert f"sentry_key={sentry.key}" in auth
    assert "sentry_version=7" in auth
    assert request.envelope_header["event_id"] == event["event_id"]
    assert [header["type"] for header, _ in request.items] == ["event"]


def test_release_and_environment_default_to_the_build_and_deployment(
    traced: ServiceThread, sentry: SentryReceiver, client: httpx.Client
) -> None:
    event = sentry.wait_event(trace_response(client.get(f"{traced.url}/fault")).trace_id)

    build = read_build_info()
    assert event["release"] == f"svc@{build.version or 'unknown'}+{(build.commit or 'unknown')[:12]}"
    assert event["environment"] == "local"


def test_sentry_environment_and_release_variables_are_honoured(
    start_service: StartService, sentry: SentryReceiver, client: httpx.Client
) -> None:
    env = {"SENTRY_DSN": sentry.dsn, "FAULTS_ENABLED": "true", "SENTRY_ENVIRONMENT": "staging"}
    with start_service(**env, SENTRY_RELEASE="svc@9.9.9-test") as svc:
        event = sentry.wait_event(trace_response(client.get(f"{svc.url}/fault")).trace_id)

    assert (event["environment"], event["release"]) == ("staging", "svc@9.9.9-test")


def test_4xx_responses_are_not_reported(traced: ServiceThread, sentry: SentryReceiver, client: httpx.Client) -> None:
    url = traced.url
    assert client.get(f"{url}/links/no-such-link").status_code == 404
    assert client.get(f"{url}/no/such/route").status_code == 404
    assert client.post(f"{url}/links", json={"url": "not a url"}).status_code == 400
    assert client.post(f"{url}/links", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert client.put(f"{url}/links").status_code == 405
    assert client.get(f"{url}/fault", params={"tag": "bad tag!"}).status_code == 400
    assert client.post(f"{url}/links", json={"url": "https://example.com/", "slug": "taken"}).status_code == 201
    assert client.post(f"{url}/links", json={"url": "https://example.com/", "slug": "taken"}).status_code == 409

    # The transport sends in order: once the 500 sent last has arrived, any event for a 4xx would have too.
    marker = trace_response(client.get(f"{url}/fault"))
    sentry.wait_event(marker.trace_id)
    assert [e["contexts"]["trace"]["trace_id"] for e in sentry.events()] == [marker.trace_id]


def test_the_event_carries_no_credentials_cookies_or_secret_query_values(
    traced: ServiceThread, sentry: SentryReceiver, client: httpx.Client
) -> None:
    response = client.get(
        f"{traced.url}/fault",
        params={"tag": "scrub", "token": SECRETS[2], "api_key": SECRETS[3], "password": SECRETS[4], "page": "2"},
        headers={"Authorization": f"Bearer {SECRETS[0]}", "Cookie": f"session={SECRETS[1]}"},
    )
    assert response.status_code == 500
    event = sentry.wait_event(trace_response(response).trace_id)

    wire = b"".join(r.raw_envelope for r in sentry.requests()).decode()
    assert wire
    assert [s for s in SECRETS if s in wire] == []
    headers = {name.lower() for name in event["request"]["headers"]}
    assert not headers & {"authorization", "cookie", "set-cookie"}
    assert "page=2" in event["request"]["query_string"]
    assert "tag=scrub" in event["request"]["query_string"]
    assert "user" not in event or "ip_address" not in json.dumps(event["user"])
