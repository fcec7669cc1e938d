"""TLS and mTLS on both receivers, with the real OpenTelemetry SDK exporters and certificates
made here: TLS clients are served, plaintext clients are refused; with a client CA, only
clients holding a certificate it signed get through, and refused exports store nothing."""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.conftest import sql, start_collector, tracekit as run
from tests.otlp_payloads import trace_request
from tests.test_auth import _spans


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write(folder: Path, name: str, cert: x509.Certificate, key) -> Pair:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pair(cert_path, key_path)


def _certificate(subject: str, key, issuer: tuple[x509.Certificate, object] | None = None,
                 ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_cert, issuer_key = issuer or (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer_cert is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_cert.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    elif server:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    ca: Pair
    server: Pair
    client: Pair
    other_ca: Pair
    stranger: Pair   # a client certificate from the other CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, other_key = _key(), _key()
    ca = _certificate("tracekit test CA", ca_key, ca=True)
    other = _certificate("some other CA", other_key, ca=True)
    server_key, client_key, stranger_key = _key(), _key(), _key()
    return Pki(
        ca=_write(folder, "ca", ca, ca_key),
        server=_write(folder, "server", _certificate("collector", server_key, (ca, ca_key), server=True),
                      server_key),
        client=_write(folder, "client", _certificate("shop", client_key, (ca, ca_key)), client_key),
        other_ca=_write(folder, "other-ca", other, other_key),
        stranger=_write(folder, "stranger", _certificate("stranger", stranger_key, (other, other_key)),
                        stranger_key),
    )


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify`, so where
    # they are set the SDK's HTTP exporter ignores its certificate_file (requests issue 3829).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _tls_options(pki: Pki, mutual: bool) -> tuple[str, ...]:
    options = ("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key))
    return options + (("--tls-client-ca", str(pki.ca.cert)) if mutual else ())


@pytest.fixture(scope="module")
def tls_collector(pki, tmp_path_factory):
    running = start_collector(tmp_path_factory.mktemp("tls") / "store.duckdb",
                              extra=_tls_options(pki, mutual=False))
    yield running
    assert running.stop() == 0, running.process.stderr.read()


@pytest.fixture(scope="module")
def mtls_collector(pki, tmp_path_factory):
    running = start_collector(tmp_path_factory.mktemp("mtls") / "store.duckdb",
                              extra=_tls_options(pki, mutual=True))
    yield running
    assert running.stop() == 0, running.process.stderr.read()


def span_exporter(transport: str, address: str, trust: Pair | None, client: Pair | None = None,
                  timeout: float = 3):
    """The SDK's OTLP span exporter over TLS trusting `trust`'s certificate (plaintext when
    None), presenting `client`'s certificate when given. A short timeout by default: exporters
    retry a refused connection until it runs out."""
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if trust is None:
            return OTLPSpanExporter(endpoint=f"http://{address}", insecure=True, timeout=timeout)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=trust.cert.read_bytes(),
            private_key=client.key.read_bytes() if client else None,
            certificate_chain=client.cert.read_bytes() if client else None)
        return OTLPSpanExporter(endpoint=f"https://{address}", credentials=credentials, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if trust is None:
        return OTLPSpanExporter(endpoint=f"http://{address}/v1/traces", timeout=timeout)
    return OTLPSpanExporter(endpoint=f"https://{address}/v1/traces", timeout=timeout,
                            certificate_file=str(trust.cert),
                            client_certificate_file=str(client.cert) if client else None,
                            client_key_file=str(client.key) if client else None)


def _export(exporter, n: int) -> SpanExportResult:
    try:
        return exporter.export(_spans(n))
    finally:
        exporter.shutdown()


def _stored(db: Path) -> int:
    return sql(db, "SELECT count(*) AS n FROM spans")[0]["n"]


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exports_over_tls_and_plaintext_or_an_untrusted_server_fails(tls_collector, pki, transport):
    address = tls_collector.grpc if transport == "grpc" else tls_collector.http
    before = _stored(tls_collector.db)
    assert _export(span_exporter(transport, address, trust=None), 2) == SpanExportResult.FAILURE
    # A client that trusts another CA refuses the collector's certificate.
    assert _export(span_exporter(transport, address, trust=pki.other_ca), 2) == SpanExportResult.FAILURE
    assert _export(span_exporter(transport, address, trust=pki.ca, timeout=30), 3) == SpanExportResult.SUCCESS
    assert _stored(tls_collector.db) == before + 3


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_mtls_accepts_only_client_certificates_from_its_ca(mtls_collector, pki, transport):
    address = mtls_collector.grpc if transport == "grpc" else mtls_collector.http
    before = _stored(mtls_collector.db)
    refused = [span_exporter(transport, address, trust=pki.ca),                        # no cert
               span_exporter(transport, address, trust=pki.ca, client=pki.stranger),   # other CA
               span_exporter(transport, address, trust=None)]                          # plaintext
    for exporter in refused:
        assert _export(exporter, 2) == SpanExportResult.FAILURE
    assert _stored(mtls_collector.db) == before
    accepted = span_exporter(transport, address, trust=pki.ca, client=pki.client, timeout=30)
    assert _export(accepted, 4) == SpanExportResult.SUCCESS
    assert _stored(mtls_collector.db) == before + 4


def test_sdk_grpc_exporter_reads_certificates_from_the_environment(mtls_collector, pki, monkeypatch):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(pki.ca.cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", str(pki.client.cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", str(pki.client.key))
    before = _stored(mtls_collector.db)
    exporter = OTLPSpanExporter(endpoint=f"https://{mtls_collector.grpc}", timeout=30)
    assert _export(exporter, 2) == SpanExportResult.SUCCESS
    assert _stored(mtls_collector.db) == before + 2


def test_import_into_a_tls_collector_goes_over_https(tls_collector, tmp_path):
    from tests.test_import import _otlp_json

    path = tmp_path / "t.json"
    path.write_text(json.dumps(_otlp_json(trace_request(5, service="imported-over-tls"))))
    summary = json.loads(run("import", "--db", str(tls_collector.db), "--json", str(path)).stdout)
    assert summary["spans"] == 5
    assert sql(tls_collector.db, "SELECT count(*) AS n FROM spans "
                                 "WHERE service_name = 'imported-over-tls'")[0]["n"] == 5


def test_import_into_an_mtls_collector_says_it_cannot(mtls_collector, tmp_path):
    from tests.test_import import _otlp_json

    path = tmp_path / "t.json"
    path.write_text(json.dumps(_otlp_json(trace_request(2, service="import-refused"))))
    result = run("import", "--db", str(mtls_collector.db), str(path), check=False)
    assert result.returncode == 1
    assert b"client certificates" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["missing cert", "key of another certificate", "no key",
                                  "client CA not PEM"])
def test_unusable_tls_files_stop_collect_with_what_to_fix(pki, tmp_path, case):
    cert, key, extra = str(pki.server.cert), str(pki.server.key), ()
    if case == "missing cert":
        cert = str(tmp_path / "nope.crt")
    elif case == "key of another certificate":
        key = str(pki.client.key)
    elif case == "client CA not PEM":
        junk = tmp_path / "ca.pem"
        junk.write_text("not a certificate\n")
        extra = ("--tls-client-ca", str(junk))
    args = ["collect", "--db", str(tmp_path / "s.duckdb"), "--grpc", "127.0.0.1:0",
            "--http", "127.0.0.1:0", "--tls-cert", cert]
    if case != "no key":
        args += ["--tls-key", key]
    result = run(*args, *extra, check=False, timeout=60)
    assert result.returncode == 1, result.stderr
    message = result.stderr.decode()
    assert "Traceback" not in message
    expected = {"missing cert": "cannot read it", "key of another certificate": "does not belong",
                "no key": "--tls-key", "client CA not PEM": "no usable CA certificate"}[case]
    assert expected in message, message


def test_tls_counts_for_the_warning_about_listening_beyond_localhost(pki, tmp_path):
    # mTLS on every interface: only holders of a client certificate can send, no warning.
    running = start_collector(tmp_path / "mtls.duckdb", grpc="0.0.0.0:0", http="0.0.0.0:0",
                              extra=_tls_options(pki, mutual=True))
    assert running.stop() == 0
    assert "beyond localhost" not in running.process.stderr.read()
    # A token without TLS: the warning says the token crosses the network in clear text.
    token = tmp_path / "token"
    token.write_text("t0ken-value\n")
    running = start_collector(tmp_path / "token.duckdb", grpc="0.0.0.0:0", http="0.0.0.0:0",
                              extra=("--auth-token-file", str(token)))
    assert running.stop() == 0
    log = running.process.stderr.read()
    assert "beyond localhost without TLS" in log and "clear text" in log and "t0ken-value" not in log
