"""OTLP over TLS: svc's own senders honour OTEL_EXPORTER_OTLP_CERTIFICATE (and the client pair, for mTLS), as the
SDK's exporters did. The harness's fake backends over TLS (a grpcio server and an HTTPS one) with a CA made by the
openssl command line."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling

from harness.http_backend import HttpBackend
from harness.otlp_receivers import OtlpGrpcReceiver, decode_request
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


@pytest.fixture
def receiver(pki: Path, request: pytest.FixtureRequest) -> Iterator[OtlpGrpcReceiver]:
    """A gRPC TraceService over TLS; with the parameter True, it demands a client certificate signed by the CA."""
    mutual: bool = getattr(request, "param", False)
    credentials = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes() if mutual else None,
        require_client_auth=mutual,
    )
    with OtlpGrpcReceiver(credentials=credentials) as running:
        yield running


def _spans(receiver: OtlpGrpcReceiver) -> int:
    return len(receiver.all_spans())


def _export(receiver: OtlpGrpcReceiver, tls: Tls) -> list[str]:
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


def test_spans_reach_a_collector_whose_certificate_the_given_ca_signed(receiver: OtlpGrpcReceiver, pki: Path) -> None:
    assert _export(receiver, Tls(ca_file=str(pki / "ca.pem"))) == []
    assert _spans(receiver) == 3


def test_without_the_ca_the_collectors_certificate_is_refused_and_counted(receiver: OtlpGrpcReceiver) -> None:
    assert _export(receiver, Tls()) == ["export_failed"] * 3
    assert _spans(receiver) == 0


@pytest.mark.parametrize("receiver", [True], indirect=True)
def test_mutual_tls_presents_the_client_certificate(receiver: OtlpGrpcReceiver, pki: Path) -> None:
    tls = Tls(str(pki / "ca.pem"), str(pki / "client.pem"), str(pki / "client.key"))
    assert _export(receiver, tls) == []
    assert _spans(receiver) == 3


def test_otlp_http_over_https_trusts_the_given_ca(pki: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    with HttpBackend(tls=context) as endpoint:
        drops: list[str] = []
        sender = HttpSender(f"{endpoint.url}/v1/traces", (), Tls(str(pki / "ca.pem")))
        exporter = BatchExporter(
            sender, lambda n, why: drops.append(why), max_queue=8, batch_size=8, delay=60, timeout=5
        )
        tracer = Recorder(Resource.create({}), sampling.ALWAYS_ON, [exporter]).get_tracer("test")
        tracer.start_span("over-https").end()
        assert exporter.force_flush(10)
        exporter.shutdown(1)
        received = [
            [s.name for s in decode_request(ExportTraceServiceRequest.FromString(r.body))] for r in endpoint.requests()
        ]
    assert drops == []
    assert received == [["over-https"]]
