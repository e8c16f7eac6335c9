"""What a person sees when something is wrong: clear 4xx answers, and nothing changed or lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from journey import (
    PASSWORD,
    SPOUSE,
    TAXPAYER,
    Person,
    code_in,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    outbox,
    register_and_verify,
)
from pdfs import make_encrypted_pdf, make_pdf, make_png

from core.context import Resources

pytestmark = pytest.mark.e2e


async def invited(preparer: Any, worker: Resources, data: dict[str, str] = TAXPAYER) -> tuple[int, str]:
    """Logs the preparer in, creates an engagement and returns it with the taxpayer's invitation token."""
    await login_preparer(preparer, make_preparer(worker))
    created = await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": data})
    eid = created.json()["id"]
    response = await preparer.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
    assert response.status_code == 200, response.text
    for _ in range(50):
        if any(m["purpose"] == "invite" for m in await outbox(preparer)):
            break
        await asyncio.sleep(0.1)
    return eid, invite_token(await latest(preparer, "invite", data["email"]))


async def test_identity_mismatch_is_refused_without_saying_which_detail(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer, api.client() as browser:
        _eid, token = await invited(preparer, worker)
        person = Person(browser, TAXPAYER)
        for wrong in (
            {"ssn_last4": "0000"},
            {"last_name": "Smith"},
            {"email": "other@example.com", "phone": "+1 212 555 0100"},
        ):
            response = await browser.post(
                f"/api/invitations/{token}/register", json=person.registration(**wrong)
            )
            assert response.status_code == 422
            detail = response.json()["detail"]
            assert "don't match the tax return" in detail
            assert not any(
                word in detail.lower() for word in ("ssn", "social", "last name", "email", "phone")
            )
        # Email differs but the phone matches the return: that is enough.
        ok = await browser.post(
            f"/api/invitations/{token}/register", json=person.registration(email="new.address@example.com")
        )
        assert ok.status_code == 201, ok.text
        assert (await browser.get("/api/taxpayer/me")).json()["verified"] is False


async def test_five_mismatches_lock_the_invitation_until_a_new_link(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer, api.client() as browser:
        eid, token = await invited(preparer, worker)
        person = Person(browser, TAXPAYER)
        statuses = [
            (
                await browser.post(
                    f"/api/invitations/{token}/register", json=person.registration(ssn_last4="1111")
                )
            ).status_code
            for _ in range(5)
        ]
        assert statuses == [422, 422, 422, 422, 423]
        locked = await browser.post(f"/api/invitations/{token}/register", json=person.registration())
        assert locked.status_code == 409 and "locked" in locked.json()["detail"]
        assert (await browser.get(f"/api/invitations/{token}")).json()["state"] == "locked"
        body = (await preparer.get(f"/api/engagements/{eid}")).json()
        assert body["status"]["stage"] == "needs_attention"

        await preparer.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
        await asyncio.sleep(0.5)
        assert (await browser.get(f"/api/invitations/{token}")).json()["state"] == "replaced"
        new_token = invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
        assert new_token != token
        ok = await browser.post(f"/api/invitations/{new_token}/register", json=person.registration())
        assert ok.status_code == 201, ok.text


async def test_wrong_expired_and_reused_codes(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer, api.client() as browser:
        _eid, token = await invited(preparer, worker)
        assert (
            await browser.post(
                f"/api/invitations/{token}/register", json=Person(browser, TAXPAYER).registration()
            )
        ).status_code == 201
        assert (await browser.post("/api/taxpayer/verify", json={"code": "123456"})).status_code == 409
        sent = await browser.post("/api/taxpayer/code", json={"channel": "email"})
        assert sent.status_code == 200 and sent.json()["message"] == "Code sent to she*****com."
        code = code_in(await latest(preparer, "code", TAXPAYER["email"]))
        wrong = "000000" if code != "000000" else "111111"
        response = await browser.post("/api/taxpayer/verify", json={"code": wrong})
        assert response.status_code == 422 and "4 tries left" in response.json()["detail"]
        too_soon = await browser.post("/api/taxpayer/code", json={"channel": "email"})
        assert too_soon.status_code == 409 and "seconds" in too_soon.json()["detail"]
        not_digits = await browser.post("/api/taxpayer/verify", json={"code": "12ab56"})
        assert not_digits.status_code == 422
        assert (await browser.post("/api/taxpayer/verify", json={"code": code})).status_code == 200
        reused = await browser.post("/api/taxpayer/verify", json={"code": code})
        assert reused.status_code == 409 and "already verified" in reused.json()["detail"]


async def test_invite_only_to_the_contact_on_the_return(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer:
        eid, _token = await invited(preparer, worker)
        elsewhere = await preparer.post(
            f"/api/engagements/{eid}/invite", json={"channel": "email", "destination": "attacker@example.com"}
        )
        assert elsewhere.status_code == 409 and "contact on the return" in elsewhere.json()["detail"]
        same = await preparer.post(
            f"/api/engagements/{eid}/invite",
            json={"channel": "email", "destination": TAXPAYER["email"].upper()},
        )
        assert same.status_code == 200
        no_spouse = await preparer.post(
            f"/api/engagements/{eid}/invite", json={"role": "spouse", "channel": "email"}
        )
        assert no_spouse.status_code == 409 and "no spouse" in no_spouse.json()["detail"]


async def test_documents_wait_for_a_verified_portal_and_bad_pdfs_are_refused(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer:
        eid, _token = await invited(preparer, worker)
        early = await preparer.post(
            f"/api/engagements/{eid}/documents",
            files=[("files", ("8879.pdf", make_pdf(1), "application/pdf"))],
            data={"signers": ["taxpayer"]},
        )
        assert early.status_code == 409 and "verified" in early.json()["detail"]
        for name, content in (("photo.pdf", make_png()), ("locked.pdf", make_encrypted_pdf())):
            bad = await preparer.post(
                f"/api/engagements/{eid}/documents",
                files=[("files", (name, content, "application/pdf"))],
                data={"signers": ["taxpayer"]},
            )
            assert bad.status_code == 422 and bad.json()["detail"].startswith(name)
        nothing_left = list((worker.settings.data_dir / "documents").rglob("*"))
        assert [p for p in nothing_left if p.is_file()] == []


async def test_sending_the_same_documents_again_sends_them_once(api, worker) -> None:  # type: ignore[no-untyped-def]
    # A preparer whose send timed out (or who clicked twice) sends the same files again: the second
    # request joins the first instead of putting a second copy up for signature.
    async with api.client() as preparer, api.client("203.0.113.20") as browser:
        eid, token = await invited(preparer, worker)
        await register_and_verify(Person(browser, TAXPAYER), token, preparer)
        form = make_pdf(1)

        async def send(pdf: bytes, signers: str = "taxpayer") -> list[int]:
            sent = await preparer.post(
                f"/api/engagements/{eid}/documents",
                files=[("files", ("8879.pdf", pdf, "application/pdf"))],
                data={"signers": [signers]},
            )
            assert sent.status_code == 200, sent.text
            return [d["id"] for d in sent.json()["documents"]]

        first = await send(form)
        assert await send(form) == first
        stored = [p for p in (worker.settings.data_dir / "documents" / "sent").rglob("*") if p.is_file()]
        assert len(stored) == 1, "the repeat's copy of the file is not kept"
        # Different content, or the same file for other signers, is a new send.
        assert len(await send(make_pdf(2))) == len(first) + 1
        assert len(await send(form, "none")) == len(first) + 2


async def test_engagement_validation_and_firm_isolation(api, worker) -> None:  # type: ignore[no-untyped-def]
    other_email = make_preparer(worker, "grace@other.test", "Hopper & Co")
    async with api.client() as preparer, api.client() as other:
        eid, _ = await invited(preparer, worker)
        bad = await preparer.post(
            "/api/engagements",
            json={
                "tax_year": 2025,
                "taxpayer": {**TAXPAYER, "ssn": "000-12-3456", "phone": "12", "email": "not-an-email"},
            },
        )
        assert bad.status_code == 422
        fields = {tuple(err["loc"][-1:]) for err in bad.json()["detail"]}
        assert {("ssn",), ("phone",), ("email",)} <= fields
        await login_preparer(other, other_email)
        assert (await other.get(f"/api/engagements/{eid}")).status_code == 404
        assert (
            await other.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
        ).status_code == 404
        assert (await other.get("/api/engagements")).json()["total"] == 0
        assert (await api.client().get(f"/api/engagements/{eid}")).status_code == 401


async def test_cancelled_engagement_refuses_further_steps(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer, api.client() as browser:
        eid, token = await invited(preparer, worker, {**TAXPAYER, "email": SPOUSE["email"]})
        assert (
            await preparer.post(f"/api/engagements/{eid}/cancel", json={"reason": "client left"})
        ).status_code == 200
        response = await browser.post(
            f"/api/invitations/{token}/register",
            json=Person(browser, TAXPAYER).registration(email=SPOUSE["email"]),
        )
        assert response.status_code == 409
        assert "cancelled" in response.json()["detail"] or "closed" in response.json()["detail"]
        assert (await preparer.get(f"/api/engagements/{eid}")).json()["status"]["stage"] == "cancelled"


async def test_weak_password_and_taken_username(api, worker) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as preparer, api.client() as browser:
        _eid, token = await invited(preparer, worker)
        person = Person(browser, TAXPAYER)
        for weak in ("short", "password1", "qwertyuiop"):
            response = await browser.post(
                f"/api/invitations/{token}/register", json=person.registration(password=weak)
            )
            assert response.status_code == 422, weak
        long_passphrase = "a" * 20 + " plain lowercase words are fine " + "z" * 20
        ok = await browser.post(
            f"/api/invitations/{token}/register", json=person.registration(password=long_passphrase)
        )
        assert ok.status_code == 201, ok.text
        login = await api.client().post(
            "/api/taxpayer/login", json={"username": person.username, "password": PASSWORD}
        )
        assert login.status_code == 401
