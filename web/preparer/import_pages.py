"""Bulk import page: check a CSV (every row, errors by row), then create its engagements once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from services import parsing
from services import preparer_import as importer
from services.deps import ResourcesDep, SessionDep, TemporalDep, request_actor
from web.preparer.rendering import CurrentWorkspace, render
from web.security import check_csrf

router = APIRouter(prefix="/preparer/import", include_in_schema=False, dependencies=[Depends(check_csrf)])
MAX_CSV_BYTES = 5 * 1024 * 1024
EXAMPLE = (
    "tax_year,taxpayer_first_name,taxpayer_last_name,taxpayer_ssn,taxpayer_email,taxpayer_phone,"
    "taxpayer_time_zone,spouse_first_name,spouse_last_name,spouse_ssn,spouse_email,spouse_phone,"
    "spouse_time_zone,preparer_email\n"
    "2025,Shelby,O'Neil,123-45-6789,shelby@example.com,(702) 555-0197,Pacific,Jordan,O'Neil,"
    "234-56-7890,jordan@example.com,,Pacific,\n"
    "2025,Ravi,Patel,345-67-8901,,+1 212 555 0123,America/New_York,,,,,,,\n"
)


def _page(request: Request, ws: CurrentWorkspace, status_code: int = 200, **extra: object) -> Response:
    context = {
        "ws": ws,
        "page": "import",
        "columns": importer.COLUMNS,
        "max_rows": importer.MAX_ROWS,
        **extra,
    }
    return render(request, "preparer/import.html", context, status_code)


@router.get("")
def import_page(request: Request, ws: CurrentWorkspace) -> Response:
    return _page(request, ws)


@router.get("/example.csv")
def example(ws: CurrentWorkspace) -> Response:
    return Response(
        EXAMPLE,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="portico-import-example.csv"'},
    )


@router.post("")
async def run_import(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    file: Annotated[UploadFile, File()],
    action: Annotated[str, Form()] = "check",
) -> Response:
    data = await file.read(MAX_CSV_BYTES + 1)
    name = (file.filename or "import.csv")[:200]
    if len(data) > MAX_CSV_BYTES:
        return _page(
            request, ws, 413, file_error="The file is larger than 5 MB. Split it and import each part."
        )
    if not data.strip():
        return _page(request, ws, 422, file_error="Choose a CSV file.")
    check = await parsing.in_thread(name, importer.check_file, db, resources, ws.preparer, data, name)
    if action != "import" or not check.ok:
        return _page(request, ws, 200 if check.ok else 422, check=check)
    actor = request_actor(request, "preparer", str(ws.preparer.id))
    try:
        batch = await importer.run_import(db, client, resources, actor, ws.preparer, check)
    except Exception:  # Temporal unreachable mid-way: what was created stays; importing again finishes it
        return _page(
            request,
            ws,
            503,
            check=check,
            file_error="Portico is busy and stopped part-way. Import the same file again to finish: "
            "nothing is created twice.",
        )
    return _page(request, ws, check=check, batch=batch)
