"""Invitations, registration, password rules, the verification code, password login and sessions."""

from __future__ import annotations

import contextlib
import hmac
from dataclasses import dataclass

from fastapi import Request, Response
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from activities.engagement import code_digest
from core import audit, sessions
from core.account_emails import accounts_for_login
from core.client_accounts import newest_signer
from core.context import Resources
from core.identity import (
    InvalidContact,
    contact_digest,
    identity_digest,
    mask_email,
    mask_phone,
    normalise_email,
    normalise_name,
    normalise_phone,
)
from core.models import Engagement, Firm, Signer, TaxpayerAccount
from core.passwords import hash_password, password_problems, verify_password
from core.tokens import InvalidToken, read_invite_token
from services import Refusal, ServiceError, codes, cookies, workflow_calls
from services.deps import request_actor
from services.schemas import CodeChannel, InvitationOut, InvitationState, RegisterIn
from workflows.engagement import EngagementWorkflow
from workflows.types import CodeSent, Register, RegisterResult, RequestCode, VerifyCode, VerifyResult

_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
MISMATCH = (
    "These details don't match the tax return your preparer entered. Check them and try again, "
    "or ask your preparer."
)
LOCKED = "Too many attempts: this link is locked. Ask your preparer for a new one."
WRONG_LOGIN = "Wrong user name or password."
# At most this many accounts sharing one sign-in address are tried with a password.
MAX_SHARED_ADDRESS = 3


def channels(signer: Signer) -> list[CodeChannel]:
    """Where codes can go: the contacts on the return, masked (`she*****com`, `70*****97`)."""
    out = []
    if signer.email:
        out.append(CodeChannel(channel="email", masked=mask_email(signer.email)))
    if signer.phone:
        out.append(CodeChannel(channel="sms", masked=mask_phone(signer.phone)))
    return out


# ---- invitation and registration -----------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    signer: Signer
    engagement: Engagement
    invite_seq: int


def read_invitation(db: Session, resources: Resources, token: str) -> Invitation:
    try:
        payload = read_invite_token(resources.cipher.derive_key("invite-token"), token)
    except InvalidToken as exc:
        raise ServiceError(
            Refusal.NOT_FOUND, "This link is not valid. Check it, or ask your preparer for a new one."
        ) from exc
    signer = db.exec(
        select(Signer).where(Signer.engagement_id == payload.engagement_id, Signer.role == payload.role)
    ).first()
    engagement = db.get(Engagement, payload.engagement_id)
    if signer is None or engagement is None:
        raise ServiceError(Refusal.NOT_FOUND, "This link is not valid.")
    return Invitation(signer, engagement, payload.invite_seq)


async def invitation_state(
    db: Session, resources: Resources, client: Client, token: str
) -> tuple[InvitationOut, Invitation]:
    """What an invitation link leads to, and whether it can still be used."""
    invitation = read_invitation(db, resources, token)
    signer, engagement = invitation.signer, invitation.engagement
    firm = db.get(Firm, engagement.firm_id)
    state = await workflow_calls.query_status(client, engagement.id or 0)
    me = state.signers[signer.role.value]
    verdict: InvitationState = "open"
    message = "Create your account."
    if state.stage in ("cancelled", "completed"):
        verdict, message = "closed", "This engagement is closed. Contact your preparer if you need anything."
    elif me.registered_at is not None:
        verdict, message = "registered", "Your account already exists. Log in."
    elif me.invite_seq != invitation.invite_seq:
        verdict, message = "replaced", "This link has been replaced by a newer one. Use the latest message."
    elif me.invite_expired:
        verdict, message = "expired", "This link has expired. Ask your preparer to send you a new one."
    elif me.registration_locked:
        verdict, message = (
            "locked",
            "This link is locked after too many attempts. Ask your preparer for a new one.",
        )
    out = InvitationOut(
        state=verdict,
        message=message,
        firm_name=firm.name if firm else "",
        first_name=signer.first_name,
        tax_year=engagement.tax_year,
    )
    return out, invitation


def password_hints(password: str, username: str = "", email: str = "") -> list[str]:
    """The NIST rules (length, block list, not your own name), as the register page shows them live."""
    return password_problems(password, username, email) if password else []


async def register(
    db: Session, resources: Resources, client: Client, request: Request, token: str, body: RegisterIn
) -> tuple[TaxpayerAccount, Signer]:
    """Create the portal account; the details must match the return. Refusals name the field at fault."""
    invitation = read_invitation(db, resources, token)
    signer = invitation.signer
    problems = password_problems(body.password, body.username, body.email)
    if problems:
        raise ServiceError(Refusal.INVALID, " ".join(problems), "password")
    cipher = resources.cipher
    digests, contacts = {}, {}
    for channel, field, value in (("email", "email", body.email), ("sms", "phone", body.phone)):
        try:
            # Stored as matched (E.164, a normalised address), whatever the spacing typed.
            contacts[field] = normalise_phone(value) if channel == "sms" else normalise_email(value)
            digests[field] = contact_digest(cipher, channel, contacts[field])
        except InvalidContact as exc:
            what = "an email address" if field == "email" else "a phone number, like 702 555 0197"
            raise ServiceError(Refusal.INVALID, f"Enter {what}.", field) from exc
    # Whether a user name is taken is told only to someone whose details match the return: through any
    # invitation link, anyone could otherwise probe for user names. A mismatch goes on to the workflow,
    # which counts it (and answers the same "details don't match" whatever the user name).
    if (
        _matches_the_return(resources, signer, body, contacts)
        and db.exec(select(TaxpayerAccount.id).where(TaxpayerAccount.username == body.username)).first()
    ):
        raise ServiceError(Refusal.CONFLICT, "That user name is taken. Choose another.", "username")
    actor = request_actor(request, "taxpayer", signer.role.value)
    # argon2id takes tens of milliseconds of CPU by design: never on the event loop.
    password_hash = await run_in_threadpool(hash_password, body.password)
    result: RegisterResult = await workflow_calls.update(
        client,
        invitation.engagement.id or 0,
        EngagementWorkflow.register,
        Register(
            role=signer.role.value,
            invite_seq=invitation.invite_seq,
            identity_digest=identity_digest(cipher, body.last_name, body.ssn_last4),
            email_digest=digests["email"],
            phone_digest=digests["phone"],
            username=body.username,
            password_hash=password_hash,
            email=contacts["email"],
            phone=contacts["phone"],
            actor=actor,
        ),
    )
    if not result.ok:
        if result.locked:
            raise ServiceError(Refusal.LOCKED, LOCKED)
        left = "1 attempt" if result.attempts_left == 1 else f"{result.attempts_left} attempts"
        raise ServiceError(Refusal.INVALID, f"{MISMATCH} ({left} left)")
    account = db.get(TaxpayerAccount, result.account_id or 0)
    if account is None:  # pragma: no cover - the workflow's activity just wrote it
        raise ServiceError(Refusal.FAILED, "Something went wrong on our side.")
    return account, signer


def _matches_the_return(
    resources: Resources, signer: Signer, body: RegisterIn, contacts: dict[str, str]
) -> bool:
    """Registration's identity check as the workflow makes it (last name + last four of the SSN, and the
    email or the phone), made here only to decide what may be said about the user name: the workflow's
    own check is the one that counts."""
    cipher = resources.cipher
    given_ssn = cipher.digest("ssn-last4", body.ssn_last4.strip())
    same_person = normalise_name(body.last_name) == normalise_name(signer.last_name) and hmac.compare_digest(
        given_ssn, signer.ssn_last4_digest
    )
    on_return = []
    with contextlib.suppress(InvalidContact):
        on_return.append(normalise_email(signer.email) if signer.email else None)
    with contextlib.suppress(InvalidContact):
        on_return.append(normalise_phone(signer.phone) if signer.phone else None)
    return same_person and any(value in on_return for value in (contacts["email"], contacts["phone"]))


# ---- verification code (pipeline state: the workflow checks it) -----------------------------------


async def request_code(client: Client, request: Request, signer: Signer, channel: str) -> CodeSent:
    sent: CodeSent = await workflow_calls.update(
        client,
        signer.engagement_id,
        EngagementWorkflow.request_code,
        RequestCode(
            role=signer.role.value,
            channel=channel,
            actor=request_actor(request, "taxpayer", signer.role.value),
        ),
    )
    return sent


async def verify_code(
    client: Client, request: Request, resources: Resources, signer: Signer, code: str
) -> None:
    digest = code_digest(resources, signer.engagement_id, signer.role.value, code)
    result: VerifyResult = await workflow_calls.update(
        client,
        signer.engagement_id,
        EngagementWorkflow.verify_code,
        VerifyCode(
            role=signer.role.value,
            code_digest=digest,
            actor=request_actor(request, "taxpayer", signer.role.value),
        ),
    )
    if result.ok:
        return
    raise codes.verification_refused(result.reason, result.tries_left)


# ---- password login and sessions ---------------------------------------------------------------------


def check_password(
    db: Session, request: Request, login: str, password: str
) -> tuple[TaxpayerAccount, Signer]:
    """The account a login (user name or verified email) names, if the password is right; the same answer
    and timing for a login no account uses (a dummy hash is checked) or a wrong password."""
    found = accounts_for_login(db, login)[:MAX_SHARED_ADDRESS]
    account = None
    # A couple sharing one address: the password tells whose account it is.
    for candidate in found:
        if verify_password(candidate.password_hash, password):
            account = candidate
            break
    if not found:
        verify_password(_DUMMY_HASH, password)
    named = account or (found[0] if found else None)
    signer = newest_signer(db, account) if account else None
    named_signer = signer or (newest_signer(db, named) if named else None)
    actor = request_actor(request, "taxpayer", named_signer.role.value if named_signer else login[:64])
    if not (account and signer):
        audit.record(
            db,
            action="taxpayer.login_failed",
            actor=actor,
            engagement_id=named_signer.engagement_id if named_signer else None,
        )
        db.commit()
        raise ServiceError(Refusal.UNAUTHENTICATED, WRONG_LOGIN)
    return account, signer


def start_session(
    db: Session,
    resources: Resources,
    request: Request,
    response: Response,
    account: TaxpayerAccount,
    signer: Signer,
    how: str,
) -> None:
    """Logs the taxpayer in on this browser; `how` (password, password+code, registration) is audited."""
    actor = request_actor(request, "taxpayer", signer.role.value)
    previous = cookies.read(request, resources, cookies.SESSION)
    if previous:  # a new login gets a new session id; the old one stops working (no fixation)
        sessions.end(db, previous)
    token = sessions.start(db, "taxpayer", account.id or 0, actor.ip, actor.user_agent)
    if how != "registration":
        audit.record(
            db, action="taxpayer.login", actor=actor, engagement_id=signer.engagement_id, detail={"auth": how}
        )
        db.commit()
    cookies.put(response, resources, cookies.SESSION, token)


def rotate_session(
    db: Session, resources: Resources, request: Request, response: Response, account: TaxpayerAccount
) -> None:
    """A new session id once the account is verified: an id that was planted or seen before the code was
    entered (session fixation) never becomes a verified session. The old one stops working."""
    actor = request_actor(request, "taxpayer", str(account.id))
    previous = cookies.read(request, resources, cookies.SESSION)
    if previous:
        sessions.end(db, previous)
    token = sessions.start(db, "taxpayer", account.id or 0, actor.ip, actor.user_agent)
    cookies.put(response, resources, cookies.SESSION, token)


def end_session(db: Session, resources: Resources, request: Request, response: Response) -> None:
    token = cookies.read(request, resources, cookies.SESSION)
    if token:
        sessions.end(db, token)
    cookies.drop(response, resources, cookies.SESSION)
