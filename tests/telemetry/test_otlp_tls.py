"""OTLP over TLS: svc's own senders honour OTEL_EXPORTER_OTLP_CERTIFICATE (and the client pair, for mTLS), as the
SDK's exporters did. A real grpcio server with a CA made by the openssl command line."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling

from harness.otlp_receivers import GRPC_SERVICE
from svc.export import BatchExporter, GrpcSender, HttpSender, Tls
from svc.spans import Recorder
from tests.peers.binaries import require_peer


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require_peer("openssl", shutil.which("openssl")), *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=svc test CA", cwd=d)  # fmt: skip
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d


class _TlsReceiver:
    """A gRPC TraceService over TLS; with `mutual`, it demands a client certificate signed by the CA."""

    def __init__(self, pki: Path, mutual: bool) -> None:
        self.spans = 0
        credentials = grpc.ssl_server_credentials(
            [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
            root_certificates=(pki / "ca.pem").read_bytes() if mutual else None,
            require_client_auth=mutual,
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(GRPC_SERVICE, {"Export": handler})])
        self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.server.start()

    def _export(self, request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        self.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        return ExportTraceServiceResponse()


@pytest.fixture
def receiver(pki: Path, request: pytest.FixtureRequest) -> Iterator[_TlsReceiver]:
    running = _TlsReceiver(pki, mutual=getattr(request, "param", False))
    yield running
    running.server.stop(0)


def _export(receiver: _TlsReceiver, tls: Tls) -> list[str]:
    """Export three spans to the receiver; the drop reasons (empty when all arrived)."""
    drops: list[str] = []
    sender = GrpcSender(f"https://127.0.0.1:{receiver.port}", (), tls)
    exporter = BatchExporter(
        sender, lambda n, why: drops.extend([why] * n), max_queue=8, batch_size=8, delay=60, timeout=5
    )
    tracer = Recorder(Resource.create({}), sampling.ALWAYS_ON, [exporter]).get_tracer("test")
    for n in range(3):
        tracer.start_span(f"span-{n}").end()
    assert exporter.force_flush(10)
    exporter.shutdown(1)
    return drops


def test_spans_reach_a_collector_whose_certificate_the_given_ca_signed(receiver: _TlsReceiver, pki: Path) -> None:
    assert _export(receiver, Tls(ca_file=str(pki / "ca.pem"))) == []
    assert receiver.spans == 3


def test_without_the_ca_the_collectors_certificate_is_refused_and_counted(receiver: _TlsReceiver) -> None:
    assert _export(receiver, Tls()) == ["export_failed"] * 3
    assert receiver.spans == 0


@pytest.mark.parametrize("receiver", [True], indirect=True)
def test_mutual_tls_presents_the_client_certificate(receiver: _TlsReceiver, pki: Path) -> None:
    tls = Tls(str(pki / "ca.pem"), str(pki / "client.pem"), str(pki / "client.key"))
    assert _export(receiver, tls) == []
    assert receiver.spans == 3


def test_otlp_http_over_https_trusts_the_given_ca(pki: Path) -> None:
    received: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = ExportTraceServiceRequest.FromString(body)
            received.append(sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        drops: list[str] = []
        sender = HttpSender(f"https://127.0.0.1:{server.server_address[1]}/v1/traces", (), Tls(str(pki / "ca.pem")))
        exporter = BatchExporter(
            sender, lambda n, why: drops.append(why), max_queue=8, batch_size=8, delay=60, timeout=5
        )
        tracer = Recorder(Resource.create({}), sampling.ALWAYS_ON, [exporter]).get_tracer("test")
        tracer.start_span("over-https").end()
        assert exporter.force_flush(10)
        exporter.shutdown(1)
    finally:
        server.shutdown()
    assert drops == []
    assert received == [1]
