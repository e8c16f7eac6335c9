"""A local RFC 3161 time-stamp authority for tests: pyHanko's DummyTimeStamper answering over HTTP.

Its CA and certificate are generated here, per test session, and never written anywhere but a temp folder.
"""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps import DummyTimeStamper


class TimeStampServer:
    """`with TimeStampServer(folder) as tsa:` serves time-stamp tokens at `tsa.url` until the block ends."""

    def __init__(self, folder: Path) -> None:
        self.ca_cert_path = folder / "tsa-ca.pem"
        self.requests = 0
        self.fail = False  # set to True to answer every request with HTTP 503
        self._stamper = self._make_stamper()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def __enter__(self) -> TimeStampServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests += 1
                if server.fail:
                    self.send_error(503, "time-stamp authority unavailable")
                    return
                answer = server._stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

        return Handler

    def _make_stamper(self) -> DummyTimeStamper:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Time-Stamp CA")])
        ca = (
            _builder(ca_name, ca_name, ca_key, now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tsa_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Time-Stamp Authority")])
        tsa = (
            _builder(tsa_name, ca_name, tsa_key, now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_cert_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        key_der = tsa_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return DummyTimeStamper(
            tsa_cert=_asn1(tsa),
            tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
            certs_to_embed=[_asn1(ca)],  # type: ignore[arg-type]
        )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
    )


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
