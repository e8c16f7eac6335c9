"""Steps for the preparer's side of the client hub: a completed engagement through the real stack (invite,
register, verify, send the 8879, sign), and page posts with a browser's CSRF token."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
from invitation_steps import invite_by_email
from journey import Person, register_and_verify, signature_png
from pdfs import make_pdf

from core.context import Resources
from services import cookies
from web.security import _sign


async def wait_for_stage(
    http: httpx.AsyncClient, engagement_id: int, stage: str, timeout: float = 30
) -> None:
    body: dict[str, Any] = {}
    for _ in range(int(timeout / 0.1)):
        body = (await http.get(f"/api/engagements/{engagement_id}")).json()
        if body["status"]["stage"] == stage:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement stayed at {body['status']['stage']}, expected {stage}")


async def completed_engagement(
    preparer: httpx.AsyncClient,
    client: httpx.AsyncClient,
    taxpayer: dict[str, str],
    *,
    tax_year: int = 2025,
    spouse: dict[str, str] | None = None,
) -> int:
    """An engagement the taxpayer registered for, verified, and signed (their 8879): completed. A spouse is
    on the return but need not sign the document sent."""
    if spouse is None:
        engagement_id, token = await invite_by_email(preparer, taxpayer, tax_year)
    else:
        created = await preparer.post(
            "/api/engagements", json={"tax_year": tax_year, "taxpayer": taxpayer, "spouse": spouse}
        )
        assert created.status_code == 201, created.text
        engagement_id = created.json()["id"]
        sent = await preparer.post(f"/api/engagements/{engagement_id}/invite", json={"channel": "email"})
        assert sent.status_code == 200, sent.text
        from journey import invite_token, latest

        token = invite_token(await latest(preparer, "invite", taxpayer["email"]))
    await register_and_verify(Person(client, taxpayer), token, preparer)
    files = [("files", ("Form 8879.pdf", make_pdf(1, "Form 8879"), "application/pdf"))]
    docs = await preparer.post(
        f"/api/engagements/{engagement_id}/documents", files=files, data={"signers": ["taxpayer"]}
    )
    assert docs.status_code == 200, docs.text
    saved = await client.put(
        "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
    )
    assert saved.status_code == 200, saved.text
    signed = await client.post(f"/api/taxpayer/documents/{docs.json()['documents'][0]['id']}/sign")
    assert signed.status_code == 200, signed.text
    await wait_for_stage(preparer, engagement_id, "completed")
    return engagement_id


def with_csrf(http: httpx.AsyncClient, resources: Resources) -> None:
    """A browser's own valid CSRF token, so the pages' posts are accepted."""
    secret = secrets.token_urlsafe(32)
    http.cookies.set(cookies.name(resources, cookies.CSRF), secret)
    http.headers["x-csrf-token"] = _sign(resources, secret)
