"""Firm administrators: only they invite, deactivate and promote preparers and change the firm's settings
and message wording, through the JSON API and the pages alike; everyone else reads them. A firm never loses
its last administrator. `portico create-preparer` makes a firm's first preparer its administrator. On
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from preparer_steps import PASSWORD, Authenticator, api_login, csrf_of, enrol_directly, page_login
from sqlmodel import Session, col, select
from starlette.requests import Request
from typer.testing import CliRunner

from core.config import Settings
from core.context import Resources
from core.models import (
    AuditEntry,
    FirmSettings,
    MessageTemplate,
    OutboxMessage,
    Preparer,
    PreparerInvite,
    SignatureLabel,
)
from portico import cli
from services import ServiceError
from services import preparer_colleagues as people
from services import preparer_settings as firm_admin

SCHEDULE = {
    "time_zone": "America/Chicago",
    "invite_reminder_days": 3,
    "invite_reminders_max": 2,
    "invite_expires_days": 10,
    "verify_reminder_hours": 2,
    "signature_reminder_first_days": 1,
    "signature_reminder_interval_days": 2,
    "signature_reminders_max": 5,
    "quiet_hours_start": 20,
    "quiet_hours_end": 9,
}
WORDING = {"body": "{firm_name} code {code}"}


@pytest.fixture
def res(db_settings: Settings) -> Iterator[Resources]:
    resources = Resources.from_settings(db_settings)
    yield resources
    resources.engine.dispose()


def _preparer(res: Resources, email: str) -> Preparer:
    with Session(res.engine) as db:
        return db.exec(select(Preparer).where(Preparer.email == email)).one()


def _audit(res: Resources) -> list[tuple[str, str]]:
    with Session(res.engine) as db:
        rows = db.exec(select(AuditEntry).where(col(AuditEntry.action).startswith("preparer.admin_"))).all()
        return [(row.action, row.actor) for row in rows]


def _nothing_changed(res: Resources) -> None:
    with Session(res.engine) as db:
        assert db.exec(select(FirmSettings)).first() is None
        assert db.exec(select(MessageTemplate)).first() is None
        assert db.exec(select(PreparerInvite)).first() is None
        assert db.exec(select(SignatureLabel)).first() is None
        by_email = {p.email: (p.active, p.is_admin) for p in db.exec(select(Preparer))}
    assert by_email == {
        "ada@lovelace.test": (True, True),
        "bob@lovelace.test": (True, False),
        "carol@lovelace.test": (True, False),
    }


def _firm(res: Resources) -> dict[str, Authenticator]:
    """Lovelace Tax: Ada (its first preparer, so its administrator), Bob and Carol (not)."""
    return {
        name: Authenticator(enrol_directly(res, f"{name}@lovelace.test", "Lovelace Tax", name.title()))
        for name in ("ada", "bob", "carol")
    }


# ---- the command line ------------------------------------------------------------------------------------


def test_create_preparer_makes_the_firms_first_preparer_its_administrator(
    res: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: res.settings)
    runner = CliRunner()

    def create(email: str, firm: str, *flags: str) -> str:
        args = ["create-preparer", "--email", email, "--name", email.split("@")[0], "--firm", firm]
        result = runner.invoke(cli.app, [*args, "--password", PASSWORD, *flags])
        assert result.exit_code == 0, result.output
        return result.output

    assert "(an administrator)" in create("ada@lovelace.test", "Lovelace Tax")
    assert "(not an administrator)" in create("bob@lovelace.test", "Lovelace Tax")
    assert "(an administrator)" in create("cyd@lovelace.test", "Lovelace Tax", "--admin")
    assert "(an administrator)" in create("eve@other.test", "Other Firm")
    admins = {e: _preparer(res, e).is_admin for e in ("ada@lovelace.test", "bob@lovelace.test")}
    admins.update({e: _preparer(res, e).is_admin for e in ("cyd@lovelace.test", "eve@other.test")})
    assert admins == {
        "ada@lovelace.test": True,
        "bob@lovelace.test": False,
        "cyd@lovelace.test": True,
        "eve@other.test": True,
    }

    cli.ensure_demo_preparer(res)
    assert _preparer(res, cli.DEMO_EMAIL).is_admin


# ---- the rules ---------------------------------------------------------------------------------------


def _request() -> Request:
    return Request({"type": "http", "headers": [(b"user-agent", b"pytest")], "client": ("203.0.113.5", 1)})


def test_a_firm_keeps_its_last_administrator_and_every_change_is_audited(res: Resources) -> None:
    _firm(res)
    ada, bob = _preparer(res, "ada@lovelace.test"), _preparer(res, "bob@lovelace.test")
    with Session(res.engine, expire_on_commit=False) as db:
        with pytest.raises(ServiceError) as refused:
            people.set_admin(db, _request(), ada, ada.id or 0, False)
        assert (refused.value.status_code, refused.value.message) == (409, people.LAST_ADMIN)
        assert _preparer(res, "ada@lovelace.test").is_admin  # rolled back, not half-saved

        people.set_admin(db, _request(), ada, bob.id or 0, True)
        people.set_admin(db, _request(), ada, ada.id or 0, False)  # Bob is there now: allowed
        ada, bob = _preparer(res, "ada@lovelace.test"), _preparer(res, "bob@lovelace.test")
        with pytest.raises(ServiceError) as refused:
            people.set_admin(db, _request(), bob, bob.id or 0, False)
        assert (refused.value.status_code, refused.value.message) == (409, people.LAST_ADMIN)
        with pytest.raises(ServiceError) as refused:
            people.set_active(db, _request(), bob, bob.id or 0, False)
        assert refused.value.status_code == 409
        # Digits of other scripts are no number: a field error, not a server error.
        for odd in ("²", "١٢"):
            _settings, errors = firm_admin.save_firm_settings(
                db, _request(), bob, {"invite_reminder_days": odd}
            )
            assert "whole number" in errors["invite_reminder_days"], (odd, errors)
        # Ada is no administrator any more: every change is refused her.
        for change in (
            lambda: people.set_admin(db, _request(), ada, ada.id or 0, True),
            lambda: people.set_active(db, _request(), ada, bob.id or 0, False),
            lambda: people.reset_colleague_mfa(db, _request(), ada, bob.id or 0),
            lambda: firm_admin.save_firm_settings(db, _request(), ada, {}),
            lambda: firm_admin.save_template(db, _request(), ada, "code", "sms", "", WORDING["body"]),
            lambda: firm_admin.reset_template(db, _request(), ada, "code", "sms"),
        ):
            with pytest.raises(ServiceError) as refused:
                change()
            assert (refused.value.status_code, refused.value.message) == (403, firm_admin.ADMIN_ONLY)
    assert (_preparer(res, "ada@lovelace.test").is_admin, _preparer(res, "bob@lovelace.test").is_admin) == (
        False,
        True,
    )
    assert _audit(res) == [
        ("preparer.admin_granted", f"preparer:{ada.id}"),
        ("preparer.admin_revoked", f"preparer:{ada.id}"),
    ]


# ---- the JSON API ------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_the_api_lets_only_administrators_change_the_firm(res: Resources, api: Any) -> None:
    phones = _firm(res)
    carol = _preparer(res, "carol@lovelace.test")
    async with api.client() as admin, api.client() as member:
        await api_login(member, "bob@lovelace.test", phones["bob"])
        # Bob reads everything…
        assert (await member.get("/api/firm/settings")).json()["quiet_hours_start"] == 21
        listed = {p["email"]: p["is_admin"] for p in (await member.get("/api/firm/preparers")).json()}
        assert listed == {"ada@lovelace.test": True, "bob@lovelace.test": False, "carol@lovelace.test": False}
        assert (await member.get("/api/firm/templates/code/sms")).json()["custom"] is False
        # …and changes nothing.
        bob_id = _preparer(res, "bob@lovelace.test").id
        attempts: list[tuple[str, str, dict[str, Any]]] = [
            ("PUT", "/api/firm/settings", {"json": SCHEDULE}),
            ("PUT", "/api/firm/templates/code/sms", {"json": WORDING}),
            ("DELETE", "/api/firm/templates/code/sms", {}),
            ("POST", "/api/firm/preparers/invite", {"json": {"name": "Dan", "email": "dan@lovelace.test"}}),
            ("PATCH", f"/api/firm/preparers/{carol.id}", {"json": {"active": False}}),
            ("PATCH", f"/api/firm/preparers/{carol.id}", {"json": {"is_admin": True}}),
            ("PATCH", f"/api/firm/preparers/{bob_id}", {"json": {"is_admin": True}}),
        ]
        for method, url, kwargs in attempts:
            response = await member.request(method, url, **kwargs)
            assert response.status_code == 403, (method, url, response.text)
            assert response.json()["detail"] == firm_admin.ADMIN_ONLY
        _nothing_changed(res)

        await api_login(admin, "ada@lovelace.test", phones["ada"])
        saved = await admin.put("/api/firm/settings", json={**SCHEDULE, "quiet_hours_end": 25})
        assert saved.status_code == 422 and "from 0 to 23" in saved.json()["detail"]
        saved = await admin.put("/api/firm/settings", json=SCHEDULE)
        assert saved.status_code == 200 and saved.json()["time_zone"] == "America/Chicago", saved.text
        assert (await admin.put("/api/firm/templates/code/sms", json=WORDING)).json()["custom"] is True
        invited = await admin.post(
            "/api/firm/preparers/invite", json={"name": "Dan", "email": "dan@example.com"}
        )
        assert invited.status_code == 201, invited.text
        both = await admin.patch(f"/api/firm/preparers/{carol.id}", json={"active": False, "is_admin": True})
        assert both.status_code == 422  # one change at a time
        # The last administrator can't step down; once Bob is one too, she can.
        ada_id = _preparer(res, "ada@lovelace.test").id
        last = await admin.patch(f"/api/firm/preparers/{ada_id}", json={"is_admin": False})
        assert last.status_code == 409 and last.json()["detail"] == people.LAST_ADMIN
        promoted = await admin.patch(f"/api/firm/preparers/{bob_id}", json={"is_admin": True})
        assert promoted.status_code == 200 and promoted.json()["is_admin"] is True
        assert (
            await admin.patch(f"/api/firm/preparers/{ada_id}", json={"is_admin": False})
        ).status_code == 200
        assert (await admin.put("/api/firm/settings", json=SCHEDULE)).status_code == 403  # at once

        # Bob, administrator now on his very next request, can't leave the firm without one either.
        alone = await member.patch(f"/api/firm/preparers/{bob_id}", json={"is_admin": False})
        assert alone.status_code == 409 and alone.json()["detail"] == people.LAST_ADMIN
        off = await member.patch(f"/api/firm/preparers/{carol.id}", json={"active": False})
        assert off.status_code == 200 and off.json()["active"] is False

    with Session(res.engine) as db:
        actions = {
            (row.action, row.actor)
            for row in db.exec(select(AuditEntry).where(col(AuditEntry.firm_id).is_not(None)))
        }
    for action, who in (
        ("firm.settings_changed", ada_id),
        ("firm.template_saved", ada_id),
        ("preparer.invited", ada_id),
        ("preparer.admin_granted", ada_id),
        ("preparer.admin_revoked", ada_id),
        ("preparer.deactivated", bob_id),
    ):
        assert (action, f"preparer:{who}") in actions, action
    # Nothing Bob tried while he wasn't an administrator left a change behind in his name.
    bobs = {a for a, actor in actions if actor == f"preparer:{bob_id}"}
    assert bobs == {"preparer.login", "preparer.deactivated"}, bobs


# ---- the pages ---------------------------------------------------------------------------------------


def _text(response: httpx.Response) -> str:
    """The page's HTML with its line breaks and indents folded into single spaces."""
    return " ".join(response.text.split())


async def _post(http: httpx.AsyncClient, token: str, url: str, data: dict[str, str] | None = None) -> Any:
    return await http.post(url, data={**(data or {}), "csrf_token": token})


@pytest.mark.e2e
async def test_the_pages_show_members_the_settings_and_refuse_their_changes(res: Resources, api: Any) -> None:
    phones = _firm(res)
    ada, carol = _preparer(res, "ada@lovelace.test"), _preparer(res, "carol@lovelace.test")
    async with api.client() as admin, api.client() as member:
        await page_login(member, "bob@lovelace.test", phones["bob"])
        page = await member.get("/preparer/settings")
        assert page.status_code == 200
        assert "only its administrators can invite or deactivate" in _text(page)
        assert "Your firm's administrators: Ada." in _text(page)
        controls = (
            "Send invitation",
            "Save reminders",
            "/deactivate",
            "/make-admin",
            "/reset-mfa",
            "Add label",
        )
        for control in controls:
            assert control not in page.text, control
        assert "America/New_York" in page.text  # the settings themselves are there to read
        token = csrf_of(page.text)
        refusals = [
            ("/preparer/settings/schedule", {k: str(v) for k, v in SCHEDULE.items()}),
            ("/preparer/settings/preparers/invite", {"name": "Dan", "email": "dan@lovelace.test"}),
            ("/preparer/settings/signature-labels", {"role": "taxpayer", "text": "Client signature"}),
            *[
                (f"/preparer/settings/preparers/{who}/{action}", {})
                for who, action in (
                    (carol.id, "deactivate"),
                    (carol.id, "make-admin"),
                    (ada.id, "remove-admin"),
                    (ada.id, "reset-mfa"),
                )
            ],
        ]
        for url, data in refusals:
            response = await _post(member, token, url, data)
            assert response.status_code == 403, (url, response.status_code)
            assert firm_admin.ADMIN_ONLY.replace("'", "&#39;") in response.text, url
        editor = await member.get("/preparer/settings/templates/code/sms")
        assert editor.status_code == 200 and "Save template" not in editor.text
        assert "Only your firm's administrators can change it." in editor.text
        for action in ("save", "reset"):
            response = await _post(
                member, token, "/preparer/settings/templates/code/sms", {**WORDING, "action": action}
            )
            assert response.status_code == 403 and "Only your firm&#39;s administrators" in response.text
        _nothing_changed(res)

        await page_login(admin, "ada@lovelace.test", phones["ada"])
        page = await admin.get("/preparer/settings")
        assert "Send invitation" in page.text and "The firm's only administrator" in page.text
        assert "Stop being an administrator" not in page.text
        token = csrf_of(page.text)
        last = await _post(admin, token, f"/preparer/settings/preparers/{ada.id}/remove-admin")
        assert last.status_code == 409 and "needs at least one administrator" in last.text
        made = await _post(admin, token, f"/preparer/settings/preparers/{carol.id}/make-admin")
        assert made.status_code == 303 and made.headers["location"].endswith("m=admin-granted#preparers")
        page = await admin.get("/preparer/settings")
        assert "Stop being an administrator" in page.text and "Remove administrator" in page.text
        assert (
            await _post(admin, token, f"/preparer/settings/preparers/{ada.id}/remove-admin")
        ).status_code == 303
        assert (
            _preparer(res, "carol@lovelace.test").is_admin
            and not _preparer(res, "ada@lovelace.test").is_admin
        )
        assert _audit(res) == [
            ("preparer.admin_granted", f"preparer:{ada.id}"),
            ("preparer.admin_revoked", f"preparer:{ada.id}"),
        ]
        # No longer an administrator: the page says so at once, and refuses her.
        page = await admin.get("/preparer/settings")
        assert "Your firm's administrators: Carol." in _text(page) and "Send invitation" not in page.text
        again = await _post(admin, token, f"/preparer/settings/preparers/{ada.id}/make-admin")
        assert again.status_code == 403


async def test_item14_inviting_never_reveals_an_email_of_another_firm(res: Resources, api: Any) -> None:
    """The answer to inviting someone who already logs in at another firm is the answer to inviting a
    stranger: the person gets an email saying so (no usable link), the administrator learns nothing."""
    phones = _firm(res)
    enrol_directly(res, "eve@other-firm.example.com", "Other Firm", "Eve Other")
    enrol_directly(res, "dora@lovelace.example.com", "Lovelace Tax", "Dora")
    async with api.client() as admin:
        await api_login(admin, "ada@lovelace.test", phones["ada"])
        answers = [
            await admin.post("/api/firm/preparers/invite", json={"name": name, "email": email})
            for name, email in (("Eve", "eve@other-firm.example.com"), ("Stranger", "stranger@example.com"))
        ]
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        assert [a.json()["message"] for a in answers] == [
            "Invitation sent to eve@other-firm.example.com.",
            "Invitation sent to stranger@example.com.",
        ]
        listed = (await admin.get("/api/firm/preparers")).json()
        assert "eve@other-firm.example.com" not in {p["email"] for p in listed}
        # A colleague of the same firm: that much the administrator knows already.
        same = await admin.post(
            "/api/firm/preparers/invite", json={"name": "Dora", "email": "dora@lovelace.example.com"}
        )
        assert same.status_code == 422 and "of your firm" in same.text
    with Session(res.engine) as db:
        told = db.exec(
            select(OutboxMessage).where(OutboxMessage.destination == "eve@other-firm.example.com")
        ).one()
        body = res.cipher.decrypt_text(told.body_encrypted, "outbox")
        assert "/preparer/join/" not in body and "another firm" in body
        assert (
            _preparer(res, "eve@other-firm.example.com").firm_id
            != _preparer(res, "ada@lovelace.test").firm_id
        )
