"""The whole journey through the HTTP API, on a real Temporal dev server and worker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
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
from pdfs import make_pdf
from sqlmodel import Session, select

from core.models import AuditEntry, OutboxMessage, Signature
from esign import pdfsign
from portico.app import create_app, warn_about_proxy_trust

pytestmark = pytest.mark.e2e


async def wait_for_stage(http, engagement_id: int, stage: str, timeout: float = 20) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        body = (await http.get(f"/api/engagements/{engagement_id}")).json()
        if body["status"]["stage"] == stage:
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement stayed at {body['status']['stage']}, expected {stage}")


async def test_single_return_from_invite_to_completed(api, worker, settings) -> None:  # type: ignore[no-untyped-def]
    email = make_preparer(worker)
    async with api.client() as preparer, api.client("203.0.113.9") as browser:
        await login_preparer(preparer, email)
        created = await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})
        assert created.status_code == 201, created.text
        eid = created.json()["id"]

        sent = await preparer.post(
            f"/api/engagements/{eid}/invite", json={"role": "taxpayer", "channel": "email"}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["message"] == "The link has successfully been sent!"
        await wait_for_stage(preparer, eid, "invited")

        invitation = await latest(preparer, "invite", TAXPAYER["email"])
        token = invite_token(invitation)
        opened = await browser.get(f"/api/invitations/{token}")
        assert opened.json()["state"] == "open"

        person = Person(browser, TAXPAYER)
        await register_and_verify(person, token, preparer)
        await wait_for_stage(preparer, eid, "verified")

        files = [
            ("files", ("Form 8879.pdf", make_pdf(1, "Form 8879"), "application/pdf")),
            ("files", ("Return.pdf", make_pdf(3, "Form 1040"), "application/pdf")),
        ]
        sent_docs = await preparer.post(
            f"/api/engagements/{eid}/documents", files=files, data={"signers": ["taxpayer", "none"]}
        )
        assert sent_docs.status_code == 200, sent_docs.text
        docs = {d["name"]: d for d in sent_docs.json()["documents"]}
        form = docs["Form 8879.pdf"]

        refused = await browser.post(f"/api/taxpayer/documents/{form['id']}/sign")
        assert refused.status_code == 409 and "signature first" in refused.json()["detail"]
        saved = await browser.put(
            "/api/taxpayer/signature", files={"image": ("sig.png", signature_png(), "image/png")}
        )
        assert saved.status_code == 200, saved.text

        signed = await browser.post(f"/api/taxpayer/documents/{form['id']}/sign")
        assert signed.status_code == 200, signed.text
        assert signed.json()["message"] == "Signed!"
        final = await wait_for_stage(preparer, eid, "completed")

        pdf = await preparer.get(f"/api/engagements/{eid}/documents/{form['id']}/download")
        assert pdf.headers["content-type"] == "application/pdf"
        reports = await asyncio.to_thread(
            pdfsign.read_signatures, pdf.content, [settings.data_dir / "signing" / "dev-ca-cert.pem"]
        )
        assert [(r.field_name, r.intact, r.valid, r.trusted) for r in reports] == [
            ("Taxpayer", True, True, True),
            ("PorticoSeal", True, True, True),  # the certification that closes the document
        ]
        assert final["documents"][0]["signed"] is True
        assert await latest(preparer, "completed", "ada@firm.test")


async def test_joint_return_needs_both_signatures(api, worker, settings) -> None:  # type: ignore[no-untyped-def]
    email = make_preparer(worker)
    async with api.client() as preparer, api.client() as tp_http, api.client() as sp_http:
        await login_preparer(preparer, email)
        eid = (
            await preparer.post(
                "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE}
            )
        ).json()["id"]
        for role, data in (("taxpayer", TAXPAYER), ("spouse", SPOUSE)):
            response = await preparer.post(
                f"/api/engagements/{eid}/invite", json={"role": role, "channel": "email"}
            )
            assert response.status_code == 200, response.text
        taxpayer, spouse = Person(tp_http, TAXPAYER), Person(sp_http, SPOUSE, "spouse")
        for person in (taxpayer, spouse):
            await asyncio.sleep(0.3)
            token = invite_token(await latest(preparer, "invite", person.data["email"]))
            await register_and_verify(person, token, preparer)

        files = [("files", ("Form 8879.pdf", make_pdf(1), "application/pdf"))]
        docs = await preparer.post(
            f"/api/engagements/{eid}/documents", files=files, data={"signers": ["both"]}
        )
        doc_id = docs.json()["documents"][0]["id"]
        for person in (taxpayer, spouse):
            await person.http.put(
                "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
            )
        assert (await taxpayer.http.post(f"/api/taxpayer/documents/{doc_id}/sign")).status_code == 200
        body = await wait_for_stage(preparer, eid, "signing")
        assert body["status"]["waiting_on"] == "spouse"
        assert (await spouse.http.post(f"/api/taxpayer/documents/{doc_id}/sign")).status_code == 200
        await wait_for_stage(preparer, eid, "completed")

        pdf = (await preparer.get(f"/api/engagements/{eid}/documents/{doc_id}/download")).content
        reports = await asyncio.to_thread(
            pdfsign.read_signatures, pdf, [settings.data_dir / "signing" / "dev-ca-cert.pem"]
        )
        assert [(r.field_name, r.intact, r.trusted) for r in reports] == [
            ("Taxpayer", True, True),
            ("Spouse", True, True),
            ("PorticoSeal", True, True),
        ]


async def test_double_click_on_sign_gives_one_signature(api, worker, settings) -> None:  # type: ignore[no-untyped-def]
    email = make_preparer(worker)
    async with api.client() as preparer, api.client() as browser:
        await login_preparer(preparer, email)
        eid = (await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})).json()[
            "id"
        ]
        await preparer.post(f"/api/engagements/{eid}/invite", json={"role": "taxpayer", "channel": "email"})
        await asyncio.sleep(0.3)
        await register_and_verify(
            Person(browser, TAXPAYER),
            invite_token(await latest(preparer, "invite", TAXPAYER["email"])),
            preparer,
        )
        files = [
            ("files", ("a.pdf", make_pdf(1), "application/pdf")),
            ("files", ("b.pdf", make_pdf(1), "application/pdf")),
        ]
        docs = (
            await preparer.post(
                f"/api/engagements/{eid}/documents", files=files, data={"signers": ["taxpayer", "taxpayer"]}
            )
        ).json()["documents"]
        await browser.put("/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")})
        first, second = await asyncio.gather(
            *(browser.post(f"/api/taxpayer/documents/{docs[0]['id']}/sign") for _ in range(2))
        )
        assert first.status_code == second.status_code == 200
        assert first.json()["sha256"] == second.json()["sha256"]
        again = await browser.post(f"/api/taxpayer/documents/{docs[0]['id']}/sign")
        assert again.status_code == 200 and again.json()["sha256"] == first.json()["sha256"]
        pdf = (await preparer.get(f"/api/engagements/{eid}/documents/{docs[0]['id']}/download")).content
        assert len(await asyncio.to_thread(pdfsign.read_signatures, pdf)) == 1
        with Session(worker.engine) as db:
            keys = db.exec(select(OutboxMessage.idempotency_key)).all()
            assert len(keys) == len(set(keys))


def _via_proxy(app: Any, client_ip: str) -> httpx.AsyncClient:
    """A browser behind the reverse proxy: the connection comes from the Docker bridge, the proxy names
    the client in X-Forwarded-For."""
    transport = httpx.ASGITransport(app=app, client=("172.18.0.1", 40000))
    headers = {"x-forwarded-for": client_ip, "sec-fetch-site": "same-origin", "user-agent": "pytest-portico"}
    return httpx.AsyncClient(transport=transport, base_url="https://portico.test", headers=headers)


async def test_item1_client_address_through_trusted_proxy_reaches_audit_and_signature_record(  # type: ignore[no-untyped-def]
    settings, dev_server, worker
) -> None:
    settings.forwarded_allow_ips = "127.0.0.1,172.16.0.0/12"  # as deploy/portico.env.example sets it
    app = create_app(settings, temporal=dev_server.client)
    async with (
        app.router.lifespan_context(app),
        _via_proxy(app, "198.51.100.20") as preparer,
        _via_proxy(app, "203.0.113.77") as browser,
    ):
        await login_preparer(preparer, make_preparer(worker))
        eid = (await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})).json()[
            "id"
        ]
        await preparer.post(f"/api/engagements/{eid}/invite", json={"role": "taxpayer", "channel": "email"})
        await wait_for_stage(preparer, eid, "invited")
        token = invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
        await register_and_verify(Person(browser, TAXPAYER), token, preparer)
        files = [("files", ("Form 8879.pdf", make_pdf(1, "Form 8879"), "application/pdf"))]
        sent = await preparer.post(
            f"/api/engagements/{eid}/documents", files=files, data={"signers": ["taxpayer"]}
        )
        assert sent.status_code == 200, sent.text
        doc = sent.json()["documents"][0]
        files = {"image": ("sig.png", signature_png(), "image/png")}
        assert (await browser.put("/api/taxpayer/signature", files=files)).status_code == 200
        signed = await browser.post(f"/api/taxpayer/documents/{doc['id']}/sign")
        assert signed.status_code == 200, signed.text
        # Someone not behind the proxy cannot forge an address the same way.
        transport = httpx.ASGITransport(app=app, client=("192.0.2.200", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://portico.test") as direct:
            await direct.post(
                "/api/taxpayer/login",
                json={"username": "x", "password": "y"},
                headers={"x-forwarded-for": "10.9.9.9"},
            )
    with Session(worker.engine) as db:
        signatures = db.exec(select(Signature)).all()
        assert [s.ip for s in signatures] == ["203.0.113.77"]
        entries = db.exec(select(AuditEntry)).all()
    taxpayer_ips = {e.ip for e in entries if e.actor.startswith("taxpayer")}
    assert taxpayer_ips == {"203.0.113.77", "192.0.2.200"}, taxpayer_ips  # the direct caller: as connected
    assert {e.ip for e in entries if e.actor.startswith("preparer")} == {"198.51.100.20"}
    assert "172.18.0.1" not in {e.ip for e in entries} and "10.9.9.9" not in {e.ip for e in entries}


def test_item1_production_trusting_only_loopback_warns_at_start_up(settings, caplog) -> None:  # type: ignore[no-untyped-def]
    settings.environment = "production"
    with caplog.at_level(logging.WARNING, logger="portico.app"):
        create_app(settings)
    assert "PORTICO_FORWARDED_ALLOW_IPS trusts only loopback" in caplog.text
    settings.forwarded_allow_ips = "172.16.0.0/12"
    assert warn_about_proxy_trust(settings) is None
