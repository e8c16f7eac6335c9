"""Signatures on the line: a flattened joint Form 8879 (printed lines, no form fields) sent through the API
comes back with each spouse's stamp on their own signature line and the signing date in their Date box.

The rendered page (pdftoppm) is compared with the one sent: every pixel the signatures drew lies on the
lines and in the date boxes, none in the bottom margin where stamps went before places were found.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pdfs
import pytest
from journey import (
    SPOUSE,
    TAXPAYER,
    Person,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    register_and_verify,
    signature_png,
)
from pypdf import PdfReader
from sqlmodel import Session

from core.config import Settings
from core.context import Resources
from core.models import Document
from esign import boxes, pdfsign

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
DPI = 72  # one pixel a point: pixel bounds read as PDF points


@pytest.fixture
async def joint(api, worker: Resources) -> AsyncIterator[tuple[httpx.AsyncClient, int, list[Person]]]:  # type: ignore[no-untyped-def]
    """A signed-in preparer, and a joint engagement whose taxpayer and spouse registered, verified and
    adopted a signature."""
    async with AsyncExitStack() as stack:
        preparer = await stack.enter_async_context(api.client())
        await login_preparer(preparer, make_preparer(worker))
        created = await preparer.post(
            "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE}
        )
        eid = created.json()["id"]
        people = []
        for data, role in ((TAXPAYER, "taxpayer"), (SPOUSE, "spouse")):
            person = Person(await stack.enter_async_context(api.client()), data, role)
            sent = await preparer.post(
                f"/api/engagements/{eid}/invite", json={"role": role, "channel": "email"}
            )
            assert sent.status_code == 200, sent.text
            await asyncio.sleep(0.3)
            token = invite_token(await latest(preparer, "invite", data["email"]))
            await register_and_verify(person, token, preparer)
            image = {"image": ("s.png", signature_png(), "image/png")}
            assert (await person.http.put("/api/taxpayer/signature", files=image)).status_code == 200
            people.append(person)
        yield preparer, eid, people


async def test_a_flattened_joint_8879_is_signed_on_its_lines_with_the_date_in_its_boxes(
    joint: tuple[httpx.AsyncClient, int, list[Person]], worker: Resources, settings: Settings, tmp_path: Path
) -> None:
    preparer, eid, (taxpayer, spouse) = joint
    form = pdfs.print_form_8879(joint=True)
    sent = await preparer.post(
        f"/api/engagements/{eid}/documents",
        files=[("files", ("Form 8879.pdf", form.pdf, "application/pdf"))],
        data={"signers": ["both"]},
    )
    assert sent.status_code == 200, sent.text
    [doc_id] = [d["id"] for d in sent.json()["documents"]]
    with Session(worker.engine) as db:
        stored = boxes.loads(db.get(Document, doc_id).signature_boxes)  # type: ignore[union-attr]
    assert sorted((b.role, b.kind) for b in stored) == [
        ("spouse", "date"),
        ("spouse", "signature"),
        ("taxpayer", "date"),
        ("taxpayer", "signature"),
    ]

    for person in (taxpayer, spouse):
        signed = await person.http.post(f"/api/taxpayer/documents/{doc_id}/sign")
        assert signed.status_code == 200, signed.text
    for _ in range(300):
        status = (await preparer.get(f"/api/engagements/{eid}")).json()["status"]
        if status["stage"] == "completed":
            break
        await asyncio.sleep(0.1)
    assert status["stage"] == "completed"
    sealed = (await preparer.get(f"/api/engagements/{eid}/documents/{doc_id}/download")).content
    (tmp_path / "form-8879-on-the-lines.pdf").write_bytes(sealed)

    before, after = pdfs.render_page(form.pdf, 1, dpi=DPI), pdfs.render_page(sealed, 1, dpi=DPI)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # for a person to look at
    before.save(SCREENSHOTS / "form-8879-joint-before.png")
    after.save(SCREENSHOTS / "form-8879-joint-signed.png")
    drawn = 0
    for role in ("taxpayer", "spouse"):
        line, date = form.line(role), form.line(role, "date")
        on_line = pdfs.ink_in(before, after, (line.x0, line.y - 3, line.x1, line.y + 32))
        in_date_box = pdfs.ink_in(before, after, (date.x0, line.y - 2, date.x1, line.y + 18))
        assert on_line > 150, f"the {role}'s stamp is not on their line"
        assert in_date_box > 20, f"the {role}'s signing date is not in their Date box"
        drawn += on_line + in_date_box
    everywhere = pdfs.ink_in(before, after, (0, 0, form.size[0], form.size[1]))
    assert everywhere == drawn, "the signatures drew outside their lines and date boxes"
    assert pdfs.ink_in(before, after, (0, 0, form.size[0], 110)) == 0, "a stamp landed in the bottom margin"

    roots = [settings.data_dir / "signing" / "dev-ca-cert.pem"]
    reports = await asyncio.to_thread(pdfsign.read_signatures, sealed, roots)
    assert [(r.field_name, r.holds) for r in reports] == [
        ("Taxpayer", True),
        ("Spouse", True),
        ("PorticoSeal", True),
    ]
    if shutil.which("pdfsig"):
        (tmp_path / "sealed.pdf").write_bytes(sealed)
        out = subprocess.run(["pdfsig", str(tmp_path / "sealed.pdf")], capture_output=True, text=True).stdout
        assert out.count("Signature Validation: Signature is Valid.") == 3, out
    certificate = " ".join(pdfs.page_text(sealed, 2).split())  # the certificate page, as a reader gets it
    assert certificate.count("on page 1: signature, date") == 2, certificate


async def test_a_form_without_a_signature_line_is_refused_unless_a_signature_page_is_appended(
    joint: tuple[httpx.AsyncClient, int, list[Person]], worker: Resources
) -> None:
    preparer, eid, _ = joint
    blank = pdfs.make_pdf(pages=2, title="Engagement letter", sign_lines=False)

    refused = await preparer.post(
        f"/api/engagements/{eid}/documents",
        files=[("files", ("Letter.pdf", blank, "application/pdf"))],
        data={"signers": ["both"]},
    )
    assert refused.status_code == 422, refused.text
    assert "found no signature line for the taxpayer or the spouse" in refused.json()["detail"]
    assert refused.json()["detail"].startswith("Letter.pdf: ")

    sent = await preparer.post(
        f"/api/engagements/{eid}/documents",
        files=[("files", ("Letter.pdf", blank, "application/pdf"))],
        data={"signers": ["both"], "signature_pages": ["true"]},
    )
    assert sent.status_code == 200, sent.text
    [doc] = sent.json()["documents"]
    with Session(worker.engine) as db:
        row = db.get(Document, doc["id"])
        assert row is not None
        stored = worker.store.get(row.current_key)
        places = boxes.loads(row.signature_boxes)
    assert len(PdfReader(io.BytesIO(stored)).pages) == 3 and row.pages == 3
    assert {(p.role, p.kind, p.page) for p in places} == {
        ("taxpayer", "signature", 3),
        ("taxpayer", "date", 3),
        ("spouse", "signature", 3),
        ("spouse", "date", 3),
    }


async def test_a_date_placed_away_from_its_signature_page_is_refused(
    joint: tuple[httpx.AsyncClient, int, list[Person]],
) -> None:
    preparer, eid, _ = joint
    places = [
        {"role": "taxpayer", "page": 1, "x": 72, "y": 300, "width": 200, "height": 36, "kind": "signature"},
        {"role": "taxpayer", "page": 2, "x": 300, "y": 300, "width": 100, "height": 16, "kind": "date"},
    ]
    refused = await preparer.post(
        f"/api/engagements/{eid}/documents",
        files=[("files", ("8879.pdf", pdfs.make_pdf(pages=2), "application/pdf"))],
        data={"signers": ["taxpayer"], "signature_boxes": [json.dumps(places)]},
    )
    assert refused.status_code == 422
    assert "Put the taxpayer's date on page 1, with their signature." in refused.json()["detail"]
