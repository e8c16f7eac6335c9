"""Authorisation, route by route: every route with an id is tried by people who must not get in.

The attackers: a taxpayer of another engagement (another firm), the spouse on the victim's joint return where
the route is about the taxpayer's own document and the document doesn't need the spouse, a preparer of
another firm, and nobody (no session). Every attempt must be refused (401/403/404, or a page's redirect to a
login page) and no answer may carry the victim's data. `ROUTES` names how to call each route of the app;
a route missing from it fails `test_every_route_has_authz_coverage` ("new route without authz coverage").
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import _EffectiveRouteContext, _IncludedRouter
from journey import (
    PASSWORD,
    SPOUSE,
    TAXPAYER,
    Person,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    outbox,
    register_and_verify,
)
from pdfs import make_pdf
from preparer_steps import Authenticator, add_preparer, api_login, enrol_directly
from starlette.routing import BaseRoute, Mount
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from portico.app import create_app
from services import cookies
from web.security import _sign
from worker.main import build_worker

pytestmark = pytest.mark.e2e

MALLORY = {
    "first_name": "Mallory",
    "last_name": "Attacker",
    "ssn": "345-67-8901",
    "email": "mallory@example.net",
    "phone": "+1 212 555 0123",
    "time_zone": "America/New_York",
}
RETURN_DOC = "victim-return-8879.pdf"  # needs the taxpayer only
JOINT_DOC = "victim-joint-1040.pdf"  # needs both
UPLOAD_DOC = "victim-upload-w2.pdf"
CHAT = "victim-chat-secret-7781"


# ---- the route table -----------------------------------------------------------------------------------

Ids = dict[str, Any]
Call = tuple[str, str, dict[str, Any]]  # method, url, httpx keyword arguments


@dataclass(frozen=True)
class Spec:
    """How to call a route against the victim's objects; several calls when it takes several kinds of id."""

    calls: Callable[[Ids], list[Call]]
    spouse: bool = False  # the spouse is tried too (taxpayer's own document that doesn't need the spouse)
    filter_ok: bool = False  # the id is a filter: a 200 with only the caller's own data is a refusal too
    also_refused: tuple[int, ...] = ()  # further statuses that refuse here (say why at the entry)


@dataclass(frozen=True)
class Exempt:
    reason: str


def _pdf_files(name: str = "attack.pdf") -> dict[str, Any]:
    return {"files": [("files", (name, make_pdf(1), "application/pdf"))]}


def _one_file(field: str) -> dict[str, Any]:
    """One PDF under `field`: a corrected copy, or the scan of a paper signature."""
    return {"files": [(field, ("attack.pdf", make_pdf(1), "application/pdf"))]}


def _docs(path: str, method: str = "GET", **kw: Any) -> Callable[[Ids], list[Call]]:
    """The route once per victim document (one the preparer sent, one the taxpayer uploaded)."""
    return lambda ids: [
        (method, path.format(engagement_id=ids["engagement"], document_id=d), dict(kw))
        for d in (ids["return_doc"], ids["upload_doc"])
    ]


def _one(path: str, method: str = "GET", **kw: Any) -> Callable[[Ids], list[Call]]:
    return lambda ids: [(method, path.format(**_fmt(ids)), dict(kw))]


def _fmt(ids: Ids) -> dict[str, Any]:
    return {
        "engagement_id": ids["engagement"],
        "document_id": ids["return_doc"],
        "colleague_id": ids["colleague"],
        "token": ids["forged_token"],
    }


def _notification(method: str, path: str) -> Callable[[Ids], list[Call]]:
    """The route on the victim's notification (the bell's, issue 15)."""
    return lambda ids: [(method, path.format(notification_id=ids["notification"]), {})]


def _sign_return(path: str, **kw: Any) -> Callable[[Ids], list[Call]]:
    return lambda ids: [("POST", path.format(document_id=ids["return_doc"]), dict(kw))]


# Account changes act on the caller's own account only (no id to swap): every attacker is tried with a
# password that isn't theirs, and afterwards the victim's password, email and phone must be unchanged.
NOT_MY_PASSWORD = "the victim's password, guessed"
ACCOUNT_PASSWORD = {"current_password": NOT_MY_PASSWORD, "new_password": "taken over by mallory 2026"}
ACCOUNT_CODE = {"kind": "email", "value": "mallory.inbox@example.net", "current_password": NOT_MY_PASSWORD}
ACCOUNT_CONFIRM = {"kind": "email", "value": "mallory.inbox@example.net", "code": "123456"}
NO_CHANGE_STARTED = (422,)  # a code for a change this session never started: "Ask for a code first."


def _own(method: str, path: str, **kw: Any) -> Callable[[Ids], list[Call]]:
    return lambda ids: [(method, path, dict(kw))]


def _account_changes(prefix: str, send_as: str) -> dict[tuple[str, str], Spec | Exempt]:
    """The JSON API's or the Account page's three changes (`send_as`: "json" or "data"), tried alike."""
    return {
        ("POST", f"{prefix}/password"): Spec(
            _own("POST", f"{prefix}/password", **{send_as: ACCOUNT_PASSWORD}), spouse=True
        ),
        ("POST", f"{prefix}/contact/code"): Spec(
            _own("POST", f"{prefix}/contact/code", **{send_as: ACCOUNT_CODE}), spouse=True
        ),
        ("POST", f"{prefix}/contact"): Spec(
            _own("POST", f"{prefix}/contact", **{send_as: ACCOUNT_CONFIRM}),
            spouse=True,
            also_refused=NO_CHANGE_STARTED,
        ),
    }


E = "/api/engagements/{engagement_id}"
P = "/preparer/engagements/{engagement_id}"
NO_ID = "no path or query id: acts on the caller's own session only"
RESET = (
    "no path or query id: names an account only by what was typed (the same answer for any), and acts on "
    "the caller's own reset cookie only"
)
TOKEN = "token is a bearer capability; tried with a forged token"
TEMPLATE_KIND = "purpose/channel name a template kind of the caller's own firm, not another firm's object"

# ---- security settings (sign-in by email, sign-in emails, sessions, remembered browsers) -------------------
# Their ids are the victim's own: an email row's id, and the references of a session and a remembered
# browser. Looked up (the browser remembered first) when the routes are tried; the victim's rows must be
# there afterwards and no security change audited (`_assert_victim_security_unchanged`).
SECURITY_ADD = {"value": "mallory.inbox@example.net", "current_password": NOT_MY_PASSWORD}
SECURITY_CONFIRM = {"value": "mallory.inbox@example.net", "code": "123456"}
SECURITY_API_ADD = {"email": "mallory.inbox@example.net", "current_password": NOT_MY_PASSWORD}
# The attacker's own wrong passwords (every change route before tries one) reach the login throttle: a 429.
OWN_THROTTLE = (429,)
SECURITY_ACTIONS = ("email_added", "email_removed", "session_ended", "device_forgotten")


def _victim_security(ids: Ids) -> dict[str, Any]:
    if "security" not in ids:
        from datetime import timedelta

        from sqlmodel import Session, select

        from core.account_emails import emails_of
        from core.models import TaxpayerAccount, TrustedDevice, WebSession, utcnow
        from services.security_settings import reference

        with Session(ids["resources"].engine) as db:
            victim = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == "shelby")).one()
            email_id = emails_of(db, victim)[0].id
            until = utcnow() + timedelta(days=30)
            device = TrustedDevice(token_hash="victim-browser", account_id=victim.id or 0, expires_at=until)
            db.add(device)
            db.commit()
            session = db.exec(
                select(WebSession).where(WebSession.kind == "taxpayer", WebSession.subject_id == victim.id)
            ).first()
            assert session is not None
            ids["security"] = {
                "email": email_id,
                "session": reference("session", session.id_hash),
                "device": reference("device", device.token_hash),
            }
    return dict(ids["security"])


def _security(method: str, path: str, **kw: Any) -> Callable[[Ids], list[Call]]:
    return lambda ids: [(method, path.format(**_victim_security(ids)), dict(kw))]


def _assert_victim_security_unchanged(resources: Resources) -> None:
    from sqlmodel import Session, col, select

    from core.models import AccountEmail, AuditEntry, TaxpayerAccount, TrustedDevice, WebSession

    with Session(resources.engine) as db:
        victim = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == "shelby")).one()
        assert db.exec(select(AccountEmail).where(AccountEmail.account_id == victim.id)).all()
        assert db.exec(select(TrustedDevice).where(TrustedDevice.account_id == victim.id)).all()
        assert db.exec(select(WebSession).where(WebSession.subject_id == victim.id)).all()
        actions = [f"account.{a}" for a in SECURITY_ACTIONS]
        done = db.exec(select(AuditEntry.action).where(col(AuditEntry.action).in_(actions))).all()
        assert done == [], done


SECURITY_ROUTES: dict[tuple[str, str], Spec | Exempt] = {
    ("POST", "/portal/login/continue"): Exempt(NO_ID),
    ("GET", "/api/taxpayer/account/security"): Spec(
        _own("GET", "/api/taxpayer/account/security"),
        spouse=True,
        filter_ok=True,  # one's own only
    ),
    ("POST", "/api/taxpayer/account/emails/code"): Spec(
        _own("POST", "/api/taxpayer/account/emails/code", json={**SECURITY_API_ADD}),
        spouse=True,
        also_refused=OWN_THROTTLE,
    ),
    ("POST", "/api/taxpayer/account/emails"): Spec(
        _own(
            "POST",
            "/api/taxpayer/account/emails",
            json={"email": "mallory.inbox@example.net", "code": "123456"},
        ),
        spouse=True,
        also_refused=NO_CHANGE_STARTED,
    ),
    ("DELETE", "/api/taxpayer/account/emails/{email_id}"): Spec(
        _security("DELETE", "/api/taxpayer/account/emails/{email}"), spouse=True
    ),
    ("DELETE", "/api/taxpayer/account/sessions/{ref}"): Spec(
        _security("DELETE", "/api/taxpayer/account/sessions/{session}"), spouse=True
    ),
    ("DELETE", "/api/taxpayer/account/devices/{ref}"): Spec(
        _security("DELETE", "/api/taxpayer/account/devices/{device}"), spouse=True
    ),
    ("POST", "/portal/account/emails/code"): Spec(
        _own("POST", "/portal/account/emails/code", data=SECURITY_ADD), spouse=True, also_refused=OWN_THROTTLE
    ),
    ("POST", "/portal/account/emails"): Spec(
        _own("POST", "/portal/account/emails", data=SECURITY_CONFIRM),
        spouse=True,
        also_refused=NO_CHANGE_STARTED,
    ),
    ("POST", "/portal/account/emails/{email_id}/remove"): Spec(
        _security("POST", "/portal/account/emails/{email}/remove"), spouse=True
    ),
    ("POST", "/portal/account/sessions/{ref}/end"): Spec(
        _security("POST", "/portal/account/sessions/{session}/end"), spouse=True
    ),
    ("POST", "/portal/account/devices/{ref}/forget"): Spec(
        _security("POST", "/portal/account/devices/{device}/forget"), spouse=True
    ),
}


ROUTES: dict[tuple[str, str], Spec | Exempt] = {
    # --- framework and static
    ("GET", "/openapi.json"): Exempt("schema, public"),
    ("GET", "/docs"): Exempt("schema viewer, public"),
    ("GET", "/docs/oauth2-redirect"): Exempt("schema viewer, public"),
    ("GET", "/redoc"): Exempt("schema viewer, public"),
    ("MOUNT", "/static"): Exempt("static assets, public"),
    ("GET", "/healthz"): Exempt("health check, public"),
    ("GET", "/readyz"): Exempt("readiness check, public; says only ok/failed per check"),
    ("GET", "/"): Exempt("landing page, public; links to the portal and the workspace"),
    ("GET", "/api/dev/outbox"): Exempt("development/test only; not mounted in production"),
    ("GET", "/dev/outbox"): Exempt("development/test only; not mounted in production"),
    # --- preparer API
    ("POST", "/api/preparer/login"): Exempt(NO_ID),
    ("POST", "/api/preparer/login/code"): Exempt(NO_ID),
    ("POST", "/api/preparer/logout"): Exempt(NO_ID),
    ("POST", "/api/preparer/mfa/enrol"): Exempt(NO_ID),
    ("POST", "/api/preparer/mfa/confirm"): Exempt(NO_ID),
    ("POST", "/api/engagements"): Exempt(NO_ID),
    ("GET", "/api/firm/templates/{purpose}/{channel}"): Exempt(TEMPLATE_KIND),
    ("PUT", "/api/firm/templates/{purpose}/{channel}"): Exempt(TEMPLATE_KIND),
    ("DELETE", "/api/firm/templates/{purpose}/{channel}"): Exempt(TEMPLATE_KIND),
    ("GET", "/api/firm/settings"): Exempt(NO_ID),
    ("PUT", "/api/firm/settings"): Exempt(NO_ID),
    ("GET", "/api/firm/preparers"): Exempt(NO_ID),
    ("POST", "/api/firm/preparers/invite"): Exempt(NO_ID),
    ("PATCH", "/api/firm/preparers/{preparer_id}"): Spec(
        lambda ids: [
            ("PATCH", f"/api/firm/preparers/{ids['colleague']}", {"json": change})
            for change in ({"active": False}, {"is_admin": True})
        ]
    ),
    ("GET", "/api/engagements"): Spec(
        lambda ids: [("GET", "/api/engagements", {"params": {"preparer_id": ids["victim_preparer"]}})],
        filter_ok=True,
    ),
    ("GET", E): Spec(_one(E)),
    ("POST", E + "/invite"): Spec(_one(E + "/invite", "POST", json={"channel": "email"})),
    ("POST", E + "/documents"): Spec(
        _one(E + "/documents", "POST", data={"signers": ["taxpayer"]}, **_pdf_files())
    ),
    ("GET", E + "/documents/{document_id}/download"): Spec(_docs(E + "/documents/{document_id}/download")),
    ("POST", E + "/documents/{document_id}/replace"): Spec(
        _one(E + "/documents/{document_id}/replace", "POST", data={"signer": "taxpayer"}, **_one_file("file"))
    ),
    ("POST", E + "/documents/{document_id}/paper"): Spec(
        _one(E + "/documents/{document_id}/paper", "POST", data={"roles": ["taxpayer"]}, **_one_file("scan"))
    ),
    ("POST", E + "/cancel"): Spec(_one(E + "/cancel", "POST", json={"reason": "attack"})),
    ("POST", E + "/unlock"): Spec(_one(E + "/unlock", "POST", json={"role": "taxpayer"})),
    ("GET", E + "/retention"): Spec(_one(E + "/retention")),
    ("PUT", E + "/legal-hold"): Spec(_one(E + "/legal-hold", "PUT", json={"reason": "attack"})),
    ("DELETE", E + "/legal-hold"): Spec(_one(E + "/legal-hold", "DELETE")),
    ("GET", "/api/firm/retention"): Exempt(NO_ID),
    ("PUT", "/api/firm/retention"): Exempt(NO_ID),
    ("PUT", E + "/signers/{role}/time-zone"): Spec(
        _one(E + "/signers/taxpayer/time-zone", "PUT", json={"time_zone": "America/Denver"})
    ),
    ("GET", E + "/messages"): Spec(_one(E + "/messages")),
    ("POST", E + "/messages"): Spec(_one(E + "/messages", "POST", json={"body": "hello"})),
    ("GET", E + "/record"): Spec(_one(E + "/record")),
    ("POST", "/api/verify"): Exempt("no id: checks an uploaded PDF against the caller's own firm only"),
    # --- taxpayer API
    ("GET", "/api/invitations/{token}"): Spec(_one("/api/invitations/{token}")),
    ("POST", "/api/password-hints"): Exempt(NO_ID),
    ("POST", "/api/invitations/{token}/link"): Spec(
        _one("/api/invitations/{token}/link", "POST", json={"last_name": "Jones", "ssn_last4": "6789"})
    ),
    ("GET", "/portal/add-return/{token}"): Spec(_one("/portal/add-return/{token}")),
    ("POST", "/portal/add-return/{token}"): Spec(
        _one("/portal/add-return/{token}", "POST", data={"last_name": "Jones", "ssn_last4": "6789"})
    ),
    # Asking for the victim's return shows the caller's own newest one: a 200 with only their own data.
    ("POST", "/portal/return"): Spec(
        lambda ids: [("POST", "/portal/return", {"data": {"engagement_id": ids["engagement"]}})],
        filter_ok=True,
    ),
    ("POST", "/api/invitations/{token}/register"): Spec(
        lambda ids: [
            (
                "POST",
                f"/api/invitations/{ids['forged_token']}/register",
                {"json": Person(httpx.AsyncClient(), MALLORY).registration(username="mallory2")},
            )
        ]
    ),
    ("POST", "/api/taxpayer/login"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/login/code"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/login/verify"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/password-reset"): Exempt(RESET),
    ("POST", "/api/taxpayer/password-reset/confirm"): Exempt(RESET),
    ("POST", "/api/taxpayer/logout"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/logout-everywhere"): Exempt(NO_ID),
    ("GET", "/api/taxpayer/me"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/code"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/verify"): Exempt(NO_ID),
    ("GET", "/api/taxpayer/documents"): Exempt(NO_ID),
    ("GET", "/api/taxpayer/documents/{document_id}/download"): Spec(
        _docs("/api/taxpayer/documents/{document_id}/download")
    ),
    ("POST", "/api/taxpayer/uploads"): Exempt(NO_ID),
    ("PUT", "/api/taxpayer/signature"): Exempt(NO_ID),
    # The signed-in person's own consent: no id names whose (tests/test_api/test_consent_signing.py).
    ("GET", "/api/taxpayer/consent"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/consent"): Exempt(NO_ID),
    ("DELETE", "/api/taxpayer/consent"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/documents/{document_id}/sign"): Spec(
        _sign_return("/api/taxpayer/documents/{document_id}/sign"), spouse=True
    ),
    # Declining and signing on paper act on the caller's own signature, like signing: the spouse's call on
    # the taxpayer's own document is the workflow's refusal (409), and nothing is recorded.
    ("POST", "/api/taxpayer/documents/{document_id}/decline"): Spec(
        _sign_return("/api/taxpayer/documents/{document_id}/decline", json={"reason": "attack"}), spouse=True
    ),
    ("POST", "/api/taxpayer/documents/{document_id}/paper"): Spec(
        _sign_return("/api/taxpayer/documents/{document_id}/paper", **_one_file("scan")), spouse=True
    ),
    ("GET", "/api/taxpayer/messages"): Exempt(NO_ID),
    **_account_changes("/api/taxpayer/account", "json"),
    ("PUT", "/api/taxpayer/account/time-zone"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/messages"): Exempt(NO_ID),
    # --- taxpayer pages
    ("GET", "/invite/{token}"): Spec(_one("/invite/{token}")),
    ("POST", "/invite/{token}/password-hints"): Spec(
        _one("/invite/{token}/password-hints", "POST", data={"password": "x"}),
        filter_ok=True,  # the live password checklist: answers for any token, shows nothing of the return
    ),
    ("POST", "/invite/{token}"): Spec(
        lambda ids: [
            (
                "POST",
                f"/invite/{ids['forged_token']}",
                {"data": Person(httpx.AsyncClient(), MALLORY).registration(username="mallory3")},
            )
        ]
    ),
    ("GET", "/portal/verify"): Exempt(NO_ID),
    ("POST", "/portal/verify/send"): Exempt(NO_ID),
    ("POST", "/portal/verify"): Exempt(NO_ID),
    ("POST", "/portal/verify/cancel"): Exempt(NO_ID),
    ("GET", "/portal/login"): Exempt("`next` is a same-site path, not an object id"),
    ("POST", "/portal/login"): Exempt(NO_ID),
    ("GET", "/portal/login/code"): Exempt("`next` is a same-site path, not an object id"),
    ("POST", "/portal/login/code/send"): Exempt(NO_ID),
    ("POST", "/portal/login/code"): Exempt(NO_ID),
    ("POST", "/portal/login/cancel"): Exempt(NO_ID),
    ("GET", "/portal/password-reset"): Exempt(RESET),
    ("POST", "/portal/password-reset"): Exempt(RESET),
    ("GET", "/portal/password-reset/code"): Exempt(RESET),
    ("POST", "/portal/password-reset/code"): Exempt(RESET),
    ("POST", "/portal/password-reset/password-hints"): Exempt(NO_ID),
    ("GET", "/portal/password-reset/done"): Exempt(NO_ID),
    ("POST", "/portal/logout"): Exempt(NO_ID),
    ("POST", "/portal/logout-everywhere"): Exempt(NO_ID),
    ("GET", "/portal"): Exempt(NO_ID),
    ("GET", "/portal/files"): Exempt(NO_ID),
    ("GET", "/portal/files/list"): Exempt(NO_ID),
    ("POST", "/portal/files"): Exempt(NO_ID),
    ("GET", "/portal/documents"): Exempt(NO_ID),
    ("POST", "/portal/documents/{document_id}/sign"): Spec(
        _sign_return("/portal/documents/{document_id}/sign"), spouse=True
    ),
    ("POST", "/portal/documents/{document_id}/decline"): Spec(
        _sign_return("/portal/documents/{document_id}/decline", data={"reason": "attack"}), spouse=True
    ),
    ("POST", "/portal/documents/{document_id}/paper"): Spec(
        _sign_return("/portal/documents/{document_id}/paper", **_one_file("scan")), spouse=True
    ),
    ("GET", "/portal/documents/{document_id}/view"): Spec(_docs("/portal/documents/{document_id}/view")),
    ("GET", "/portal/signature"): Exempt(NO_ID),
    ("GET", "/portal/signature.png"): Exempt(NO_ID),
    ("POST", "/portal/signature"): Exempt(NO_ID),
    ("GET", "/portal/consent"): Exempt(NO_ID),
    ("POST", "/portal/consent"): Exempt(NO_ID),
    ("POST", "/portal/consent/withdraw"): Exempt(NO_ID),
    ("GET", "/portal/messages"): Exempt(NO_ID),
    ("GET", "/portal/messages/feed"): Spec(
        lambda ids: [("GET", "/portal/messages/feed", {"params": {"after": 0}})], filter_ok=True
    ),
    ("POST", "/portal/messages"): Exempt(NO_ID),
    ("GET", "/portal/account"): Spec(_own("GET", "/portal/account"), filter_ok=True),  # one's own only
    **_account_changes("/portal/account", "data"),
    ("POST", "/portal/account/time-zone"): Exempt(NO_ID),
    # --- notifications, the bell and live updates (issue 15): another account's notification is "not found",
    # and it stays unread (checked in _assert_victim_account_unchanged)
    ("GET", "/portal/notifications"): Exempt(NO_ID),
    ("GET", "/portal/notifications/bell"): Exempt(NO_ID),
    ("GET", "/portal/notifications/{notification_id}/open"): Spec(
        _notification("GET", "/portal/notifications/{notification_id}/open"), spouse=True
    ),
    ("POST", "/portal/notifications/{notification_id}/read"): Spec(
        _notification("POST", "/portal/notifications/{notification_id}/read"), spouse=True
    ),
    ("POST", "/portal/notifications/read-all"): Exempt(NO_ID),
    ("GET", "/portal/events"): Exempt(
        "no id: the stream is the caller's own account and shown return; `n`/`c` only say where it starts"
    ),
    ("GET", "/api/taxpayer/notifications"): Exempt(NO_ID),
    ("POST", "/api/taxpayer/notifications/{notification_id}/read"): Spec(
        _notification("POST", "/api/taxpayer/notifications/{notification_id}/read"), spouse=True
    ),
    ("POST", "/api/taxpayer/notifications/read-all"): Exempt(NO_ID),
    # --- the client hub's landing and Documents pages (issue 15), and their API
    ("GET", "/api/taxpayer/hub"): Exempt(NO_ID),
    ("GET", "/api/taxpayer/library"): Exempt(
        "no id: year, kind, status and sort filter the caller's own returns"
    ),
    # Asking to show the victim's return is ignored: the caller lands on their own page (a 200 of theirs).
    ("GET", "/portal/go"): Spec(
        lambda ids: [
            ("GET", "/portal/go", {"params": {"return": ids["engagement"], "to": "/portal/documents"}})
        ],
        filter_ok=True,
    ),
    ("GET", "/portal/documents/{document_id}/download"): Spec(
        _docs("/portal/documents/{document_id}/download")
    ),
    ("POST", "/preparer/settings/contact"): Exempt(NO_ID),  # the caller's own firm; administrators only
    ("POST", "/preparer/account/phone"): Exempt(NO_ID),  # the caller's own phone
    # --- preparer pages
    ("GET", "/preparer/login"): Exempt("`next` is a same-site path, not an object id"),
    ("POST", "/preparer/login"): Exempt(NO_ID),
    ("GET", "/preparer/login/code"): Exempt("`next` is a same-site path, not an object id"),
    ("POST", "/preparer/login/code"): Exempt(NO_ID),
    ("POST", "/preparer/login/cancel"): Exempt(NO_ID),
    ("GET", "/preparer/enrol"): Exempt("`next` is a same-site path, not an object id"),
    ("POST", "/preparer/enrol"): Exempt(NO_ID),
    ("POST", "/preparer/security/recovery-codes"): Exempt(NO_ID),
    ("POST", "/preparer/logout"): Exempt(NO_ID),
    ("GET", "/preparer/join/{token}"): Spec(_one("/preparer/join/{token}")),
    ("POST", "/preparer/join/{token}"): Spec(
        _one("/preparer/join/{token}", "POST", data={"name": "Eve", "password": "correct horse battery"})
    ),
    ("GET", "/preparer"): Spec(
        lambda ids: [("GET", "/preparer", {"params": {"preparer": ids["victim_preparer"]}})],
        filter_ok=True,
    ),
    ("GET", "/preparer/dashboard/results"): Spec(
        lambda ids: [
            (
                "GET",
                "/preparer/dashboard/results",
                {"params": {"preparer": ids["victim_preparer"]}},
            )
        ],
        filter_ok=True,
    ),
    ("GET", "/engagements/{engagement_id}"): Spec(_one("/engagements/{engagement_id}")),
    ("GET", "/preparer/engagements/new"): Exempt(NO_ID),
    ("GET", "/preparer/engagements/new/zone-guess"): Exempt(NO_ID),
    ("POST", "/preparer/engagements/new"): Exempt(NO_ID),
    ("GET", P): Spec(_one(P)),
    ("GET", P + "/live"): Spec(_one(P + "/live")),
    ("GET", P + "/messages/feed"): Spec(_one(P + "/messages/feed", params={"after": 0})),
    ("POST", P + "/invite"): Spec(_one(P + "/invite", "POST", data={"role": "taxpayer", "channel": "email"})),
    ("POST", P + "/contact"): Spec(
        _one(
            P + "/contact",
            "POST",
            data={"role": "taxpayer", "channel": "email", "destination": "x@example.test"},
        )
    ),
    ("POST", P + "/documents"): Spec(
        _one(P + "/documents", "POST", data={"who-0": "taxpayer"}, **_pdf_files())
    ),
    ("GET", P + "/documents/{document_id}/download"): Spec(_docs(P + "/documents/{document_id}/download")),
    ("POST", P + "/documents/{document_id}/replace"): Spec(
        _one(P + "/documents/{document_id}/replace", "POST", data={"who": "taxpayer"}, **_one_file("file"))
    ),
    ("POST", P + "/documents/{document_id}/paper"): Spec(
        _one(P + "/documents/{document_id}/paper", "POST", data={"roles": ["taxpayer"]}, **_one_file("scan"))
    ),
    ("POST", P + "/messages"): Spec(_one(P + "/messages", "POST", data={"body": "hello"})),
    ("POST", P + "/cancel"): Spec(_one(P + "/cancel", "POST", data={"reason": "attack"})),
    ("POST", P + "/unlock"): Spec(_one(P + "/unlock", "POST", data={"role": "taxpayer"})),
    ("POST", P + "/legal-hold"): Spec(_one(P + "/legal-hold", "POST", data={"reason": "attack"})),
    ("POST", P + "/legal-hold/lift"): Spec(_one(P + "/legal-hold/lift", "POST")),
    ("POST", "/preparer/settings/retention"): Exempt(NO_ID),
    ("POST", "/preparer/settings/proofing"): Exempt(NO_ID),
    ("POST", P + "/time-zone"): Spec(
        _one(P + "/time-zone", "POST", data={"role": "taxpayer", "time_zone": "America/Denver"})
    ),
    ("GET", "/preparer/settings"): Exempt(NO_ID),
    ("POST", "/preparer/settings/schedule"): Exempt(NO_ID),
    ("POST", "/preparer/settings/preparers/invite"): Exempt(NO_ID),
    ("POST", "/preparer/settings/preparers/{colleague_id}/{action}"): Spec(
        lambda ids: [
            ("POST", f"/preparer/settings/preparers/{ids['colleague']}/{action}", {})
            for action in ("deactivate", "activate", "make-admin", "remove-admin", "reset-mfa")
        ]
    ),
    ("GET", "/preparer/settings/templates/{purpose}/{channel}"): Exempt(TEMPLATE_KIND),
    ("POST", "/preparer/settings/templates/{purpose}/{channel}/preview"): Exempt(TEMPLATE_KIND),
    ("POST", "/preparer/settings/templates/{purpose}/{channel}"): Exempt(TEMPLATE_KIND),
    ("GET", "/preparer/import"): Exempt(NO_ID),
    ("GET", "/preparer/import/example.csv"): Exempt(NO_ID),
    ("POST", "/preparer/import"): Exempt(NO_ID),
    # --- a preparer's own account (no id to swap): tried with a password and codes that aren't the caller's;
    # another firm's preparer reaches only their own account, and is refused there too
    ("POST", "/api/preparer/account/password"): Spec(
        _own(
            "POST",
            "/api/preparer/account/password",
            json={
                "current_password": NOT_MY_PASSWORD,
                "code": "000000",
                "new_password": "taken over 2026 eve",
            },
        )
    ),
    ("POST", "/api/preparer/account/email/code"): Spec(
        _own(
            "POST",
            "/api/preparer/account/email/code",
            json={
                "new_email": "eve.inbox@example.net",
                "current_password": NOT_MY_PASSWORD,
                "code": "000000",
            },
        )
    ),
    ("POST", "/api/preparer/account/email"): Spec(
        _own(
            "POST",
            "/api/preparer/account/email",
            json={"new_email": "eve.inbox@example.net", "email_code": "123456"},
        ),
        also_refused=NO_CHANGE_STARTED,
    ),
    ("GET", "/preparer/account"): Spec(_own("GET", "/preparer/account"), filter_ok=True),  # one's own only
    ("POST", "/preparer/account/password"): Spec(
        _own(
            "POST",
            "/preparer/account/password",
            data={
                "current_password": NOT_MY_PASSWORD,
                "code": "000000",
                "new_password": "taken over 2026 eve",
            },
        )
    ),
    ("POST", "/preparer/account/email/code"): Spec(
        _own(
            "POST",
            "/preparer/account/email/code",
            data={
                "new_email": "eve.inbox@example.net",
                "current_password": NOT_MY_PASSWORD,
                "code": "000000",
            },
        )
    ),
    ("POST", "/preparer/account/email"): Spec(
        _own(
            "POST",
            "/preparer/account/email",
            data={"new_email": "eve.inbox@example.net", "email_code": "123456"},
        ),
        also_refused=NO_CHANGE_STARTED,
    ),
    # --- the client hub, the preparer's side (issue 15): client pages and roll over. The key of a client is
    # one of their signers' ids; another firm's is "not found", and roll over of another firm's engagement
    # (alone or among others) refuses the whole request before anything is created.
    ("GET", "/preparer/clients/{key}"): Spec(
        lambda ids: [("GET", f"/preparer/clients/{_victim_client(ids)}", {})]
    ),
    ("POST", "/preparer/clients/{key}/new-engagement"): Spec(
        lambda ids: [("POST", f"/preparer/clients/{_victim_client(ids)}/new-engagement", {})]
    ),
    ("POST", P + "/rollover"): Spec(_one(P + "/rollover", "POST", data={"invite": "yes"})),
    ("POST", "/preparer/engagements/rollover"): Spec(
        lambda ids: [("POST", "/preparer/engagements/rollover", {"data": {"ids": [str(ids["engagement"])]}})]
    ),
    ("POST", E + "/rollover"): Spec(_one(E + "/rollover", "POST", json={"invite": True})),
    ("POST", "/api/engagements/rollover"): Spec(
        lambda ids: [("POST", "/api/engagements/rollover", {"json": {"ids": [ids["engagement"]]}})]
    ),
}


def _victim_client(ids: Ids) -> int:
    """The victim taxpayer's client key: their signer's id."""
    from sqlmodel import Session, select

    from core.models import Signer

    with Session(ids["resources"].engine) as db:
        return db.exec(select(Signer.id).where(Signer.engagement_id == ids["engagement"])).first() or 0


ROUTES.update(SECURITY_ROUTES)


# ---- signature places (issue 17): the editor's preview and templates on another firm's engagement, and the
# victim firm's templates and labels in firm settings, are "not found" to another firm's administrator.
def _victim_places(ids: Ids) -> dict[str, int]:
    """A template and a label of the victim's firm, made the first time they are needed."""
    if "places" not in ids:
        from sqlmodel import Session

        from core.models import Engagement, PlacementTemplate, SignatureLabel

        with Session(ids["resources"].engine) as db:
            engagement = db.get(Engagement, ids["engagement"])
            assert engagement is not None
            template = PlacementTemplate(
                firm_id=engagement.firm_id,
                name="Victim 8879",
                geometry="1:612x792r0",
                words="[]",
                places="[]",
            )
            label = SignatureLabel(
                firm_id=engagement.firm_id, role="taxpayer", text="Victim's client signature"
            )
            db.add(template)
            db.add(label)
            db.commit()
            ids["places"] = {"template": template.id or 0, "label": label.id or 0}
    return dict(ids["places"])


def _victim_set(ids: Ids) -> int:
    """A set of identity questions of the victim taxpayer's, open (made on first use)."""
    if "identity_set" not in ids:
        from sqlmodel import Session

        from core.enums import Role
        from core.models import IdentityCheck

        with Session(ids["resources"].engine) as db:
            row = IdentityCheck(
                engagement_id=ids["engagement"],
                role=Role.TAXPAYER,
                set_number=1,
                provider="dev",
                check_id="dev-v",
            )
            db.add(row)
            db.commit()
            ids["identity_set"] = row.id or 0
    return int(ids["identity_set"])


ATTACK_DETAILS = {
    "date_of_birth": "1970-01-01",
    "street": "1 Attack St",
    "city": "X",
    "state": "NY",
    "zip": "10001",
}
# Identity proofing: a signer answers only their own sets (another's set is "not found", the spouse's call on
# the taxpayer's set too); the preparer routes are the firm's own engagements only.
ROUTES.update(
    {
        ("GET", "/api/taxpayer/identity"): Exempt(NO_ID),
        ("POST", "/api/taxpayer/identity/sets"): Exempt(NO_ID),
        ("POST", "/api/taxpayer/identity/sets/{set_id}/answers"): Spec(
            lambda ids: [
                ("POST", f"/api/taxpayer/identity/sets/{_victim_set(ids)}/answers", {"json": {"answers": {}}})
            ],
            spouse=True,
        ),
        ("GET", "/portal/identity"): Exempt(NO_ID),
        ("POST", "/portal/identity/start"): Exempt(NO_ID),
        ("POST", "/portal/identity/answers"): Spec(
            lambda ids: [("POST", "/portal/identity/answers", {"data": {"set": str(_victim_set(ids))}})],
            spouse=True,
        ),
        ("GET", "/api/firm/identity-proofing"): Exempt(NO_ID),
        ("PUT", "/api/firm/identity-proofing"): Exempt(NO_ID),
        ("PUT", E + "/signers/{role}/identity-details"): Spec(
            _one(E + "/signers/taxpayer/identity-details", "PUT", json=ATTACK_DETAILS)
        ),
        ("GET", E + "/signers/{role}/identity"): Spec(_one(E + "/signers/taxpayer/identity")),
        ("POST", E + "/signers/{role}/identity/unlock"): Spec(
            _one(E + "/signers/taxpayer/identity/unlock", "POST", json={"reason": "attack attack"})
        ),
        ("POST", P + "/identity-details"): Spec(
            _one(P + "/identity-details", "POST", data={"role": "taxpayer", **ATTACK_DETAILS})
        ),
        ("POST", P + "/identity-unlock"): Spec(
            _one(P + "/identity-unlock", "POST", data={"role": "taxpayer", "reason": "attack attack"})
        ),
    }
)


PLACES_FORM = {"files": {"file": ("attack.pdf", make_pdf(1), "application/pdf")}}
ROUTES.update(
    {
        ("POST", P + "/placements/preview"): Spec(
            _one(P + "/placements/preview", "POST", data={"who": "both"}, **PLACES_FORM)
        ),
        ("POST", P + "/placements/template"): Spec(
            _one(
                P + "/placements/template",
                "POST",
                data={
                    "name": "Stolen 8879",
                    "places": '[{"role": "taxpayer", "page": 1, "x": 72, '
                    '"y": 72, "width": 200, "height": 36}]',
                },
                **PLACES_FORM,
            )
        ),
        ("POST", "/preparer/settings/placement-templates/{template_id}/delete"): Spec(
            lambda ids: [
                (
                    "POST",
                    f"/preparer/settings/placement-templates/{_victim_places(ids)['template']}/delete",
                    {},
                )
            ]
        ),
        ("POST", "/preparer/settings/signature-labels"): Exempt(NO_ID),  # the caller's own firm; admins only
        ("POST", "/preparer/settings/signature-labels/{label_id}/delete"): Spec(
            lambda ids: [
                ("POST", f"/preparer/settings/signature-labels/{_victim_places(ids)['label']}/delete", {})
            ]
        ),
    }
)


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, walking included routers (FastAPI resolves them lazily)."""

    def walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, _IncludedRouter):
                yield from walk(route.effective_candidates())
            elif isinstance(route, _EffectiveRouteContext):
                for method in sorted(getattr(route.original_route, "methods", None) or []):
                    if method != "HEAD":
                        yield method, route.path
            elif isinstance(route, Mount):
                yield "MOUNT", route.path
            elif isinstance(route, BaseRoute):
                for method in sorted(getattr(route, "methods", None) or []):
                    if method != "HEAD":
                        yield method, getattr(route, "path", "")

    return sorted(set(walk(app.router.routes)))


def test_every_route_has_authz_coverage(settings: Settings) -> None:
    routes = app_routes(create_app(settings))
    assert len(routes) > 90, "the route walk found too few routes: FastAPI's router internals changed?"
    missing = [f"{m} {p}" for m, p in routes if (m, p) not in ROUTES]
    assert not missing, f"new route without authz coverage (add it to ROUTES): {missing}"
    with_ids = [(m, p) for m, p in routes if "{" in p]
    exempt_ids = [r for r in with_ids if isinstance(ROUTES[r], Exempt)]
    assert all("template" in p for _, p in exempt_ids), exempt_ids
    stale = sorted(set(ROUTES) - set(routes))
    assert not stale, f"ROUTES names routes the app no longer has: {stale}"


# ---- the people --------------------------------------------------------------------------------------


@dataclass
class World:
    ids: Ids
    attackers: dict[str, httpx.AsyncClient]
    secrets: list[str] = field(default_factory=list)


def _with_csrf(http: httpx.AsyncClient, resources: Resources) -> None:
    """A browser's own valid CSRF token, so page POSTs reach the authorisation check."""
    secret = secrets.token_urlsafe(32)
    http.cookies.set(cookies.name(resources, cookies.CSRF), secret, domain="portico.test")
    http.headers["x-csrf-token"] = _sign(resources, secret)


async def _wait_invite(preparer: httpx.AsyncClient, email: str) -> str:
    import asyncio

    for _ in range(100):
        if any(m["purpose"] == "invite" and m["destination"] == email for m in await outbox(preparer)):
            break
        await asyncio.sleep(0.1)
    return invite_token(await latest(preparer, "invite", email))


@pytest.fixture
async def world(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[World]:
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        async with build_worker(dev_server.client, resources):
            clients: list[httpx.AsyncClient] = []

            def client(ip: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(ip, 40000))
                c = httpx.AsyncClient(
                    transport=transport,
                    base_url="https://portico.test",
                    headers={"user-agent": "authz", "sec-fetch-site": "same-origin"},
                )
                clients.append(c)
                return c

            # The victim: firm A, a joint return, documents both ways, a chat.
            preparer_a, taxpayer, spouse = (
                client("198.51.100.1"),
                client("198.51.100.2"),
                client("198.51.100.3"),
            )
            await login_preparer(preparer_a, make_preparer(resources))
            colleague = add_preparer(resources, "colleague@firm.test", "Lovelace Tax", "Colin Colleague")
            created = await preparer_a.post(
                "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE}
            )
            assert created.status_code == 201, created.text
            eid = created.json()["id"]
            for role, data, http in (("taxpayer", TAXPAYER, taxpayer), ("spouse", SPOUSE, spouse)):
                sent = await preparer_a.post(
                    f"/api/engagements/{eid}/invite", json={"channel": "email", "role": role}
                )
                assert sent.status_code == 200, sent.text
                token = await _wait_invite(preparer_a, data["email"])
                await register_and_verify(Person(http, data, role), token, preparer_a)
            files = [
                ("files", (RETURN_DOC, make_pdf(1), "application/pdf")),
                ("files", (JOINT_DOC, make_pdf(1), "application/pdf")),
            ]
            docs = await preparer_a.post(
                f"/api/engagements/{eid}/documents", files=files, data={"signers": ["taxpayer", "both"]}
            )
            assert docs.status_code == 200, docs.text
            by_name = {d["name"]: d["id"] for d in docs.json()["documents"]}
            up = await taxpayer.post(
                "/api/taxpayer/uploads", files=[("files", (UPLOAD_DOC, make_pdf(1), "application/pdf"))]
            )
            assert up.status_code == 201, up.text
            by_name.update({d["name"]: d["id"] for d in up.json()})
            chat = await preparer_a.post(f"/api/engagements/{eid}/messages", json={"body": CHAT})
            assert chat.status_code == 201, chat.text
            victim_prep = (await preparer_a.get("/api/engagements")).json()["items"][0]
            assert victim_prep["id"] == eid

            # The attackers: firm B's preparer (two-step login on) and its verified taxpayer, and nobody.
            preparer_b, mallory, nobody = client("203.0.113.1"), client("203.0.113.2"), client("203.0.113.3")
            secret = enrol_directly(resources, "eve@other.test", "Other Firm", "Eve Other")
            await api_login(preparer_b, "eve@other.test", Authenticator(secret))
            other = await preparer_b.post("/api/engagements", json={"tax_year": 2025, "taxpayer": MALLORY})
            assert other.status_code == 201, other.text
            oid = other.json()["id"]
            assert (
                await preparer_b.post(f"/api/engagements/{oid}/invite", json={"channel": "email"})
            ).status_code == 200
            await register_and_verify(
                Person(mallory, MALLORY), await _wait_invite(preparer_b, MALLORY["email"]), preparer_b
            )
            for http in (preparer_b, mallory, nobody, spouse):
                _with_csrf(http, resources)

            real_token = await _wait_invite(preparer_a, TAXPAYER["email"])
            forged = real_token[:-4] + ("AAAA" if not real_token.endswith("AAAA") else "BBBB")
            from sqlmodel import Session, select

            from core.models import Preparer

            with Session(resources.engine) as db:
                victim_preparer = db.exec(select(Preparer.id).where(Preparer.email == "ada@firm.test")).one()
                victim_notification = _victim_notifications(db)[0].id  # the bell's (issue 15)
            ids: Ids = {
                "engagement": eid,
                "return_doc": by_name[RETURN_DOC],
                "joint_doc": by_name[JOINT_DOC],
                "upload_doc": by_name[UPLOAD_DOC],
                "colleague": colleague,
                "victim_preparer": victim_preparer,
                "forged_token": forged,
                "resources": resources,
                "notification": victim_notification,
            }
            leaks = [
                TAXPAYER["first_name"],
                "O'Neil",
                escape("O'Neil"),
                "O&#x27;Neil",
                TAXPAYER["email"],
                SPOUSE["email"],
                SPOUSE["first_name"],
                RETURN_DOC,
                JOINT_DOC,
                UPLOAD_DOC,
                CHAT,
                "Lovelace Tax",
                "Colin Colleague",
            ]
            try:
                yield World(
                    ids,
                    {
                        "other_taxpayer": mallory,
                        "other_firm_preparer": preparer_b,
                        "no_session": nobody,
                        "spouse": spouse,
                    },
                    leaks,
                )
            finally:
                for c in clients:
                    await c.aclose()


def _refused(
    path: str, response: httpx.Response, filter_ok: bool, spouse: bool = False, also: tuple[int, ...] = ()
) -> bool:
    if response.status_code in (401, 403, 404, *also):
        return True
    # The spouse knows the joint return's documents exist: "this document doesn't need your signature" (409)
    # is the workflow validator's refusal.
    if spouse and response.status_code == 409:
        return True
    if filter_ok and response.status_code == 200:
        return True
    location = response.headers.get("location", "") or response.headers.get("hx-redirect", "")
    # A page answers "log in first" with a redirect to its login page.
    return not path.startswith("/api/") and response.status_code in (302, 303, 307) and "/login" in location


async def test_every_id_route_refuses_other_people(world: World) -> None:
    failures: list[str] = []
    tried = 0
    routes = [(key, spec) for key, spec in ROUTES.items() if isinstance(spec, Spec)]
    assert len(routes) >= 30
    for (method, template), spec in routes:
        for who, http in world.attackers.items():
            if who == "spouse" and not spec.spouse:
                continue
            for call_method, url, kwargs in spec.calls(world.ids):
                assert call_method == method
                response = await http.request(method, url, follow_redirects=False, **kwargs)
                moved = response.headers.get("location", "")
                if response.status_code in (302, 303, 307) and "/login" not in moved:
                    # A short link (/engagements/{id}): what it leads to must refuse as well.
                    response = await http.get(moved, follow_redirects=False)
                tried += 1
                body = response.text
                label = f"{who}: {method} {url} ({template}) -> {response.status_code}"
                if not _refused(url, response, spec.filter_ok, who == "spouse", spec.also_refused):
                    failures.append(f"{label} not refused: {body[:200]}")
                    continue
                if who == "spouse":
                    continue  # the spouse may see the joint return's names; the refusal is what counts
                leaked = [s for s in world.secrets if s in body or s in str(response.headers)]
                if leaked:
                    failures.append(f"{label} leaks {leaked}")
    assert not failures, "\n".join(failures)
    assert tried >= 80, tried
    # The victim's engagement is untouched: not cancelled, documents still waiting for the taxpayer.
    _assert_victim_account_unchanged(world.ids["resources"])
    _assert_victim_security_unchanged(world.ids["resources"])
    _assert_victim_places_unchanged(world.ids)


def _assert_victim_places_unchanged(ids: Ids) -> None:
    """The victim firm's template and label are still there, and no other firm saved a template."""
    from sqlmodel import Session, select

    from core.models import PlacementTemplate, SignatureLabel

    kept = _victim_places(ids)
    with Session(ids["resources"].engine) as db:
        assert db.get(PlacementTemplate, kept["template"]) is not None
        assert db.get(SignatureLabel, kept["label"]) is not None
        assert [t.name for t in db.exec(select(PlacementTemplate)).all()] == ["Victim 8879"]


def _assert_victim_account_unchanged(resources: Resources) -> None:
    from sqlmodel import Session, col, select

    from core.models import AuditEntry, Signer, TaxpayerAccount
    from core.passwords import verify_password

    with Session(resources.engine) as db:
        victim = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == "shelby")).one()
        signer = db.get(Signer, victim.signer_id)
        assert signer is not None and verify_password(victim.password_hash, PASSWORD)
        assert victim.email == signer.email == TAXPAYER["email"] and signer.phone == "+17025550197"
        changed = db.exec(
            select(AuditEntry.action).where(col(AuditEntry.action).like("account.%_changed"))
        ).all()
        assert changed == [], changed
        assert [n.read_at for n in _victim_notifications(db)] == [None] * len(_victim_notifications(db))


def _victim_notifications(db: Any) -> list[Any]:
    """The victim's notifications (documents sent, the preparer's chat): nobody else may read or open one."""
    from sqlmodel import col, select

    from core.models import Notification, TaxpayerAccount

    victim = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == "shelby")).one()
    rows = db.exec(
        select(Notification).where(Notification.account_id == victim.id).order_by(col(Notification.id))
    )
    found = list(rows.all())
    assert found, "the victim has notifications to try"
    return found


async def test_item4_cookie_session_api_posts_must_come_from_portico_pages(
    api: Any, settings: Settings, dev_server: WorkflowEnvironment
) -> None:
    """A page on a same-site host can make the browser send its SameSite=Lax session cookie: an unsafe
    JSON API request with cookies needs Sec-Fetch-Site same-origin/none, the public URL's Origin, or the
    pages' X-CSRF-Token. A client without cookies (a script) is untouched by it."""
    resources: Resources = api.app.state.resources
    body = {"tax_year": 2025, "taxpayer": TAXPAYER}
    async with build_worker(dev_server.client, resources), api.client("198.51.100.61") as browser:
        await login_preparer(browser, make_preparer(resources))
        del browser.headers["sec-fetch-site"]
        cases: list[tuple[dict[str, str], int]] = [
            ({"sec-fetch-site": "same-site", "origin": "https://evil.portico.test"}, 403),
            ({"origin": "https://evil.portico.test"}, 403),  # an older browser: no Sec-Fetch-* at all
            ({}, 403),
            ({"sec-fetch-site": "cross-site"}, 403),
            ({"origin": settings.public_url}, 201),
            ({"sec-fetch-site": "same-origin"}, 201),
            ({"sec-fetch-site": "none"}, 201),
        ]
        for headers, expected in cases:
            answer = await browser.post("/api/engagements", json=body, headers=headers)
            assert answer.status_code == expected, (headers, answer.status_code, answer.text)
        _with_csrf(browser, resources)  # the pages' own token, as fetch() sends it
        assert (await browser.post("/api/engagements", json=body)).status_code == 201
    async with api.client("198.51.100.62") as script:
        del script.headers["sec-fetch-site"]
        answer = await script.post("/api/engagements", json=body, headers={"origin": "https://evil.example"})
        assert answer.status_code == 401, answer.text  # not logged in, rather than refused as cross-site
