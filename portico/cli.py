"""The `portico` command: `up` starts everything on embedded defaults; the rest start one part each."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer
from sqlmodel import Session, select

from core import migrations
from core.config import Settings, get_settings
from core.context import Resources
from core.logs import configure_logging
from core.models import Firm, Preparer
from core.passwords import hash_password, password_problems
from portico import dev_stack

app = typer.Typer(
    help="Portico: client portal and e-signature pipeline for tax preparers.", no_args_is_help=True
)
DEMO_EMAIL = "demo@portico.localhost"
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="the revision to reach; the code's head by default"),
) -> None:
    """Bring the database's tables up to this version of Portico (a first-release database included).
    Run it before starting the new version's API and workers; running it again changes nothing."""
    before, after = _upgrade_database(get_settings(), revision)
    if before.current == after.current:
        typer.echo(f"The database is already at {after.describe()}.")
    else:
        typer.echo(f"Upgraded the database from {before.current or 'nothing'} to {after.describe()}.")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and whether it is this version's head (exit 1 if not)."""
    state = migrations.current_state(get_settings().database_url)
    typer.echo(state.describe())
    raise typer.Exit(0 if state.at_head else 1)


def _upgrade_database(
    settings: Settings, revision: str = "head"
) -> tuple[migrations.SchemaState, migrations.SchemaState]:
    try:
        return migrations.upgrade(settings.database_url, revision)
    except migrations.SchemaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


def _require_current_schema(settings: Settings) -> None:
    """The API and workers run only on a database at the code's head: no silent create_all, no surprises."""
    try:
        migrations.check_schema(settings.database_url)
    except migrations.SchemaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@audit_app.command("verify")
def audit_verify(
    anchor: list[str] = typer.Option(
        [], "--anchor", help="SEQ:LINK, the audit log head a certificate of completion printed (repeatable)"
    ),
) -> None:
    """Chain any new entries, then prove the whole audit log is intact (exit 1 naming the first bad entry)."""
    from core import audit_chain

    try:
        anchors = [audit_chain.ChainAnchor.parse(text) for text in anchor]
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    resources = Resources.from_settings(get_settings())
    key = audit_chain.chain_key(resources.cipher)  # from the master key: never stored in the database
    while audit_chain.seal_pending(resources.engine, key):
        pass
    report = audit_chain.verify(
        resources.engine, key, legacy_entries=resources.settings.audit_legacy_entries, anchors=anchors
    )
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

    settings = get_settings()
    _require_current_schema(settings)
    configure_logging(settings.log_format, settings.log_level)
    main(settings)


@app.command()
def api(
    host: str | None = None,
    port: int | None = None,
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        envvar="PORTICO_API_WORKERS",
        help="processes serving the API on the one port; one per core in production [PORTICO_API_WORKERS]",
    ),
) -> None:
    """Run the web and API server (uvicorn on uvloop and httptools; `--workers N` processes)."""
    from portico.serving import APP_FACTORY, ServeOptions, serve

    settings = get_settings()
    _require_current_schema(settings)
    configure_logging(settings.log_format, settings.log_level)
    options = ServeOptions(
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level,
    )
    serve(APP_FACTORY, options)


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
def up(
    port: int | None = typer.Option(
        None, "--port", help="port of the pages and the API [PORTICO_API_PORT; default 8000]"
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="folder of the database, documents, dev keys and Temporal's history [PORTICO_DATA_DIR; ./var]",
    ),
    temporal_port: int | None = typer.Option(
        None, "--temporal-port", help="port of the Temporal dev server [PORTICO_TEMPORAL_ADDRESS; 7233]"
    ),
    temporal_ui_port: int | None = typer.Option(
        None, "--temporal-ui-port", help="port of the Temporal web UI [PORTICO_TEMPORAL_UI_PORT; 8233]"
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="address in invitation links [PORTICO_PUBLIC_URL; http://127.0.0.1:<port>]",
    ),
) -> None:
    """Start Portico on embedded defaults: Temporal dev server, worker and API. Ctrl-C stops it all.

    An option sets the PORTICO_* setting in brackets for this run; without it, the environment or .env do.
    """
    _use_up_options(port, data_dir, temporal_port, temporal_ui_port, public_url)
    _ask_for_development()
    settings = get_settings()
    if not settings.is_development:
        typer.echo(
            "`portico up` is the development stack; run `portico worker` and `portico api` instead.", err=True
        )
        raise typer.Exit(2)
    configure_logging(settings.log_format, settings.log_level)
    _upgrade_database(settings)  # the embedded database follows the code by itself
    resources = Resources.from_settings(settings)
    password = ensure_demo_preparer(resources)
    processes = dev_stack.start(settings)
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
    dev_stack.supervise(processes)


def _use_up_options(
    port: int | None,
    data_dir: Path | None,
    temporal_port: int | None,
    temporal_ui_port: int | None,
    public_url: str | None,
) -> None:
    """Puts `up`'s options in the environment, where the settings and the worker and API it starts (they
    inherit it) read them. A new port moves the invitation links along unless a public URL is configured."""
    from dotenv import dotenv_values

    configured = {name.upper(): value for name, value in {**dotenv_values(".env"), **os.environ}.items()}
    chosen: dict[str, object] = {
        "PORTICO_API_PORT": port,
        "PORTICO_DATA_DIR": data_dir.resolve() if data_dir else None,
        "PORTICO_TEMPORAL_UI_PORT": temporal_ui_port,
        "PORTICO_PUBLIC_URL": public_url,
    }
    if temporal_port is not None:
        host = (configured.get("PORTICO_TEMPORAL_ADDRESS") or "127.0.0.1").partition(":")[0]
        chosen["PORTICO_TEMPORAL_ADDRESS"] = f"{host}:{temporal_port}"
    if port is not None and public_url is None and not configured.get("PORTICO_PUBLIC_URL"):
        chosen["PORTICO_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    for name, value in chosen.items():
        if value is not None:
            os.environ[name] = str(value)
    get_settings.cache_clear()


def _ask_for_development() -> None:
    """Settings default to production, so `up` (the development stack) asks for development explicitly,
    unless PORTICO_ENVIRONMENT is set (in the environment or .env): then `up` refuses anything else. The
    worker and API it starts inherit the variable."""
    from dotenv import dotenv_values

    configured = {**dotenv_values(".env"), **os.environ}
    if not any(name.upper() == "PORTICO_ENVIRONMENT" for name in configured):
        os.environ["PORTICO_ENVIRONMENT"] = "development"
        get_settings.cache_clear()


@app.command("verify-pdf")
def verify_pdf_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the PDF to check"),
) -> None:
    """Print every signature in a PDF and whether the file matches Portico's record; exit 1 if one fails."""
    from esign.verification import describe, trust_roots, verify_pdf

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
    from esign.records import RecordNotReady, export_record

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

    from core.actor import Actor
    from core.models import ImportBatch

    # Imported here: the import service pulls in the API layer, which the other commands don't need.
    from services import preparer_import as importer
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


storage_app = typer.Typer(help="Document storage.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")


@storage_app.command("migrate")
def storage_migrate(
    to: str = typer.Option(..., "--to", help="where documents go: s3 (the PORTICO_STORAGE_* bucket)"),
) -> None:
    """Copy every document from the data folder to the bucket, verifying each; safe to run again."""
    from core.storage import open_store
    from core.storage_migration import Outcome, migrate_documents, recorded_digests

    if to != "s3":
        typer.echo("Only `--to s3` is supported: documents move from the data folder to a bucket.", err=True)
        raise typer.Exit(2)
    resources = Resources.from_settings(get_settings())
    try:
        target = open_store(resources.settings, resources.cipher, "s3")
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    source = open_store(resources.settings, resources.cipher, "local")
    typer.echo(f"Copying documents from {source.blobs.describe()} to {target.blobs.describe()}")

    def report_failure(key: str, outcome: Outcome, detail: str) -> None:
        if outcome is Outcome.FAILED:
            typer.echo(f"  FAILED {key}: {detail}", err=True)

    report = migrate_documents(source, target, recorded_digests(resources.engine), on_blob=report_failure)
    for key in report.missing:
        typer.echo(f"  MISSING {key}: recorded in the database, in neither store", err=True)
    typer.echo(report.summary())
    if not report.ok:
        typer.echo("Not every document is in the bucket: fix the above and run the command again.", err=True)
        raise typer.Exit(1)
    if resources.settings.storage != "s3":
        typer.echo("Every document is in the bucket. Set PORTICO_STORAGE=s3 and restart Portico.")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
