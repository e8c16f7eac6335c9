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
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
    )


@app.command("create-preparer")
def create_preparer(
    email: str = typer.Option(..., help="login email"),
    name: str = typer.Option(..., help="name shown to clients"),
    firm: str = typer.Option(..., help="firm name (created if new)"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create a preparer (and their firm if it does not exist yet)."""
    problems = password_problems(password, email)
    if problems:
        typer.echo(" ".join(problems), err=True)
        raise typer.Exit(2)
    resources = Resources.from_settings(get_settings())
    with Session(resources.engine) as db:
        if db.exec(select(Preparer).where(Preparer.email == email.lower())).first():
            typer.echo(f"A preparer with email {email} already exists.", err=True)
            raise typer.Exit(1)
        _add_preparer(db, firm, email, name, password)
    typer.echo(f"Created preparer {email} in firm {firm!r}.")


def _add_preparer(db: Session, firm_name: str, email: str, name: str, password: str) -> Preparer:
    firm = db.exec(select(Firm).where(Firm.name == firm_name)).first()
    if firm is None:
        firm = Firm(name=firm_name)
        db.add(firm)
        db.flush()
    preparer = Preparer(
        firm_id=firm.id or 0, email=email.lower(), name=name, password_hash=hash_password(password)
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
            _add_preparer(db, "Demo Tax Practice", DEMO_EMAIL, "Demo Preparer", password)
        else:
            existing.password_hash = hash_password(password)
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
        f"  API docs      {base}/docs\n"
        f"  Dev outbox    {base}/dev/outbox   (invitation links and codes land here)\n"
        f"  Temporal UI   http://127.0.0.1:{settings.temporal_ui_port}\n"
        f"  Demo login    {DEMO_EMAIL} / {password}   (POST {base}/api/preparer/login)\n"
        f"  Data folder   {settings.data_dir}\n"
        "Press Ctrl-C to stop.\n"
    )
    _supervise(processes)


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
            "--log-level",
            "warn",
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

    signal.signal(signal.SIGTERM, stop)
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


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
