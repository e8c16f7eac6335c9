"""A real test PKI on 127.0.0.1: certomancer's CA with OCSP, CRLs and an RFC 3161 time-stamp authority.

certomancer (pyHanko's companion) builds the certificates from the configuration below and its WSGI app,
the "animator", answers OCSP requests, serves CRLs and issues time-stamp tokens. The keys are generated
here, per test session, into a temp folder: nothing is committed. Portico's signing certificate is issued
by the intermediate CA with an OCSP responder and a CRL distribution point in it, like a commercial one,
and expires long before the CAs and the time-stamp authority do, so a test can move the clock past it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from asn1crypto import pem
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import BaseWSGIServer, make_server

ARCH = "portico-test"
KEYS = ("root", "interm", "interm-ocsp", "tsa", "portico")
SIGNER_LIFETIME = dt.timedelta(days=365)
CA_LIFETIME = dt.timedelta(days=20 * 365)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class TestPki:
    """`with TestPki(folder) as pki:` serves the CA's OCSP, CRLs and TSA until the block ends."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []  # paths asked for, e.g. "/portico-test/ocsp/interm"
        self.down = False  # set to True to answer every request with HTTP 503
        self.stall = 0.0  # seconds to wait before answering: a CA that is slow or hangs
        self._closing = threading.Event()
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for name in KEYS:
            _write_key(folder / f"{name}.key.pem")
        config = CertomancerConfig(
            _config(self.now), key_search_dir=str(folder), external_url_prefix=self.url
        )
        self.arch = config.get_pki_arch(ArchLabel(ARCH))
        self.animator = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False)
        self.signer_key = folder / "portico.key.pem"
        self.signer_cert = self._write_cert("portico")
        self.intermediate_cert = self._write_cert("interm")
        self.root_cert = self._write_cert("root")
        self.tsa_url = f"{self.url}/{ARCH}/tsa/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def signer_expires(self) -> dt.datetime:
        return self.now + SIGNER_LIFETIME

    def __enter__(self) -> TestPki:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._closing.set()  # releases any stalled answer
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.requests.append(str(environ.get("PATH_INFO", "")))
        if self.stall:
            self._closing.wait(self.stall)
        if self.down:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"certificate authority unavailable"]
        answer: Iterable[bytes] = self.animator(environ, start_response)
        return answer

    def _write_cert(self, label: str) -> Path:
        path = self.folder / f"{label}.cert.pem"
        cert = self.arch.get_cert(CertLabel(label))
        path.write_bytes(pem.armor("CERTIFICATE", cert.dump()))
        return path


def _write_key(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # fast to make and to use; poppler and pyHanko read it
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _validity(start: dt.datetime, lifetime: dt.timedelta) -> dict[str, str]:
    return {
        "valid-from": f"{start:%Y-%m-%dT%H:%M:%S+0000}",
        "valid-to": f"{start + lifetime:%Y-%m-%dT%H:%M:%S+0000}",
    }


def _config(now: dt.datetime) -> dict[str, Any]:
    start = now - dt.timedelta(days=1)
    ca_validity = _validity(start, CA_LIFETIME)
    return {
        "keysets": {"test-keys": {"keys": {name: {"path": f"{name}.key.pem"} for name in KEYS}}},
        "pki-architectures": {
            ARCH: {
                "keyset": "test-keys",
                "entity-defaults": {"country-name": "US", "organization-name": "Portico Test PKI"},
                "entities": {
                    "root": {"common-name": "Test Root CA"},
                    "interm": {"common-name": "Test Issuing CA"},
                    "interm-ocsp": {"common-name": "Test OCSP Responder"},
                    "tsa": {"common-name": "Test Time-Stamp Authority"},
                    "portico": {"common-name": "Portico Test Firm e-signature seal"},
                },
                "certs": {
                    "root": {
                        "subject": "root",
                        "issuer": "root",
                        "validity": ca_validity,
                        "profiles": [{"id": "simple-ca", "params": {"crl-repo": "root"}}],
                    },
                    "interm": {
                        "issuer": "root",
                        "validity": ca_validity,
                        "profiles": [
                            {
                                "id": "simple-ca",
                                "params": {"max-path-len": 0, "crl-repo": "interm", "ocsp-service": "interm"},
                            }
                        ],
                    },
                    "interm-ocsp": {
                        "issuer": "interm",
                        "validity": ca_validity,
                        "profiles": ["ocsp-responder"],
                    },
                    "tsa": {
                        "issuer": "root",
                        "validity": ca_validity,
                        "extensions": [
                            {
                                "id": "key_usage",
                                "critical": True,
                                "smart-value": {"schema": "key-usage", "params": ["digital_signature"]},
                            },
                            {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
                            {
                                "id": "crl_distribution_points",
                                "smart-value": {
                                    "schema": "crl-dist-url",
                                    "params": {"crl-repo-names": ["root"]},
                                },
                            },
                        ],
                    },
                    "portico": {
                        "issuer": "interm",
                        "validity": _validity(start, SIGNER_LIFETIME + dt.timedelta(days=1)),
                        "profiles": ["digsig-commitment"],
                    },
                },
                "services": {
                    "ocsp": {
                        "interm": {
                            "for-issuer": "interm",
                            "responder-cert": "interm-ocsp",
                            "signing-key": "interm-ocsp",
                        }
                    },
                    "crl-repo": {
                        "root": {
                            "for-issuer": "root",
                            "signing-key": "root",
                            "simulated-update-schedule": "P90D",
                        },
                        "interm": {
                            "for-issuer": "interm",
                            "signing-key": "interm",
                            "simulated-update-schedule": "P30D",
                        },
                    },
                    "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
                },
            }
        },
    }
