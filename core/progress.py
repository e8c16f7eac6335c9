"""How far an engagement has come, per signer: the typed record behind the dashboard's step indicator.

The workflow builds it, the `record_transition` activity stores it in `EngagementStatus.detail` (a JSON
text column), and the dashboard, the engagement page and the timeline read it back. `to_json` is the one
writer and `from_json` / `from_mapping` the one reader of that column.

The JSON keeps the flat keys the first projections used (`taxpayer_step`, `documents`, ...), so a row
written before this record existed, a `Transition` whose `detail` still carries strings (in-flight
activity tasks, old histories), and a process that has not been upgraded yet all read each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from core.enums import Role, Stage

# A signer's own step is one of these; the engagement's stage says the rest (documents, signing, ...).
SIGNER_STEPS = (Stage.CREATED, Stage.INVITED, Stage.EXPIRED, Stage.REGISTERED, Stage.VERIFIED)


@dataclass(frozen=True)
class SignerProgress:
    role: Role
    name: str = ""
    """The name the preparer entered, for the dashboard row."""
    step: Stage = Stage.CREATED
    """One of SIGNER_STEPS: how far this signer has come on their own."""
    locked_out: bool = False
    """Too many identity mismatches or wrong codes: only the preparer can let them try again."""
    step_since: datetime | None = None
    """When the signer reached `step` (for an expired link: when it was sent)."""


@dataclass(frozen=True)
class Progress:
    signers: list[SignerProgress] = field(default_factory=list)
    documents: int = 0
    """Documents sent to the portal."""
    documents_to_sign: int = 0
    """Of those, the ones somebody must sign."""
    documents_signed: int = 0
    """Of those, the ones every required signer has signed."""

    def signer(self, role: str) -> SignerProgress | None:
        return next((s for s in self.signers if s.role == role), None)

    def step_of(self, role: str) -> Stage:
        signer = self.signer(role)
        return signer.step if signer is not None else Stage.CREATED

    def locked_out(self, role: str) -> bool:
        signer = self.signer(role)
        return signer is not None and signer.locked_out

    @property
    def all_documents_signed(self) -> bool:
        return self.documents_to_sign > 0 and self.documents_signed >= self.documents_to_sign

    # ---- the one serialisation -------------------------------------------------------------------

    def to_json(self) -> str:
        out: dict[str, object] = {}
        for signer in self.signers:
            out[f"{signer.role}_step"] = str(signer.step)
            out[f"{signer.role}_name"] = signer.name
            out[f"{signer.role}_locked_out"] = signer.locked_out
            out[f"{signer.role}_since"] = signer.step_since.isoformat() if signer.step_since else None
        out["documents"] = self.documents
        out["documents_signed"] = self.documents_signed
        out["documents_to_sign"] = self.documents_to_sign
        return json.dumps(out, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Progress:
        """The record in a `detail` column; an empty, broken or foreign value reads as no progress."""
        try:
            value = json.loads(text or "{}")
        except ValueError:
            return cls()
        return cls.from_mapping(value) if isinstance(value, dict) else cls()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> Progress:
        """From the JSON keys, whether values are typed or the strings of the first projections."""
        signers = [
            SignerProgress(
                role=role,
                name=str(raw.get(f"{role}_name") or ""),
                step=_stage(raw.get(f"{role}_step")),
                locked_out=_bool(raw.get(f"{role}_locked_out")),
                step_since=_when(raw.get(f"{role}_since")),
            )
            for role in Role
            if f"{role}_step" in raw
        ]
        return cls(
            signers=signers,
            documents=_int(raw.get("documents")),
            documents_to_sign=_int(raw.get("documents_to_sign")),
            documents_signed=_int(raw.get("documents_signed")),
        )


def _stage(value: object) -> Stage:
    try:
        stage = Stage(str(value))
    except ValueError:
        return Stage.CREATED
    return stage if stage in SIGNER_STEPS else Stage.CREATED


def _int(value: object) -> int:
    try:
        return max(int(str(value or 0)), 0)
    except ValueError:
        return 0


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _bool(value: object) -> bool:
    return value is True or str(value).lower() == "true"
