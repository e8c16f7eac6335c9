"""Long-term validation: signatures that still validate after Portico's signing certificate expires.

With a time-stamp authority configured, signatures are PAdES B-T. This module adds what makes them last:
- B-LT: the revocation information (OCSP responses, CRLs) and certificates a validator needs are fetched
  from the CA while the certificate is valid and embedded in the document security store (DSS);
- B-LTA: the seal ends with a document time-stamp over everything, including that DSS, so a validator
  years later can prove the revocation information existed while it was fresh.

Fetching is bounded (a timeout per request, a cap on requests) and fails with RevocationUnavailable,
which names the CA's addresses, rather than seal a document without its validation data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    collect_validation_info,
    validate_pdf_signature,
)
from pyhanko.sign.validation.ades import AdESLTAValidationResult, ades_lta_validation
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.errors import PathBuildingError, PathError, RevokedError, ValidationError
from pyhanko_certvalidator.fetchers import FetcherBackend
from pyhanko_certvalidator.fetchers.api import FetchLimits
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

log = logging.getLogger("portico.long_term")
T = TypeVar("T")

# A real chain needs a handful of requests (OCSP for the signer, a CRL per CA, the time-stamp authority's);
# the cap keeps a hostile or looping certificate from turning one seal into hundreds of slow requests.
FETCH_LIMITS = FetchLimits(max_requests=40, max_cert_requests=10)


class RevocationUnavailable(Exception):
    """The revocation information for a signature could not be fetched (CA unreachable, slow or refusing)."""


@dataclass(frozen=True)
class LongTermStatus:
    """What a validation with only the document's own material concluded about one signature."""

    validates: bool
    """Valid and trusted from the embedded certificates and revocation information alone (no network)."""
    archived_at: dt.datetime | None
    """Time of the oldest valid document time-stamp covering the signature and its validation data."""


# --- signing with validation data ------------------------------------------------------------------


def validation_context(
    chain: Iterable[asn1_x509.Certificate], timeout: float, fetcher: FetcherBackend | None = None
) -> ValidationContext:
    """A context that fetches OCSP/CRLs for `chain` (its self-signed certificates are the trust anchors).

    Hard-fail: a certificate that names an OCSP responder or CRL must get an answer from one of them. One
    context per sealing run: what it fetched is reused for every document of the engagement.
    """
    certificates = list(chain)
    roots = [cert for cert in certificates if cert.subject == cert.issuer] or certificates
    return ValidationContext(
        trust_roots=roots,
        other_certs=[cert for cert in certificates if cert not in roots],
        allow_fetching=True,
        revocation_mode="hard-fail",
        fetcher_backend=fetcher or RequestsFetcherBackend(per_request_timeout=timeout, limits=FETCH_LIMITS),
    )


def declares_revocation(cert: asn1_x509.Certificate) -> bool:
    """The certificate names an OCSP responder or a CRL: there is revocation information to embed."""
    return bool(cert.ocsp_urls or cert.crl_distribution_points)


def timestamp_chain(timestamper: TimeStamper) -> list[asn1_x509.Certificate]:
    """The certificates the time-stamp authority sends with its tokens (pyHanko keeps the sample token).

    The authority is the operator's choice, like the signing chain, so its CA anchors the tokens' paths
    when revocation information is collected for them.
    """
    token = asyncio.run(timestamper.async_dummy_response("sha256"))
    certificates = token["content"]["certificates"]
    return [choice.chosen for choice in certificates if choice.name == "certificate"]


def check_signer(signer: signers.SimpleSigner, context: ValidationContext) -> None:
    """Fetch the revocation information for the signing certificate now, or raise RevocationUnavailable."""
    cert = signer.signing_cert
    assert cert is not None  # a loaded signer has its certificate
    validator = CertificateValidator(
        cert, intermediate_certs=list(signer.cert_registry), validation_context=context
    )
    _fetching(cert, lambda: asyncio.run(validator.async_validate_usage(key_usage=set())))


def add_validation_info(pdf: bytes, context: ValidationContext, *, newest_only: bool = False) -> bytes:
    """Embed in the DSS, in one incremental update, what validates every signature already in `pdf`
    (or only the newest one: right after signing, the others were covered when they were added).

    Allowed after any signature, even a locking one: PAdES counts DSS updates as validation data, not
    changes to the document. Returns `pdf` unchanged when no signature lacks its entry.
    """
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    signatures = reader.embedded_regular_signatures
    if not signatures:
        return pdf
    if newest_only:
        signatures = signatures[-1:]
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    covered, added = _vri_keys(reader), False
    for embedded in signatures:
        contents = embedded.pkcs7_content.hex().encode("ascii")
        if DocumentSecurityStore.sig_content_identifier(contents) in covered:
            continue  # embedded when it was signed; rewriting its entry would count as tampering
        paths = _fetching(embedded.signer_cert, functools.partial(_collect, embedded, context))
        DocumentSecurityStore.supply_dss_in_writer(writer, contents, paths=paths, validation_context=context)
        added = True
    if not added:
        return pdf
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _vri_keys(reader: PdfFileReader) -> set[str]:
    try:
        return set(DocumentSecurityStore.read_dss(reader).vri_entries)
    except Exception:  # no DSS yet (pyHanko's NoDSSFoundError), or one without /VRI
        return set()


def _collect(embedded: EmbeddedPdfSignature, context: ValidationContext) -> list[object]:
    # The signer's chain and that of its time-stamp token, validated with `context`, which keeps the
    # OCSP responses and CRLs it fetched for supply_dss_in_writer.
    paths: list[object] = asyncio.run(collect_validation_info(embedded, context))
    return paths


def archival_metadata(
    meta: signers.PdfSignatureMetadata, context: ValidationContext
) -> signers.PdfSignatureMetadata:
    """The same signature, with its validation data embedded and a document time-stamp after it (B-LTA)."""
    return dataclasses.replace(
        meta, validation_context=context, embed_validation_info=True, use_pades_lta=True
    )


def _fetching(cert: asn1_x509.Certificate, work: Callable[[], T]) -> T:
    try:
        return work()
    except RevokedError as error:
        raise RevocationUnavailable(
            f"The certificate '{cert.subject.human_friendly}' is revoked: {error}"
        ) from error
    except PathBuildingError as error:
        raise RevocationUnavailable(
            f"Cannot validate '{cert.subject.human_friendly}' to collect its revocation information: "
            f"{error}. Add its CA to PORTICO_TRUST_ROOTS."
        ) from error
    except (PathError, ValidationError) as error:
        raise RevocationUnavailable(
            f"Cannot get revocation information for '{cert.subject.human_friendly}' from "
            f"{_sources(cert)}: {error}"
        ) from error


def _sources(cert: asn1_x509.Certificate) -> str:
    urls = [*cert.ocsp_urls, *(url for point in cert.crl_distribution_points for url in _urls(point))]
    return ", ".join(urls) or "its certificate authority"


def _urls(point: object) -> list[str]:
    try:
        return [name.native for name in point["distribution_point"].chosen]  # type: ignore[index]
    except (KeyError, TypeError, AttributeError):
        return []


# --- reading the level back ----------------------------------------------------------------------------


def assess(
    pdf: bytes,
    roots: Sequence[asn1_x509.Certificate],
    *,
    at: dt.datetime | None = None,
    fetcher: FetcherBackend | None = None,
) -> list[LongTermStatus]:
    """PAdES long-term validation (ETSI EN 319 102-1 §5.6.3) of each signature, in signing order.

    Without `fetcher` only the document's own material counts (verify-pdf never calls out to addresses
    named inside a file). `at` validates at another moment, e.g. after the signing certificate expired;
    a validator then needs the newest document time-stamp's current revocation status, from `fetcher`.
    """
    moment = at or dt.datetime.now(dt.UTC)
    timing = ValidationTimingInfo(
        validation_time=moment, best_signature_time=moment, point_in_time_validation=False
    )
    trust = SimpleTrustManager.build(trust_roots=list(roots))
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=trust, revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO)
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=(
                    RevinfoOnlineFetchingRule.NO_HISTORICAL_FETCH
                    if fetcher is not None
                    else RevinfoOnlineFetchingRule.LOCAL_ONLY
                ),
                fetcher_backend=fetcher,
            ),
        )
    )
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    statuses = []
    for embedded in reader.embedded_regular_signatures:
        archival = _validate(embedded, spec, timing)
        if archival is not None and archival.ades_subindic == AdESPassed.OK:
            statuses.append(LongTermStatus(True, archival.oldest_evidence_record_timestamp))
        else:  # no document time-stamp yet: B-LT holds while the embedded information does
            statuses.append(LongTermStatus(_embedded_material_suffices(embedded, roots, at), None))
    return statuses


def _validate(
    embedded: EmbeddedPdfSignature, spec: PdfSignatureValidationSpec, timing: ValidationTimingInfo
) -> AdESLTAValidationResult | None:
    try:
        return asyncio.run(ades_lta_validation(embedded, spec, timing_info=timing))
    except Exception as error:  # a damaged or unusual signature is reported as not validating, not a crash
        log.info("long-term validation failed: %s", error)
        return None


def _embedded_material_suffices(
    embedded: EmbeddedPdfSignature, roots: Sequence[asn1_x509.Certificate], at: dt.datetime | None
) -> bool:
    """Valid and trusted, with revocation information required, from the DSS alone (no network)."""
    try:
        dss = DocumentSecurityStore.read_dss(embedded.reader)
        context = dss.as_validation_context(
            {"trust_roots": list(roots), "revocation_mode": "require", "moment": at}
        )
        status = validate_pdf_signature(embedded, context, skip_diff=True)
    except Exception as error:  # no DSS, or a damaged one: not B-LT
        log.info("validation from the embedded information failed: %s", error)
        return False
    return status.intact and status.valid and status.trusted and not status.revoked
