"""Request and response bodies. Responses never expose table models or secrets."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from core.enums import SignatureStatus
from core.identity import InvalidContact, guess_time_zone, normalise_email, normalise_phone, normalise_ssn

RoleName = Literal["taxpayer", "spouse"]
ChannelName = Literal["email", "sms"]


class Login(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    code: str | None = Field(
        None, max_length=40, description="authenticator code or recovery code, once two-step login is set up"
    )


class TaxpayerLogin(BaseModel):
    login: str | None = Field(None, max_length=254, description="a verified email address or the user name")
    username: str | None = Field(None, max_length=64, description="the user name (older clients)")
    password: str = Field(max_length=256)

    @model_validator(mode="after")
    def _named(self) -> TaxpayerLogin:
        if not (self.login or self.username):
            raise ValueError("Enter your email address or user name.")
        return self

    @property
    def who(self) -> str:
        """What the person typed to name their account."""
        return self.login or self.username or ""


@functools.cache
def _time_zones() -> frozenset[str]:
    """The zone names on this system, read once: listing them scans the tz database on disk."""
    return frozenset(zoneinfo.available_timezones())


def known_time_zone(name: str) -> bool:
    return name in _time_zones()


class AddressIn(BaseModel):
    street: str = Field(min_length=1, max_length=120, description="number and street, e.g. 1200 Oak Ridge Rd")
    city: str = Field(min_length=1, max_length=80)
    state: str = Field(min_length=2, max_length=2, description="two letters, e.g. NY")
    zip: str = Field(min_length=5, max_length=10)


class SignerIn(BaseModel):
    first_name: str = Field(min_length=1, max_length=80)
    last_name: str = Field(min_length=1, max_length=80)
    ssn: str = Field(description="123-45-6789")
    email: str | None = None
    phone: str | None = None
    time_zone: str = Field(
        default="", description="e.g. America/Chicago; left out: guessed from the phone number"
    )
    date_of_birth: date | None = Field(
        default=None, description="for identity proofing before an 8879 is signed; encrypted at rest"
    )
    address: AddressIn | None = Field(default=None, description="street address, for identity proofing")

    @field_validator("ssn")
    @classmethod
    def _ssn(cls, value: str) -> str:
        return _contact(normalise_ssn, value)

    @model_validator(mode="after")
    def _both_or_neither(self) -> SignerIn:
        if (self.date_of_birth is None) != (self.address is None):
            raise ValueError("give both the date of birth and the address, or neither")
        return self

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _contact(normalise_email, value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return _contact(normalise_phone, value) if value else None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value and value not in _time_zones():
            raise ValueError(f"unknown time zone {value!r}")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> SignerIn:
        if not self.email and not self.phone:
            raise ValueError("give an email address or a phone number")
        if not self.time_zone:
            self.time_zone = guess_time_zone(self.phone) or "America/New_York"
        return self


def _contact(normalise: Callable[[str], str], value: str) -> str:
    try:
        return normalise(value)
    except InvalidContact as exc:
        raise ValueError(str(exc)) from exc


class EngagementCreate(BaseModel):
    tax_year: int = Field(ge=2000, le=2100)
    taxpayer: SignerIn
    spouse: SignerIn | None = None
    taxpayer_signs_first: bool = Field(
        False, description="signing order on a joint return: the spouse signs after the taxpayer"
    )


class SignerOut(BaseModel):
    role: RoleName
    name: str
    masked_email: str | None
    masked_phone: str | None
    time_zone: str
    registered: bool
    verified: bool
    signature_on_file: bool


class SignatureOut(BaseModel):
    role: RoleName
    signed_at: datetime | None
    method: Literal["electronic", "paper"] = "electronic"
    declined_at: datetime | None = None
    decline_reason: str | None = None


class DocumentOut(BaseModel):
    id: int
    name: str
    direction: Literal["to_client", "to_preparer"]
    size: int
    pages: int | None
    sha256: str
    created_at: datetime
    signatures: list[SignatureOut]
    signed: bool
    signature_status: SignatureStatus | None = None
    """One of `core.enums.SignatureStatus`; none for a document nobody signs."""
    signature_status_label: str = ""
    replaced_by: int | None = None


class StatusOut(BaseModel):
    stage: str
    waiting_on: str | None
    waiting_since: datetime | None
    reminders_sent: int
    needs_attention: bool
    last_activity_at: datetime | None


class EngagementSummary(BaseModel):
    id: int
    tax_year: int
    taxpayer_name: str
    spouse_name: str | None
    status: StatusOut


class EngagementOut(EngagementSummary):
    signers: list[SignerOut]
    documents: list[DocumentOut]
    taxpayer_signs_first: bool = False


class EngagementPage(BaseModel):
    items: list[EngagementSummary]
    total: int
    page: int
    per_page: int
    counts: dict[str, int] = Field(default_factory=dict, description="per stage, before the stage filter")


class InviteIn(BaseModel):
    role: RoleName = "taxpayer"
    channel: ChannelName
    destination: str | None = Field(None, description="optional; must be the contact on the return")


class InviteOut(BaseModel):
    message: str
    masked_destination: str
    scheduled_for: datetime | None


class CancelIn(BaseModel):
    reason: str = Field("", max_length=500)


class RoleIn(BaseModel):
    role: RoleName


class TimeZoneIn(BaseModel):
    time_zone: str = Field(max_length=64, description="an IANA name, e.g. America/Los_Angeles")


InvitationState = Literal["open", "expired", "replaced", "locked", "registered", "closed"]


class InvitationOut(BaseModel):
    state: InvitationState
    message: str
    firm_name: str
    first_name: str
    tax_year: int
    has_account: bool = Field(
        default=False,
        description="an account of this firm already uses this contact: sign in and add the return to it",
    )


class LinkReturnIn(BaseModel):
    last_name: str = Field(max_length=80)
    ssn_last4: str = Field(max_length=4)


class RegisterIn(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@+-]+$")
    password: str = Field(max_length=256)
    email: str
    phone: str
    last_name: str = Field(min_length=1, max_length=80)
    ssn_last4: str = Field(pattern=r"^\d{4}$")


class CodeChannel(BaseModel):
    masked: str
    channel: ChannelName


class RegisterOut(BaseModel):
    username: str
    next: Literal["verify"]
    channels: list[CodeChannel]


class CodeRequest(BaseModel):
    channel: ChannelName


class CodeSentOut(BaseModel):
    message: str
    expires_at: datetime
    resend_after: datetime


class CodeIn(BaseModel):
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class MeOut(BaseModel):
    username: str
    role: RoleName
    name: str
    engagement_id: int
    tax_year: int
    verified: bool
    signature_on_file: bool
    channels: list[CodeChannel]
    documents_waiting: int


class SignOut(BaseModel):
    document_id: int
    signed_at: datetime
    sha256: str
    message: str


class ChatIn(BaseModel):
    body: str = Field(min_length=1, max_length=5000)


class ChatOut(BaseModel):
    id: int
    sender: str
    sender_name: str
    body: str
    created_at: datetime


class Done(BaseModel):
    message: str


# ---- taxpayer portal: new-device login, device memory --------------------------------------------


class TaxpayerLoginIn(TaxpayerLogin):
    remember_device: bool = Field(False, description="trust this browser for 30 days once the code is in")


class LoginChallengeOut(BaseModel):
    """The password was right, but this browser is new: a one-time code is needed too."""

    next: Literal["login_code"]
    message: str
    channels: list[CodeChannel]


class VerifyIn(CodeIn):
    remember_device: bool = False


class PasswordHintsIn(BaseModel):
    password: str = Field("", max_length=256)
    username: str = Field("", max_length=64)
    email: str = Field("", max_length=254)


class PasswordHintsOut(BaseModel):
    ok: bool
    problems: list[str]


# ---- taxpayer portal: changing one's own password, email address or phone number -------------------

ContactKind = Literal["email", "phone"]


class PasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(
        max_length=256, description="8 to 128 characters, not a common password, not your user name or email"
    )


class ContactCodeIn(BaseModel):
    """Step 1 of changing the email address or phone number: a code goes to the new one."""

    kind: ContactKind
    value: str = Field(max_length=254, description="the new email address or phone number")
    current_password: str = Field(max_length=256)


class ContactConfirmIn(BaseModel):
    """Step 2: the code sent to the new address; it then replaces the old one."""

    kind: ContactKind
    value: str = Field(max_length=254, description="the same new address the code was sent to")
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


# ---- preparer login with a second factor ---------------------------------------------------------


class PreparerLoginOut(BaseModel):
    """`next`: "done" (logged in), "code" (send the authenticator code to /api/preparer/login/code),
    "enrol" (a set-up-only session: /api/preparer/mfa/enrol, then /api/preparer/mfa/confirm)."""

    message: str
    next: Literal["done", "code", "enrol"]


class SecondFactorIn(BaseModel):
    code: str = Field(
        min_length=6, max_length=40, description="6-digit authenticator code or a recovery code"
    )


class MfaEnrolOut(BaseModel):
    secret: str
    otpauth_uri: str


class RecoveryCodesOut(BaseModel):
    message: str
    recovery_codes: list[str]


# ---- the firm: settings and preparers (every preparer reads; administrators change) -----------------


class FirmSettingsIn(BaseModel):
    """New engagements start with these; hours are the client's local time (quiet hours apply to texts)."""

    time_zone: str = Field(max_length=64, description="the firm's, e.g. America/Chicago")
    invite_reminder_days: int
    invite_reminders_max: int
    invite_expires_days: int
    verify_reminder_hours: int
    signature_reminder_first_days: int
    signature_reminder_interval_days: int
    signature_reminders_max: int
    quiet_hours_start: int = Field(description="no texts from this hour (0-23)")
    quiet_hours_end: int = Field(description="until this hour (0-23)")


class FirmSettingsOut(FirmSettingsIn):
    updated_at: datetime


class ColleagueOut(BaseModel):
    id: int
    name: str
    email: str
    active: bool
    is_admin: bool
    two_step_login: bool = Field(description="two-step login is set up")


class ColleagueInviteIn(BaseModel):
    name: str = Field(max_length=120)
    email: str = Field(max_length=254)


class ColleagueChangeIn(BaseModel):
    """One change at a time: deactivate or reactivate, or make an administrator or not."""

    active: bool | None = None
    is_admin: bool | None = None

    @model_validator(mode="after")
    def _one_change(self) -> ColleagueChangeIn:
        if (self.active is None) == (self.is_admin is None):
            raise ValueError("Change one thing at a time: give `active` or `is_admin`.")
        return self


# ---- a preparer's own account: password and login email (both factors asked again) -------------------


class PreparerPasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=256)
    code: str = Field(
        min_length=6, max_length=40, description="a current authenticator code, or an unused recovery code"
    )
    new_password: str = Field(
        max_length=256, description="8 to 128 characters, not a common password, not your email"
    )


class PreparerEmailCodeIn(BaseModel):
    """Step 1 of changing the login email: a one-time code goes to the new address."""

    new_email: str = Field(max_length=254)
    current_password: str = Field(max_length=256)
    code: str = Field(
        min_length=6, max_length=40, description="a current authenticator code, or an unused recovery code"
    )


class PreparerEmailConfirmIn(BaseModel):
    """Step 2, in the same session: the code from the new address; it then becomes the login email."""

    new_email: str = Field(max_length=254, description="the same new address the code was sent to")
    email_code: str = Field(pattern=r"^\s*[0-9]{3}[\s-]?[0-9]{3}\s*$")


class PreparerEmailOut(BaseModel):
    message: str
    email: str = Field(description="the login email from now on")


# ---- taxpayer portal: a forgotten password ---------------------------------------------------------


class PasswordResetIn(BaseModel):
    """Step 1 of resetting a forgotten password: the answer is the same whether or not an account uses it."""

    login: str = Field(min_length=1, max_length=320, description="user name, email address or phone number")
    channel: ChannelName = Field("email", description="send the code to the account's email or its phone")


class PasswordResetConfirmIn(CodeIn):
    """Step 2, from the browser that asked (its reset cookie): the code and the new password."""

    new_password: str = Field(
        max_length=256, description="8 to 128 characters, not a common password, not your user name or email"
    )


# ---- taxpayer security settings: sign-in emails, sessions, remembered browsers -------------------------


class EmailAddIn(BaseModel):
    """Step 1 of adding another sign-in email: a code goes to it."""

    email: str = Field(max_length=254)
    current_password: str = Field(max_length=256)


class EmailConfirmIn(BaseModel):
    """Step 2: the code sent to the address; it is then one of the account's verified addresses."""

    email: str = Field(max_length=254, description="the same address the code was sent to")
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class AccountEmailOut(BaseModel):
    id: int
    email: str
    primary: bool
    verified: bool


class SessionOut(BaseModel):
    """A browser or app signed in to the account."""

    ref: str = Field(description="end it with DELETE /api/taxpayer/account/sessions/{ref}")
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str
    this_browser: bool


class DeviceOut(BaseModel):
    """A browser that logs in without a code until `expires_at`."""

    ref: str = Field(description="forget it with DELETE /api/taxpayer/account/devices/{ref}")
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    this_browser: bool


class SecurityOut(BaseModel):
    emails: list[AccountEmailOut]
    sessions: list[SessionOut]
    devices: list[DeviceOut]
