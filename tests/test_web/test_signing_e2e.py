"""A joint return from invitation to a sealed Form 8879, through the API, on a real Temporal dev server.

Time-stamped (PAdES B-T) by a local time-stamp authority; cross-checked with poppler's pdfsig.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

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
from temporalio.testing import WorkflowEnvironment
from tsa_server import TimeStampServer

from core.config import Settings
from core.context import Resources
from esign import pdfsign
from worker.main import build_worker

pytestmark = pytest.mark.e2e
TAXPAYER_IP, SPOUSE_IP = "203.0.113.9", "198.51.100.23"
CONSENT_BOX = {"role": "taxpayer", "page": 1, "x": 320, "y": 120, "width": 220, "height": 64}


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TimeStampServer]:
    with TimeStampServer(tmp_path) as server:
        yield server


@pytest.fixture
async def worker(
    settings: Settings, dev_server: WorkflowEnvironment, tsa: TimeStampServer
) -> AsyncIterator[Resources]:
    settings.tsa_url = tsa.url  # B-T: every signature and the seal carry a time-stamp token
    resources = Resources.from_settings(settings)
    async with build_worker(dev_server.client, resources):
        yield resources


async def wait_for_stage(
    http, engagement_id: int, stage: str, waiting_on: str | None = None, timeout: float = 30
) -> dict:  # type: ignore[no-untyped-def]
    """The dashboard row is written just after "Signed!" answers: poll until it shows `stage`."""
    body: dict = {}
    for _ in range(int(timeout / 0.1)):
        body = (await http.get(f"/api/engagements/{engagement_id}")).json()
        if body["status"]["stage"] == stage and waiting_on in (None, body["status"]["waiting_on"]):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement stayed at {body['status']['stage']}, expected {stage}")


async def test_joint_return_ends_with_a_sealed_time_stamped_form_8879(
    api, worker: Resources, settings: Settings, tsa: TimeStampServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    email = make_preparer(worker)
    async with api.client() as preparer, api.client(TAXPAYER_IP) as tp_http, api.client(SPOUSE_IP) as sp_http:
        await login_preparer(preparer, email)
        eid = (
            await preparer.post(
                "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE}
            )
        ).json()["id"]
        taxpayer, spouse = Person(tp_http, TAXPAYER), Person(sp_http, SPOUSE, "spouse")
        for person in (taxpayer, spouse):
            sent = await preparer.post(
                f"/api/engagements/{eid}/invite", json={"role": person.role, "channel": "email"}
            )
            assert sent.status_code == 200, sent.text
            await asyncio.sleep(0.3)
            await register_and_verify(
                person, invite_token(await latest(preparer, "invite", person.data["email"])), preparer
            )

        form, consent = (
            pdfs.make_form_8879(pages=2, with_fields=True),
            pdfs.make_pdf(1, "Form 8878-like consent"),
        )
        files = [
            ("files", ("Form 8879.pdf", form, "application/pdf")),
            ("files", ("Consent.pdf", consent, "application/pdf")),
            ("files", ("Return.pdf", pdfs.make_pdf(3, "Form 1040"), "application/pdf")),
        ]
        sent_docs = await preparer.post(
            f"/api/engagements/{eid}/documents",
            files=files,
            data={
                "signers": ["both", "taxpayer", "none"],
                "signature_boxes": ["", json.dumps([CONSENT_BOX]), ""],
            },
        )
        assert sent_docs.status_code == 200, sent_docs.text
        docs = {d["name"]: d["id"] for d in sent_docs.json()["documents"]}

        for person in (taxpayer, spouse):
            saved = await person.http.put(
                "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
            )
            assert saved.status_code == 200, saved.text
        for doc in ("Form 8879.pdf", "Consent.pdf"):
            signed = await taxpayer.http.post(f"/api/taxpayer/documents/{docs[doc]}/sign")
            assert signed.status_code == 200, signed.text
        await wait_for_stage(preparer, eid, "signing", waiting_on="spouse")
        assert (
            await spouse.http.post(f"/api/taxpayer/documents/{docs['Form 8879.pdf']}/sign")
        ).status_code == 200
        await wait_for_stage(preparer, eid, "completed")

        async def download(name: str, original: bool = False) -> bytes:
            url = f"/api/engagements/{eid}/documents/{docs[name]}/download" + (
                "?original=true" if original else ""
            )
            return (await preparer.get(url)).content

        sealed_8879 = await download("Form 8879.pdf")
        (tmp_path / "form-8879-sealed.pdf").write_bytes(sealed_8879)  # kept for a person to look at
        roots = [settings.data_dir / "signing" / "dev-ca-cert.pem", tsa.ca_cert_path]

        # Form 8879: both spouses' stamped B-T signatures, then the seal that locks it.
        reports = await asyncio.to_thread(pdfsign.read_signatures, sealed_8879, roots)
        assert [(r.field_name, r.signer_name, r.level, r.holds) for r in reports] == [
            ("Taxpayer", "Shelby O'Neil", "PAdES B-T", True),
            ("Spouse", "Jordan O'Neil", "PAdES B-T", True),
            ("PorticoSeal", "Lovelace Tax (Portico e-signature seal)", "PAdES B-T", True),
        ]
        assert reports[-1].locks_document and sealed_8879.startswith(form)
        assert pdfs.page_count(sealed_8879) == 3
        page_one, certificate = pdfs.page_text(sealed_8879, 1), pdfs.page_text(sealed_8879, 3)
        assert "Shelby O'Neil" in page_one and "Jordan O'Neil" in page_one
        for expected in (
            "Certificate of Completion",
            "shelby",
            "jordan",
            TAXPAYER_IP,
            SPOUSE_IP,
            "pytest-portico",
        ):
            assert expected in certificate, expected

        # The consent: the taxpayer's stamp in the preparer's box, then the seal.
        sealed_consent = await download("Consent.pdf")
        consent_reports = await asyncio.to_thread(pdfsign.read_signatures, sealed_consent, roots)
        assert [(r.field_name, r.holds) for r in consent_reports] == [
            ("Taxpayer", True),
            ("PorticoSeal", True),
        ]
        area, _ = pdfs.changed_area(pdfs.render_page(consent, 1), pdfs.render_page(sealed_consent, 1))
        left, top, right, bottom = pdfs.box_in_pixels((320, 120, 540, 184), 792)
        assert area is not None and area[0] >= left - 3 and area[1] >= top - 3
        assert area[2] <= right + 3 and area[3] <= bottom + 3

        # A document nobody signs is neither stamped nor sealed.
        assert await download("Return.pdf") == await download("Return.pdf", original=True)

        # pdfsig, independently: every signature valid, the seal covering the whole file.
        output = _pdfsig(sealed_8879, tmp_path)
        assert output.count("Signature is Valid.") == 3 and "Total document signed" in output.split("#3")[1]

        # The record the preparer downloads, and verification of the file they hold.
        record = await preparer.get(f"/api/engagements/{eid}/record")
        assert record.status_code == 200, record.text
        (tmp_path / "record.zip").write_bytes(record.content)
        archive = zipfile.ZipFile(io.BytesIO(record.content))
        data = json.loads(archive.read("e-signature-record.json"))
        actions = [entry["action"] for entry in data["timeline"]]
        assert "documents.sealed" in actions and actions.count("document.signed") == 3
        assert data["signers"][0]["signatures"][0]["ip"] == TAXPAYER_IP
        assert archive.read(f"signed/{docs['Form 8879.pdf']}-Form 8879.pdf") == sealed_8879
        checked = (
            await preparer.post("/api/verify", files={"file": ("f.pdf", sealed_8879, "application/pdf")})
        ).json()
        assert checked["all_signatures_hold"] and checked["record"]["version"] == "sealed"
        assert await latest(preparer, "completed", email)


def _pdfsig(pdf: bytes, folder: Path) -> str:
    path = folder / "check.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        [pdfs.poppler_tool("pdfsig"), "-nocert", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout
