"""Signatures made on paper, and documents declined.

A client who cannot or will not sign electronically downloads the form, signs it by hand and uploads the
scan; or the preparer, holding a hand-signed copy, marks the document signed on paper and attaches the
scan. Either way the scan is checked like any upload and kept with the engagement's uploads, and the
workflow counts the signature: the record says it was on paper and who vouched for it. A client may
instead decline a document with a reason; the preparer then sends a corrected copy in its place
(`preparer_engagements.send_documents(..., replaces=...)`) or takes the signature on paper.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from core.context import Resources
from core.enums import Role
from core.models import Document, Engagement
from services import Refusal, ServiceError, portal, workflow_calls
from services.client_library import on_return_of
from services.context import PreparerContext, TaxpayerContext
from services.documents import owned_document, safe_filename, store_upload
from workflows.engagement import EngagementWorkflow
from workflows.types import DeclineDocument, SignOnPaper

SCAN_REFUSED = "{name}: upload the scan as a PDF or a photo (JPEG, PNG, HEIC)."


async def decline(ctx: TaxpayerContext, document_id: int, reason: str) -> None:
    """The signer will not sign this document as it is; the preparer is told at once."""
    _, ctx = on_return_of(ctx, document_id)
    role = ctx.signer.role.value
    await workflow_calls.update(
        ctx.client,
        ctx.signer.engagement_id,
        EngagementWorkflow.decline_document,
        DeclineDocument(role=role, document_id=document_id, reason=reason.strip(), actor=ctx.actor),
        update_id=f"decline-{document_id}-{role}",  # a double submit declines once
    )


async def client_signed_on_paper(ctx: TaxpayerContext, document_id: int, scan: UploadFile) -> None:
    """The client's scan of the document they signed by hand: their own signature, on paper."""
    doc, ctx = on_return_of(ctx, document_id)
    role = ctx.signer.role.value
    stored = await store_scan(ctx.db, ctx.resources, doc, scan, uploaded_by=ctx.actor.label)
    await _count_on_paper(ctx.db, ctx.resources, ctx, doc, [role], stored, f"paper-{document_id}-{role}")


async def preparer_attests_paper(
    ctx: PreparerContext, engagement: Engagement, document_id: int, roles: list[str], scan: UploadFile
) -> None:
    """The preparer holds a hand-signed copy: `roles` signed it on paper, as the attached scan shows."""
    doc = owned_document(ctx.db, engagement.id or 0, document_id)
    known = {role.value for role in Role}
    if not roles or not set(roles) <= known:
        raise ServiceError(Refusal.INVALID, "Choose whose signature the scan shows.", "roles")
    stored = await store_scan(ctx.db, ctx.resources, doc, scan, uploaded_by=ctx.actor.label)
    signers = sorted(set(roles))  # each signer once, however often the form named them
    update_id = f"paper-{document_id}-{'-'.join(signers)}-by-preparer"
    await _count_on_paper(ctx.db, ctx.resources, ctx, doc, signers, stored, update_id)


async def _count_on_paper(
    db: Session,
    resources: Resources,
    ctx: TaxpayerContext | PreparerContext,
    doc: Document,
    roles: list[str],
    scan: Document,
    update_id: str,
) -> None:
    """Asks the workflow to count the paper signatures; a refusal leaves no scan behind."""
    try:
        await workflow_calls.update(
            ctx.client,
            doc.engagement_id,
            EngagementWorkflow.sign_on_paper,
            SignOnPaper(document_id=doc.id or 0, roles=roles, scan_document_id=scan.id or 0, actor=ctx.actor),
            update_id=update_id,
        )
    except ServiceError as exc:
        if exc.kind is Refusal.CONFLICT:  # refused for good: the scan belongs to nothing
            db.delete(scan)
            db.commit()
            await run_in_threadpool(resources.store.delete, scan.storage_key)
        raise


async def store_scan(
    db: Session, resources: Resources, doc: Document, scan: UploadFile, *, uploaded_by: str
) -> Document:
    """Checks the scan like any upload (size, kind by content, a PDF that opens) and keeps it with the
    engagement's uploads, named after the document it signs."""
    limit = resources.settings.max_upload_bytes
    name, data, kind = await portal.checked_file(scan, limit, refused=SCAN_REFUSED, field="scan")
    scan_name = safe_filename(f"Signed on paper - {doc.name} - {name}")
    stored = await store_upload(
        resources.store, doc.engagement_id, scan_name, data, kind, uploaded_by=uploaded_by
    )
    db.add(stored)  # the workflow's "signed on paper" entry names it: one audit entry for the action
    db.commit()
    return stored
