"""Preparer side of the e-signature record: download it as a zip, and verify a signed PDF against it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile, status
from pydantic import BaseModel
from sqlmodel import Session, select

from core import audit
from core.models import Engagement, Preparer
from esign.records import RecordNotReady, export_record
from esign.verification import VerificationReport, describe, trust_roots, verify_pdf
from services.deps import CurrentPreparer, ResourcesDep, SessionDep, request_actor

router = APIRouter(prefix="/api", tags=["records"])


class SignatureCheck(BaseModel):
    field_name: str
    signer_name: str
    kind: Literal["approval", "seal", "certification"]
    level: str
    signing_time: datetime | None
    timestamp_time: datetime | None
    coverage: str
    modification_level: str
    changes_allowed: bool
    intact: bool
    valid: bool
    trusted: bool
    holds: bool


class RecordMatchOut(BaseModel):
    engagement_id: int
    document_id: int
    name: str
    version: str


class VerifyOut(BaseModel):
    sha256: str
    pages: int | None
    signatures: list[SignatureCheck]
    sealed: bool
    all_signatures_hold: bool
    record: RecordMatchOut | None
    problem: str | None
    summary: str

    @classmethod
    def of(cls, report: VerificationReport, file_name: str) -> VerifyOut:
        match = report.record
        return cls(
            sha256=report.sha256,
            pages=report.pages,
            signatures=[
                SignatureCheck(
                    field_name=s.field_name,
                    signer_name=s.signer_name,
                    kind="certification" if s.certification else "seal" if s.locks_document else "approval",
                    level=s.level,
                    signing_time=s.signing_time,
                    timestamp_time=s.timestamp_time,
                    coverage=s.coverage,
                    modification_level=s.modification_level,
                    changes_allowed=s.docmdp_ok is not False,
                    intact=s.intact,
                    valid=s.valid,
                    trusted=s.trusted,
                    holds=s.holds,
                )
                for s in report.signatures
            ],
            sealed=report.sealed,
            all_signatures_hold=report.all_signatures_hold,
            record=RecordMatchOut(**match.__dict__) if match is not None else None,
            problem=report.problem,
            summary=describe(report, file_name),
        )


def _engagement(db: Session, preparer: Preparer, engagement_id: int) -> Engagement:
    """The engagement, only if it belongs to the preparer's firm."""
    engagement = db.exec(
        select(Engagement).where(Engagement.id == engagement_id, Engagement.firm_id == preparer.firm_id)
    ).first()
    if engagement is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such engagement.")
    return engagement


# Sync routes on purpose: pyHanko's validation and the zip work block, so FastAPI runs them on its thread
# pool, where pyHanko's internal asyncio.run is also allowed.


@router.get("/engagements/{engagement_id}/record", response_class=Response)
def download_record(
    engagement_id: int, request: Request, preparer: CurrentPreparer, db: SessionDep, resources: ResourcesDep
) -> Response:
    """Download the e-signature record: sealed PDFs, originals, certificate of completion and JSON."""
    engagement = _engagement(db, preparer, engagement_id)
    try:
        archive = export_record(db, resources.store, engagement.id or 0)
    except RecordNotReady as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(
        db,
        action="record.exported",
        actor=request_actor(request, "preparer", str(preparer.id)),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
    )
    db.commit()
    return Response(
        content=archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="portico-engagement-{engagement.id}-record.zip"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/verify", response_model=VerifyOut)
def verify(
    file: Annotated[UploadFile, File(description="a PDF to check")],
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
) -> VerifyOut:
    """Check a PDF's signatures and whether it is exactly a document in this firm's record."""
    limit = resources.settings.max_upload_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "The file is larger than Portico accepts.")
    report = verify_pdf(data, trust_roots(resources.settings), db, firm_id=preparer.firm_id)
    return VerifyOut.of(report, file.filename or "upload.pdf")
