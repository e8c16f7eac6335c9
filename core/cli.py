"""The `portico` command: `up` starts everything on embedded defaults; the rest start one part each."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer
from sqlmodel import Session, select

from core.config import Settings, get_settings
from core.context import Resources
from core.models import Firm, Preparer
from core.passwords import hash_password, password_problems

app = typer.Typer(
    help="Portico: client portal and e-signature pipeline for tax preparers.", no_args_is_help=True
)
DEMO_EMAIL = "demo@portico.localhost"
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Chain any new entries, then prove the whole audit log is intact (exit 1 naming the first bad entry)."""
    from core import audit_chain

    resources = Resources.from_settings(get_settings())
    while audit_chain.seal_pending(resources.engine):
        pass
    report = audit_chain.verify(resources.engine)
    if not report.ok:
        typer.echo(
            f"BROKEN at audit entry {report.first_broken_id}: {report.reason} "
            f"({report.checked} entries before it are intact)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"OK: {report.checked} entries, chain intact ({report.pending} still being written)")


@app.command()
def worker() -> None:
    """Run a Temporal worker for engagement workflows and activities."""
    from worker.main import main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    main(get_settings())


@app.command()
def api(host: str | None = None, port: int | None = None) -> None:
    """Run the web and API server."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
    )


@app.command("create-preparer")
def create_preparer(
    email: str = typer.Option(..., help="login email"),
    name: str = typer.Option(..., help="name shown to clients"),
    firm: str = typer.Option(..., help="firm name (created if new)"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    admin: bool = typer.Option(
        False, "--admin", help="make them a firm administrator (the firm's first preparer always is one)"
    ),
) -> None:
    """Create a preparer (and their firm if it does not exist yet); the firm's first is its administrator."""
    problems = password_problems(password, email)
    if problems:
        typer.echo(" ".join(problems), err=True)
        raise typer.Exit(2)
    resources = Resources.from_settings(get_settings())
    with Session(resources.engine) as db:
        if db.exec(select(Preparer).where(Preparer.email == email.lower())).first():
            typer.echo(f"A preparer with email {email} already exists.", err=True)
            raise typer.Exit(1)
        preparer = _add_preparer(db, firm, email, name, password, admin=admin or None)
        role = "an administrator" if preparer.is_admin else "not an administrator"
    typer.echo(f"Created preparer {email} in firm {firm!r} ({role}).")


def _add_preparer(
    db: Session, firm_name: str, email: str, name: str, password: str, *, admin: bool | None = None
) -> Preparer:
    """`admin=None`: an administrator when they are the firm's first preparer (a new firm), else not."""
    firm = db.exec(select(Firm).where(Firm.name == firm_name)).first()
    if firm is None:
        firm = Firm(name=firm_name)
        db.add(firm)
        db.flush()
    if admin is None:
        admin = db.exec(select(Preparer.id).where(Preparer.firm_id == firm.id)).first() is None
    preparer = Preparer(
        firm_id=firm.id or 0,
        email=email.lower(),
        name=name,
        password_hash=hash_password(password),
        is_admin=admin,
    )
    db.add(preparer)
    db.commit()
    return preparer


def ensure_demo_preparer(resources: Resources) -> str:
    """In development, a demo login so a new user can try Portico at once; the same on every run."""
    secret_file = resources.settings.data_dir / "demo-login.txt"
    with Session(resources.engine) as db:
        existing = db.exec(select(Preparer).where(Preparer.email == DEMO_EMAIL)).first()
        if existing is not None and secret_file.exists():
            return secret_file.read_text().strip()
        password = secrets.token_urlsafe(12)
        if existing is None:
            _add_preparer(db, "Demo Tax Practice", DEMO_EMAIL, "Demo Preparer", password, admin=True)
        else:
            existing.password_hash = hash_password(password)
            existing.is_admin = True
            db.add(existing)
            db.commit()
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    return password


@app.command()
def up() -> None:
    """Start Portico on embedded defaults: Temporal dev server, worker and API. Ctrl-C stops it all."""
    settings = get_settings()
    if not settings.is_development:
        typer.echo(
            "`portico up` is the development stack; run `portico worker` and `portico api` instead.", err=True
        )
        raise typer.Exit(2)
    resources = Resources.from_settings(settings)
    password = ensure_demo_preparer(resources)
    processes = _start_stack(settings)
    base = settings.public_url.rstrip("/")
    typer.echo(
        "\nPortico is running.\n"
        f"  Preparers     {base}/preparer   (two-step login is set up at the first login)\n"
        f"  API docs      {base}/docs\n"
        f"  Dev outbox    {base}/dev/outbox   (invitation links and codes land here)\n"
        f"  Temporal UI   http://127.0.0.1:{settings.temporal_ui_port}\n"
        f"  Demo login    {DEMO_EMAIL} / {password}   (POST {base}/api/preparer/login)\n"
        f"  Data folder   {settings.data_dir}\n"
        "Press Ctrl-C to stop.\n"
    )
    _supervise(processes)


# The dev server runs one history shard whose transfer queue it polls at most 20 times a second by
# default, so every activity and workflow task would wait up to ~50 ms to be dispatched: a Sign click
# spends most of its time there. Lifting the limit costs nothing when idle (the queue is also woken by
# notifications; the limit only caps polling).
DEV_SERVER_FLAGS = (
    "--log-level",
    "warn",
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
)


def _start_stack(settings: Settings) -> list[subprocess.Popen[bytes]]:
    temporal = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    if temporal is None:
        typer.echo("The `temporal` binary is missing: install Portico with `make run`.", err=True)
        raise typer.Exit(1)
    host, _, port = settings.temporal_address.partition(":")
    server = subprocess.Popen(
        [
            temporal,
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            port or "7233",
            "--ui-port",
            str(settings.temporal_ui_port),
            "--namespace",
            settings.temporal_namespace,
            "--db-filename",
            str(settings.data_dir / "temporal.db"),
            *DEV_SERVER_FLAGS,
        ]
    )
    _wait_for_port(host, int(port or 7233), server)
    me = [sys.executable, "-m", "core.cli"]
    return [server, subprocess.Popen([*me, "worker"]), subprocess.Popen([*me, "api"])]


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the Temporal dev server did not open {host}:{port} within {timeout:.0f}s")


def _supervise(processes: list[subprocess.Popen[bytes]]) -> None:
    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        typer.echo("A Portico process stopped unexpectedly; shutting down the rest.", err=True)
    except KeyboardInterrupt:
        typer.echo("\nStopping Portico…")
    finally:
        for process in reversed(processes):  # API first, the Temporal server last
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@app.command("verify-pdf")
def verify_pdf_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the PDF to check"),
) -> None:
    """Print every signature in a PDF and whether the file matches Portico's record; exit 1 if one fails."""
    from activities.verification import describe, trust_roots, verify_pdf

    settings = get_settings()
    resources = Resources.from_settings(settings)
    with Session(resources.engine) as db:
        report = verify_pdf(file.read_bytes(), trust_roots(settings), db)
    typer.echo(describe(report, str(file)))
    raise typer.Exit(0 if report.all_signatures_hold else 1)


@app.command("export-record")
def export_record_command(
    engagement_id: int = typer.Argument(..., help="the engagement's number"),
    output: Path | None = typer.Option(None, "--output", "-o", help="zip to write"),
) -> None:
    """Write an engagement's e-signature record (sealed PDFs, certificate, JSON record) to a zip file."""
    from activities.records import RecordNotReady, export_record

    resources = Resources.from_settings(get_settings())
    target = output or Path(f"portico-engagement-{engagement_id}-record.zip")
    with Session(resources.engine) as db:
        try:
            archive = export_record(db, resources.store, engagement_id)
        except LookupError:
            typer.echo(f"There is no engagement {engagement_id}.", err=True)
            raise typer.Exit(1) from None
        except RecordNotReady as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    target.write_bytes(archive)
    typer.echo(f"Wrote {target} ({len(archive):,} bytes).")


@app.command("import-engagements")
def import_engagements_command(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="CSV, one row per return"
    ),
    preparer: str = typer.Option(..., "--preparer", help="email of the preparer importing (their firm's)"),
    check_only: bool = typer.Option(False, "--check", help="check every row and create nothing"),
) -> None:
    """Create engagements from a tax software's CSV export; every row is checked before anything is
    created, and importing the same file again creates nothing twice."""
    import asyncio

    # Imported here: the import service pulls in the API layer, which the other commands don't need.
    from api.services import preparer_import as importer
    from core.actor import Actor
    from core.models import ImportBatch
    from workflows.client import connect

    resources = Resources.from_settings(get_settings())
    with Session(resources.engine, expire_on_commit=False) as db:
        who = db.exec(select(Preparer).where(Preparer.email == preparer.strip().lower())).first()
        if who is None or not who.active:
            typer.echo(f"There is no active preparer {preparer}.", err=True)
            raise typer.Exit(1)
        check = importer.check_file(db, resources, who, file.read_bytes(), file.name)
        if check.errors:
            for line, errors in check.errors_by_line():
                for error in errors:
                    typer.echo(f"line {line}: {error.column}: {error.message}", err=True)
            typer.echo(f"{len(check.errors)} problem(s): nothing was imported.", err=True)
            raise typer.Exit(1)
        new = check.new_rows
        typer.echo(f"{len(check.rows)} row(s) checked: {len(new)} new, {check.already} already imported.")
        if check_only or not new:
            return
        actor = Actor(kind="preparer", id=str(who.id), user_agent="portico import-engagements")
        with typer.progressbar(length=len(new), label="Creating engagements") as bar:

            async def run() -> ImportBatch:
                client = await connect(resources.settings, resources.cipher)
                return await importer.run_import(
                    db, client, resources, actor, who, check, source="cli", progress=lambda *_: bar.update(1)
                )

            batch = asyncio.run(run())
    typer.echo(f"Created {batch.created} engagement(s); {batch.skipped} already imported.")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
