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

from api.app import create_app
from api.services import cookies
from core.config import Settings
from core.context import Resources
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
TOKEN = "token is a bearer capability; tried with a forged token"
TEMPLATE_KIND = "purpose/channel name a template kind of the caller's own firm, not another firm's object"

ROUTES: dict[tuple[str, str], Spec | Exempt] = {
    # --- framework and static
    ("GET", "/openapi.json"): Exempt("schema, public"),
    ("GET", "/docs"): Exempt("schema viewer, public"),
    ("GET", "/docs/oauth2-redirect"): Exempt("schema viewer, public"),
    ("GET", "/redoc"): Exempt("schema viewer, public"),
    ("MOUNT", "/static"): Exempt("static assets, public"),
    ("GET", "/healthz"): Exempt("health check, public"),
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
    ("POST", E + "/cancel"): Spec(_one(E + "/cancel", "POST", json={"reason": "attack"})),
    ("POST", E + "/unlock"): Spec(_one(E + "/unlock", "POST", json={"role": "taxpayer"})),
    ("GET", E + "/messages"): Spec(_one(E + "/messages")),
    ("POST", E + "/messages"): Spec(_one(E + "/messages", "POST", json={"body": "hello"})),
    ("GET", E + "/record"): Spec(_one(E + "/record")),
    ("POST", "/api/verify"): Exempt("no id: checks an uploaded PDF against the caller's own firm only"),
    # --- taxpayer API
    ("GET", "/api/invitations/{token}"): Spec(_one("/api/invitations/{token}")),
    ("POST", "/api/password-hints"): Exempt(NO_ID),
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
    ("POST", "/api/taxpayer/documents/{document_id}/sign"): Spec(
        _sign_return("/api/taxpayer/documents/{document_id}/sign"), spouse=True
    ),
    ("GET", "/api/taxpayer/messages"): Exempt(NO_ID),
    **_account_changes("/api/taxpayer/account", "json"),
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
    ("GET", "/portal/documents/{document_id}/view"): Spec(_docs("/portal/documents/{document_id}/view")),
    ("GET", "/portal/signature"): Exempt(NO_ID),
    ("GET", "/portal/signature.png"): Exempt(NO_ID),
    ("POST", "/portal/signature"): Exempt(NO_ID),
    ("GET", "/portal/messages"): Exempt(NO_ID),
    ("GET", "/portal/messages/feed"): Spec(
        lambda ids: [("GET", "/portal/messages/feed", {"params": {"after": 0}})], filter_ok=True
    ),
    ("POST", "/portal/messages"): Exempt(NO_ID),
    ("GET", "/portal/account"): Spec(_own("GET", "/portal/account"), filter_ok=True),  # one's own only
    **_account_changes("/portal/account", "data"),
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
    ("POST", "/preparer/engagements/new"): Exempt(NO_ID),
    ("GET", P): Spec(_one(P)),
    ("GET", P + "/live"): Spec(_one(P + "/live")),
    ("GET", P + "/messages/feed"): Spec(_one(P + "/messages/feed", params={"after": 0})),
    ("POST", P + "/invite"): Spec(_one(P + "/invite", "POST", data={"role": "taxpayer", "channel": "email"})),
    ("POST", P + "/documents"): Spec(
        _one(P + "/documents", "POST", data={"who-0": "taxpayer"}, **_pdf_files())
    ),
    ("GET", P + "/documents/{document_id}/download"): Spec(_docs(P + "/documents/{document_id}/download")),
    ("POST", P + "/messages"): Spec(_one(P + "/messages", "POST", data={"body": "hello"})),
    ("POST", P + "/cancel"): Spec(_one(P + "/cancel", "POST", data={"reason": "attack"})),
    ("POST", P + "/unlock"): Spec(_one(P + "/unlock", "POST", data={"role": "taxpayer"})),
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
}


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
                    transport=transport, base_url="https://portico.test", headers={"user-agent": "authz"}
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
            ids: Ids = {
                "engagement": eid,
                "return_doc": by_name[RETURN_DOC],
                "joint_doc": by_name[JOINT_DOC],
                "upload_doc": by_name[UPLOAD_DOC],
                "colleague": colleague,
                "victim_preparer": victim_preparer,
                "forged_token": forged,
                "resources": resources,
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
