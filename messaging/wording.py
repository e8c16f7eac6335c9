"""The words of every message Portico sends. Texts stay short: one SMS segment where possible.

A firm may word its client messages itself (`MessageTemplate`, edited in firm settings). A saved wording is
text with placeholders such as `{first_name}`; `render` uses it for that purpose and channel and falls back
to Portico's wording (and logs why) when it cannot be filled, so a bad template never stops a send. The
settings preview renders through `render_wording`, the very function a send uses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlmodel import Session, select

from core.models import MessageTemplate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageContext:
    firm_name: str
    recipient_name: str
    channel: str
    link: str = ""
    code: str = ""
    code_minutes: int = 10
    reminder_number: int = 0
    engagement_label: str = ""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


@dataclass(frozen=True)
class Wording:
    """A firm's own text for one message: placeholders in braces, `{{` and `}}` for literal braces."""

    subject: str
    body: str


# The client messages a firm may reword, and what each placeholder stands for.
EDITABLE_PURPOSES = (
    "invite",
    "invite_reminder",
    "code",
    "verify_reminder",
    "documents_ready",
    "signature_reminder",
)
PLACEHOLDER_NAMES = ("firm_name", "first_name", "link", "code", "code_minutes", "reminder_number")
# What a message is for: a template that leaves it out is refused, and never sent.
REQUIRED_PLACEHOLDER = {"invite": "link", "invite_reminder": "link", "code": "code"}
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class WordingError(ValueError):
    """A template that cannot be filled: bad brace syntax, an unknown placeholder, a required one missing."""


def placeholders_in(text: str) -> list[str]:
    """The placeholder names `text` uses, in order; raises `WordingError` on bad syntax or unknown names."""
    names = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise WordingError(
                f"A lone {token!r} at character {match.start() + 1}: placeholders look like {{first_name}} "
                "(write {{ or }} for a brace itself)."
            )
        name = match.group(1)
        if name not in PLACEHOLDER_NAMES:
            allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDER_NAMES)
            raise WordingError(f"Unknown placeholder {{{name}}}. You can use {allowed}.")
        names.append(name)
    return names


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with each placeholder replaced by its value (checked first: raises `WordingError`)."""
    placeholders_in(text)

    def value(match: re.Match[str]) -> str:
        token = match.group(0)
        return token[0] if token in ("{{", "}}") else values[match.group(1)]

    return _TOKEN.sub(value, text)


def wording_problem(purpose: str, wording: Wording) -> tuple[str, str] | None:
    """(field, message) for the first thing that keeps `wording` from being used for `purpose`."""
    for field, text in (("subject", wording.subject), ("body", wording.body)):
        try:
            placeholders_in(text)
        except WordingError as exc:
            return field, str(exc)
    needed = REQUIRED_PLACEHOLDER.get(purpose)
    if needed and needed not in placeholders_in(wording.body):
        return "body", f"This message must contain {{{needed}}}."
    return None


def placeholder_values(ctx: MessageContext) -> dict[str, str]:
    return {
        "firm_name": ctx.firm_name,
        "first_name": ctx.recipient_name,
        "link": ctx.link,
        "code": ctx.code,
        "code_minutes": str(ctx.code_minutes),
        "reminder_number": str(ctx.reminder_number),
    }


def render_wording(purpose: str, ctx: MessageContext, wording: Wording) -> RenderedMessage:
    """The firm's wording filled in for this message; raises `WordingError` when it can't be used."""
    problem = wording_problem(purpose, wording)
    if problem is not None:
        raise WordingError(problem[1])
    values = placeholder_values(ctx)
    subject = fill(wording.subject, values) if ctx.channel == "email" else ""
    return RenderedMessage(subject, fill(wording.body, values))


def render(purpose: str, ctx: MessageContext, wording: Wording | None = None) -> RenderedMessage:
    """The message to send: the firm's `wording` when given and usable, else Portico's own."""
    if wording is not None:
        try:
            return render_wording(purpose, ctx, wording)
        except WordingError as exc:
            log.warning(
                "firm template for %s (%s) unusable, sending Portico's wording: %s", purpose, ctx.channel, exc
            )
    renderer = _RENDERERS.get(purpose)
    if renderer is None:
        raise ValueError(f"no message template for {purpose!r}")
    return renderer(ctx)


def saved_wording(session: Session, firm_id: int, purpose: str, channel: str) -> Wording | None:
    """The firm's saved template for this purpose and channel, if it has one."""
    if purpose not in EDITABLE_PURPOSES:
        return None
    row = session.exec(
        select(MessageTemplate).where(
            MessageTemplate.firm_id == firm_id,
            MessageTemplate.purpose == purpose,
            MessageTemplate.channel == channel,
        )
    ).first()
    return Wording(row.subject, row.body) if row is not None else None


def _invite(ctx: MessageContext) -> RenderedMessage:
    if ctx.channel == "sms":
        return RenderedMessage(
            "", f"{ctx.firm_name}: your tax documents portal is ready. Create your account: {ctx.link}"
        )
    return RenderedMessage(
        f"{ctx.firm_name} invites you to your client portal",
        f"Hello {ctx.recipient_name},\n\n"
        f"{ctx.firm_name} uses a secure client portal to exchange and sign your tax documents.\n"
        f"Create your account here:\n\n{ctx.link}\n\n"
        "You will need your last name and the last four digits of your Social Security number.\n",
    )


def _invite_reminder(ctx: MessageContext) -> RenderedMessage:
    if ctx.channel == "sms":
        return RenderedMessage(
            "", f"Reminder from {ctx.firm_name}: please create your portal account: {ctx.link}"
        )
    return RenderedMessage(
        f"Reminder: {ctx.firm_name} is waiting for you",
        f"Hello {ctx.recipient_name},\n\nYour client portal is ready but your account is not created yet:\n\n"
        f"{ctx.link}\n",
    )


def _code_sentence(ctx: MessageContext, kind: str) -> str:
    """What every one-time code message says: whose it is, the code, and how long it lasts."""
    return f"Your {ctx.firm_name} {kind} code is {ctx.code}. It expires in {ctx.code_minutes} minutes."


def _code_by_text(text: str) -> RenderedMessage:
    return RenderedMessage("", f"{text} Don't share it.")


def _code(ctx: MessageContext) -> RenderedMessage:
    text = _code_sentence(ctx, "verification")
    if ctx.channel == "sms":
        return _code_by_text(text)
    return RenderedMessage(
        f"Your {ctx.firm_name} verification code",
        f"Hello {ctx.recipient_name},\n\n{text}\n\nIf you did not ask for it, you can ignore this message.\n",
    )


def _verify_reminder(ctx: MessageContext) -> RenderedMessage:
    text = f"{ctx.firm_name}: finish setting up your portal account by verifying it with a one-time code."
    return RenderedMessage(f"{ctx.firm_name}: finish verifying your portal account", f"{text}\n{ctx.link}")


def _documents_ready(ctx: MessageContext) -> RenderedMessage:
    text = f"{ctx.firm_name} sent your tax return documents. Log in to review and sign them."
    return RenderedMessage(f"{ctx.firm_name}: your tax documents are ready", f"{text}\n{ctx.link}")


def _signing_turn(ctx: MessageContext) -> RenderedMessage:
    text = f"{ctx.firm_name}: your spouse has signed. Your signature is needed now on your tax documents."
    return RenderedMessage(f"{ctx.firm_name}: your turn to sign", f"{text}\n{ctx.link}")


def _signature_reminder(ctx: MessageContext) -> RenderedMessage:
    text = f"Reminder from {ctx.firm_name}: your tax documents are waiting for your signature."
    return RenderedMessage(f"{ctx.firm_name}: your signature is needed", f"{text}\n{ctx.link}")


def _needs_attention(ctx: MessageContext) -> RenderedMessage:
    return RenderedMessage(
        f"Needs attention: {ctx.engagement_label}",
        f"The engagement {ctx.engagement_label} is stalled and needs your attention:\n{ctx.link}",
    )


def _declined(ctx: MessageContext) -> RenderedMessage:
    # The reason stays in the portal: a mailbox is no place for what a client wrote about their return.
    return RenderedMessage(
        f"Declined: {ctx.engagement_label}",
        f"A client declined to sign a document in {ctx.engagement_label}. See their reason, then send a "
        f"corrected copy or take the signature on paper:\n{ctx.link}",
    )


def _completed(ctx: MessageContext) -> RenderedMessage:
    return RenderedMessage(
        f"Signed: {ctx.engagement_label}",
        f"Every required signature is in for {ctx.engagement_label}.\n{ctx.link}",
    )


def _login_code(ctx: MessageContext) -> RenderedMessage:
    text = _code_sentence(ctx, "login")
    if ctx.channel == "sms":
        return _code_by_text(text)
    return RenderedMessage(
        f"Your {ctx.firm_name} login code",
        f"Hello {ctx.recipient_name},\n\nSomeone is logging in to your {ctx.firm_name} portal from a browser "
        f"it has not seen before.\n\n{text}\n\n"
        "If this was not you, do not share the code: change your password and tell your preparer.\n",
    )


def _contact_code(ctx: MessageContext) -> RenderedMessage:
    text = _code_sentence(ctx, "confirmation")
    if ctx.channel == "sms":
        return _code_by_text(text)
    return RenderedMessage(
        f"{ctx.firm_name}: confirm your new email address",
        f"Hello {ctx.recipient_name},\n\nYou asked to use this address for your {ctx.firm_name} client "
        f"portal.\n\n{text}\n\nIf you did not ask for it, you can ignore this message.\n",
    )


def _account_changed(ctx: MessageContext, what: str) -> RenderedMessage:
    warning = f"If this wasn't you, contact your preparer at {ctx.firm_name} right away."
    if ctx.channel == "sms":
        return RenderedMessage(
            "", f"{ctx.firm_name}: the {what} of your client portal account was changed. {warning}"
        )
    return RenderedMessage(
        f"{ctx.firm_name}: your portal {what} was changed",
        f"Hello {ctx.recipient_name},\n\nThe {what} of your {ctx.firm_name} client portal account was just "
        f"changed.\n\n{warning}\n",
    )


def _security_event(ctx: MessageContext, happened: str) -> RenderedMessage:
    """A security setting changed (an email added or removed, a browser logged out or forgotten)."""
    warning = f"If this wasn't you, contact your preparer at {ctx.firm_name} right away."
    if ctx.channel == "sms":
        return RenderedMessage("", f"{ctx.firm_name}: {happened} on your client portal account. {warning}")
    return RenderedMessage(
        f"{ctx.firm_name}: a change to your portal account",
        f"Hello {ctx.recipient_name},\n\n{happened[0].upper()}{happened[1:]} on your {ctx.firm_name} client "
        f"portal account.\n\n{warning}\n",
    )


def _password_reset_code(ctx: MessageContext) -> RenderedMessage:
    text = _code_sentence(ctx, "password reset")
    if ctx.channel == "sms":
        return _code_by_text(text)
    return RenderedMessage(
        f"{ctx.firm_name}: reset your portal password",
        f"Hello {ctx.recipient_name},\n\nSomeone asked to reset the password of your {ctx.firm_name} client "
        f"portal account.\n\n{text}\n\n"
        "If this was not you, do not share the code: your password stays as it is.\n",
    )


def _password_reset_done(ctx: MessageContext) -> RenderedMessage:
    warning = f"If this wasn't you, contact your preparer at {ctx.firm_name} right away."
    if ctx.channel == "sms":
        return RenderedMessage(
            "",
            f"{ctx.firm_name}: your client portal password was reset; every device is logged out. {warning}",
        )
    return RenderedMessage(
        f"{ctx.firm_name}: your portal password was reset",
        f"Hello {ctx.recipient_name},\n\nThe password of your {ctx.firm_name} client portal account was just "
        "reset with a code we sent you. Every browser that was logged in is logged out, and no browser is "
        f"remembered any more.\n\n{warning}\n",
    )


_RENDERERS: dict[str, Callable[[MessageContext], RenderedMessage]] = {
    "invite": _invite,
    "invite_reminder": _invite_reminder,
    "code": _code,
    "verify_reminder": _verify_reminder,
    "documents_ready": _documents_ready,
    "signature_reminder": _signature_reminder,
    "signing_turn": _signing_turn,
    "needs_attention": _needs_attention,
    "declined": _declined,
    "completed": _completed,
    "login_code": _login_code,
    "contact_code": _contact_code,
    "password_changed": partial(_account_changed, what="password"),
    "email_changed": partial(_account_changed, what="email address"),
    "phone_changed": partial(_account_changed, what="phone number"),
    "password_reset_code": _password_reset_code,
    "password_reset_done": _password_reset_done,
    "email_added": partial(_security_event, happened="a sign-in email address was added"),
    "email_removed": partial(_security_event, happened="a sign-in email address was removed"),
    "session_ended": partial(_security_event, happened="a signed-in browser was logged out"),
    "device_forgotten": partial(_security_event, happened="a remembered browser was forgotten"),
}
