"""The fake backends serve TLS when given a certificate: httpx and grpcio connect trusting it, and only then."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.http_backend import HttpBackend
from harness.otlp_receivers import GRPC_SERVICE, OtlpGrpcReceiver
from tests.peers.binaries import require_peer


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl command line."""
    d = tmp_path_factory.mktemp("tls")
    openssl = require_peer("openssl", shutil.which("openssl"))
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


def test_an_http_backend_with_tls_answers_https_to_a_client_trusting_its_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HttpBackend(tls=context) as backend:
        assert backend.url.startswith("https://")
        assert httpx.post(f"{backend.url}/x", content=b"{}", verify=ssl.create_default_context(cafile=cert)).is_success
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{backend.url}/x", content=b"{}")  # the system's trust store does not know it
        assert backend.received == 1


def test_an_otlp_grpc_receiver_with_credentials_serves_a_secure_channel(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    with OtlpGrpcReceiver(credentials=credentials) as receiver:
        assert receiver.endpoint.startswith("https://")
        trust = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"{receiver.host}:{receiver.port}", trust) as channel:
            export = channel.unary_unary(
                f"/{GRPC_SERVICE}/Export",
                request_serializer=ExportTraceServiceRequest.SerializeToString,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )
            assert export(ExportTraceServiceRequest(), timeout=10) == ExportTraceServiceResponse()
        assert len(receiver.exports()) == 1
