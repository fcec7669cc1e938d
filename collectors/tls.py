"""TLS for both receivers: a server certificate, and a client CA for mTLS.

The files are read and checked once, at start, so that a missing file, a key that does not
match the certificate or a CA file that holds no certificate stops `tracekit collect` with
a message, not the first handshake.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from tracekit.errors import TracekitError


@dataclass(frozen=True)
class ServerTls:
    """The receivers' certificate chain and key (PEM), and the client CA when mTLS is on."""

    cert_file: Path
    key_file: Path
    cert: bytes
    key: bytes
    client_ca: bytes | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def ssl_context(self) -> ssl.SSLContext:
        """For aiohttp: TLS 1.2 or later; with a client CA, a client certificate it signed
        is required."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_chain(context, self.cert_file, self.key_file)
        if self.client_ca is not None:
            context.load_verify_locations(cadata=self.client_ca.decode("ascii"))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)],
                                           root_certificates=self.client_ca,
                                           require_client_auth=self.client_ca is not None)


def load(cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> ServerTls:
    """Read and check the PEM files; raises TracekitError saying what to fix."""
    cert = _read(cert_file, "--tls-cert", "the server certificate (PEM)")
    key = _read(key_file, "--tls-key", "the server certificate's private key (PEM, unencrypted)")
    client_ca = (_read(client_ca_file, "--tls-client-ca", "the CA certificate(s) that sign client certificates (PEM)")
                 if client_ca_file is not None else None)
    tls = ServerTls(cert_file=cert_file, key_file=key_file, cert=cert, key=key, client_ca=client_ca)
    # Loading them into an SSL context checks the PEM and that the key matches the certificate.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, cert_file, key_file)
    if client_ca is not None:
        try:
            context.load_verify_locations(cadata=client_ca.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise TracekitError(f"--tls-client-ca {client_ca_file}: no usable CA certificate in it "
                                f"({exc}); give the PEM file of the CA that signs the clients' "
                                "certificates") from None
    return tls


def _read(path: Path, option: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TracekitError(f"{option} {path}: cannot read it ({exc.strerror}); "
                            f"give the path of {what}") from None


def _load_chain(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        reason = ("the key does not belong to the certificate" if "KEY_VALUES_MISMATCH" in str(exc)
                  else f"not a PEM certificate and unencrypted PEM key ({exc})")
        raise TracekitError(f"--tls-cert {cert_file} / --tls-key {key_file}: {reason}; give the "
                            "certificate and the private key it was issued for") from None
    except OSError as exc:
        raise TracekitError(f"--tls-cert {cert_file} / --tls-key {key_file}: cannot read "
                            f"({exc.strerror})") from None
