"""Bad input is refused when the preparer sends it, through the real route, with a message that says why."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pdfs
import pytest
from journey import SPOUSE, TAXPAYER, login_preparer, make_preparer
from pyhanko.sign import signers
from signing_fixtures import dev_signer

from core.config import Settings
from core.context import Resources
from esign import pdfsign, seal

LIMIT = 200_000


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> signers.SimpleSigner:
    return dev_signer(tmp_path_factory.mktemp("keys"))[0]


@pytest.fixture
async def preparer(
    api: Any, resources: Resources, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    settings.max_upload_bytes = LIMIT  # the app shares this settings object
    email = make_preparer(resources)
    async with api.client() as http:
        await login_preparer(http, email)
        created = await http.post(
            "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE}
        )
        assert created.status_code == 201, created.text
        yield http, created.json()["id"]


def sealed_pdf(signer: signers.SimpleSigner) -> bytes:
    signed = pdfsign.sign_pdf(
        pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="Pat", reserve_certificate_page=True
    )
    return seal.seal_pdf(signed, signer, certificate_page=pdfs.make_pdf(1), sealer_name="Portico")


def signed_field_pdf(signer: signers.SimpleSigner) -> bytes:
    return pdfsign.sign_pdf(
        pdfs.make_form_8879(with_fields=True), signer, field_name="Taxpayer", signer_name="Pat"
    )


BAD_FILES: dict[str, tuple[Callable[[signers.SimpleSigner], bytes], str]] = {
    "encrypted": (lambda _: pdfs.make_encrypted_pdf(), "encrypted or password-protected"),
    "not a PDF": (lambda _: pdfs.make_png(), "This file is a PNG image, not a PDF"),
    "damaged": (lambda _: pdfs.make_truncated_pdf(), "This PDF is damaged"),
    "certified, no changes": (pdfs.make_certified_pdf, "certified by its author with 'no changes allowed'"),
    "already sealed": (sealed_pdf, "already signed and sealed against changes"),
    "oversize": (lambda _: pdfs.make_padded_pdf(LIMIT), "the largest file Portico accepts is 0.2 MB"),
    "role already signed": (signed_field_pdf, "'Taxpayer' is already signed, so the taxpayer cannot sign it"),
}


@pytest.mark.parametrize("case", BAD_FILES)
async def test_bad_files_are_refused_at_upload(
    case: str, preparer: tuple[httpx.AsyncClient, int], signer: signers.SimpleSigner
) -> None:
    http, eid = preparer
    build, message = BAD_FILES[case]
    pdf = await asyncio.to_thread(build, signer)  # pyHanko's sync API runs its own event loop
    response = await http.post(
        f"/api/engagements/{eid}/documents",
        files=[("files", ("Form 8879.pdf", pdf, "application/pdf"))],
        data={"signers": ["both"]},
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("Form 8879.pdf: ") and message in detail, detail


BAD_BOXES = {
    "not JSON": ("[{role: taxpayer}", "not valid JSON"),
    "missing keys": (json.dumps([{"role": "taxpayer", "page": 1}]), "needs exactly: role, page"),
    "page out of range": (
        json.dumps([{"role": "taxpayer", "page": 5, "x": 72, "y": 72, "width": 200, "height": 50}]),
        "on page 5, but the document has 2",
    ),
    "outside the page": (
        json.dumps([{"role": "taxpayer", "page": 1, "x": 500, "y": 72, "width": 200, "height": 50}]),
        "partly outside the page",
    ),
    "signer who does not sign": (
        json.dumps([{"role": "spouse", "page": 1, "x": 72, "y": 72, "width": 200, "height": 50}]),
        "for the spouse, who does not sign this document",
    ),
}


@pytest.mark.parametrize("case", BAD_BOXES)
async def test_unusable_signature_boxes_are_refused_at_upload(
    case: str, preparer: tuple[httpx.AsyncClient, int]
) -> None:
    http, eid = preparer
    boxes, message = BAD_BOXES[case]
    response = await http.post(
        f"/api/engagements/{eid}/documents",
        files=[("files", ("Consent.pdf", pdfs.make_pdf(2), "application/pdf"))],
        data={"signers": ["taxpayer"], "signature_boxes": [boxes]},
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_upload_check_accepts_a_good_form_with_boxes() -> None:
    box = pdfsign.stamp.PageBox(1, 72, 72, 200, 50)
    pages = pdfsign.check_pdf_for_sending(
        pdfs.make_form_8879(with_fields=True), LIMIT, roles=["taxpayer", "spouse"], boxes={"taxpayer": box}
    )
    assert pages == 2
