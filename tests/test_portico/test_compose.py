"""The production deployment (docker-compose.yml, Dockerfile, deploy/) checked without a Docker engine.

The compose file is parsed with PyYAML and its `${...}` references are expanded the way Docker Compose
does, so the checks see what each container would get: the right services, Portico settings that exist
and validate, real `portico` subcommands, pinned images and no committed secrets.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from core.config import Settings
from core.dev_secrets import DEV_KEY_FILE
from portico import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "deploy" / "portico.env.example"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

PORTICO_SERVICES = ("api", "worker")
REQUIRED_SERVICES = ("postgres", "temporal", "temporal-ui", *PORTICO_SERVICES)
SECRET_NAME = re.compile(r"(KEY|PASSWORD|PASSPHRASE|TOKEN|SECRET|PWD)$")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; `$$` is a literal `$`.
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))


# ---- helpers --------------------------------------------------------------------------------------


class MissingVariable(LookupError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expands `${...}` like Docker Compose; a missing required variable raises MissingVariable."""

    def expand(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = env.get(name)
        unset = not value if op in (":-", ":?") else value is None
        if not unset:
            return value or ""
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    pieces = text.split("$$")
    return "$".join(REFERENCE.sub(expand, piece) for piece in pieces)


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def references(node: Any) -> Iterator[re.Match[str]]:
    for text in strings(node):
        yield from REFERENCE.finditer(text)


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def as_argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def settings_field(variable: str) -> str | None:
    """The Settings field a PORTICO_* variable sets, or None when there is none."""
    if not variable.startswith(ENV_PREFIX):
        return None
    field = variable.removeprefix(ENV_PREFIX).lower()
    return field if field in Settings.model_fields else None


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def base_images(instructions: list[tuple[str, str]]) -> list[str]:
    """The images the stages start FROM, leaving out references to earlier stages (`FROM build`)."""
    images, stages = [], set()
    for word, rest in instructions:
        if word == "FROM":
            parts = rest.split()
            if parts[0] not in stages:
                images.append(parts[0])
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
    return images


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1] :]


def exec_form(stage: list[tuple[str, str]], word: str) -> list[str]:
    values = [rest for instruction, rest in stage if instruction == word]
    assert values, f"the final stage of the Dockerfile has no {word}"
    parsed = json.loads(values[-1])  # the exec form: signals reach the process, no shell in between
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


def make_settings(**values: Any) -> Settings:
    """Settings from the arguments and the environment only, never from a .env file."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# What a production deployment must also configure: real message backends and an https address.
PRODUCTION = {
    "environment": "production",
    "public_url": "https://portal.example-cpa.com",
    "email_backend": "smtp",
    "smtp_host": "smtp.example.com",
    "sms_backend": "twilio",
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": "token",
    "twilio_from_number": "+15005550006",
}


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    """The example env file with its blanks filled in, as an operator would."""
    values = read_env_file(ENV_EXAMPLE)
    for name in ("POSTGRES_PASSWORD", "DB_PORTICO_PASSWORD", "DB_TEMPORAL_PASSWORD"):
        values[name] = secrets.token_urlsafe(18)
    values["PORTICO_ENCRYPTION_KEY"] = new_key()
    values["SIGNING_KEY_FILE"] = "/etc/portico/signing-key.pem"
    values["SIGNING_CERT_FILE"] = "/etc/portico/signing-cert.pem"
    values["PORTICO_TWILIO_ACCOUNT_SID"] = "AC" + "0" * 32
    values["PORTICO_TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
    values["PORTICO_TWILIO_FROM_NUMBER"] = "+15005550006"
    return values


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PORTICO_* variable from the shell running the tests leaks into Settings."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return monkeypatch


# ---- the services ---------------------------------------------------------------------------------


def test_the_five_services_exist(services: dict[str, Any]) -> None:
    assert set(REQUIRED_SERVICES) <= set(services)


def test_two_workers_and_one_api(services: dict[str, Any]) -> None:
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "container_name" not in services["worker"]  # a fixed name would forbid a second replica
    assert services["api"].get("deploy", {}).get("replicas", 1) == 1


def test_portico_services_share_one_image_and_a_data_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    version = PYPROJECT["project"]["version"]
    for name in PORTICO_SERVICES:
        service = services[name]
        assert service["build"]["context"] == "."
        assert service["build"].get("dockerfile", "Dockerfile") == DOCKERFILE.name
        assert service["image"] == f"portico:{version}"
        data_dir = environment(service)["PORTICO_DATA_DIR"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert data_dir in mounts, f"{name}: PORTICO_DATA_DIR {data_dir} is not on a volume"
        assert mounts[data_dir] in compose["volumes"], f"{name}: the data folder must be a named volume"
    assert services["api"]["volumes"] == services["worker"]["volumes"]


def test_postgres_has_a_healthcheck_and_a_volume(compose: dict[str, Any], services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    test = as_argv(postgres["healthcheck"]["test"])
    assert "pg_isready" in test
    sources = {v.split(":")[0] for v in postgres["volumes"] if v.split(":")[1] == "/var/lib/postgresql/data"}
    assert sources and sources <= set(compose["volumes"])


def test_depends_on_is_consistent(services: dict[str, Any]) -> None:
    valid = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert condition in valid
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") not in ("always", "unless-stopped")


def _waits_for(services: dict[str, Any], start: str) -> dict[str, set[str]]:
    """Every service `start` waits for (transitively), with the conditions it waits on."""
    seen: dict[str, set[str]] = {}
    todo = [start]
    while todo:
        for target, condition in depends_on(services[todo.pop()]).items():
            if target not in seen:
                todo.append(target)
            seen.setdefault(target, set()).add(condition)
    return seen


@pytest.mark.parametrize("name", PORTICO_SERVICES)
def test_portico_starts_after_a_healthy_postgres_and_temporal(services: dict[str, Any], name: str) -> None:
    waits = _waits_for(services, name)
    assert "service_healthy" in waits["postgres"]
    assert "service_healthy" in waits["temporal"]


def test_a_one_shot_migrate_service_upgrades_the_schema_first(
    services: dict[str, Any], example_env: dict[str, str]
) -> None:
    """`portico db upgrade` runs once, to completion, before any API or worker (they refuse an older
    schema); it is the same image with the same database as they are, and is not restarted once done."""
    migrate = services["migrate"]
    assert as_argv(migrate["command"]) == ["db", "upgrade"]
    assert migrate["image"] == services["api"]["image"] and migrate["build"] == services["api"]["build"]
    assert not str(migrate.get("restart", "no")).startswith(("always", "unless-stopped"))
    assert "deploy" not in migrate and "ports" not in migrate and "healthcheck" not in migrate
    assert "service_healthy" in _waits_for(services, "migrate")["postgres"]
    url = environment(migrate)["PORTICO_DATABASE_URL"]
    for name in PORTICO_SERVICES:
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name
        assert interpolate(environment(services[name])["PORTICO_DATABASE_URL"], example_env) == interpolate(
            url, example_env
        )
    assert "api" not in depends_on(services["worker"]), "workers no longer wait for the API to make tables"


def test_migrate_runs_a_real_portico_command(
    services: dict[str, Any], dockerfile: list[tuple[str, str]]
) -> None:
    argv = [*exec_form(final_stage(dockerfile), "ENTRYPOINT"), *as_argv(services["migrate"]["command"])]
    assert argv == ["portico", "db", "upgrade"]
    result = CliRunner().invoke(cli.app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_migrate_environment_builds_valid_production_settings(
    services: dict[str, Any], example_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    for variable, value in environment(services["migrate"]).items():
        clean_env.setenv(variable, interpolate(value, example_env))
    settings = make_settings()
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+psycopg://portico:")


def test_bind_mounts_exist_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"


def test_declared_secrets_and_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name, service in services.items():
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in compose.get("secrets", {}), f"{name} uses undeclared secret {secret_name}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose.get("volumes", {}), f"{name} uses undeclared volume {source}"


# ---- Portico's settings ---------------------------------------------------------------------------


def test_every_portico_variable_is_a_settings_field(compose: dict[str, Any]) -> None:
    assert ENV_PREFIX == "PORTICO_"
    named = {key for service in compose["services"].values() for key in environment(service)}
    named |= {match["name"] for match in references(compose)}
    portico = sorted(name for name in named if name.startswith(ENV_PREFIX))
    assert portico
    unknown = [name for name in portico if settings_field(name) is None]
    assert not unknown, f"not fields of core.config.Settings: {unknown}"


@pytest.mark.parametrize("name", PORTICO_SERVICES)
def test_production_variables_are_set(
    services: dict[str, Any], name: str, example_env: dict[str, str]
) -> None:
    env = environment(services[name])
    assert env["PORTICO_ENVIRONMENT"] == "production"

    url = make_url(interpolate(env["PORTICO_DATABASE_URL"], example_env))
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres" and url.host in services
    assert url.port in (None, 5432)
    assert url.password == example_env["DB_PORTICO_PASSWORD"]

    host, _, port = interpolate(env["PORTICO_TEMPORAL_ADDRESS"], example_env).partition(":")
    assert host == "temporal" and host in services
    assert port == "7233"

    key = REFERENCE.fullmatch(env["PORTICO_ENCRYPTION_KEY"])
    assert key is not None and key["name"] == "PORTICO_ENCRYPTION_KEY"
    assert key["op"] == ":?", "the encryption key must be required, with no default"

    assert REFERENCE.fullmatch(env["PORTICO_PUBLIC_URL"]), "the public URL is the operator's, not ours"
    with pytest.raises(MissingVariable, match="PORTICO_ENCRYPTION_KEY"):
        interpolate(env["PORTICO_ENCRYPTION_KEY"], {})


@pytest.mark.parametrize("name", PORTICO_SERVICES)
def test_compose_environment_builds_valid_production_settings(
    services: dict[str, Any], name: str, example_env: dict[str, str], clean_env: pytest.MonkeyPatch
) -> None:
    for variable, value in environment(services[name]).items():
        clean_env.setenv(variable, interpolate(value, example_env))
    settings = make_settings()
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+psycopg://portico:")
    assert settings.temporal_address == "temporal:7233"
    assert settings.public_url.startswith("https://")
    assert len(settings.master_key()) == 32
    assert settings.email_backend != "outbox" and settings.sms_backend != "outbox"
    if name == "worker":  # it signs PDFs: key and certificate come from Docker secrets
        assert settings.signing_key == Path("/run/secrets/portico_signing_key")
        assert settings.signing_cert == Path("/run/secrets/portico_signing_cert")
        assert settings.signing_chain == []


def test_worker_signing_files_are_mounted_secrets(services: dict[str, Any]) -> None:
    worker = services["worker"]
    env = environment(worker)
    mounted = {s if isinstance(s, str) else s.get("target", s["source"]) for s in worker["secrets"]}
    for variable in ("PORTICO_SIGNING_KEY", "PORTICO_SIGNING_CERT"):
        path = Path(env[variable])
        assert path.parent == Path("/run/secrets") and path.name in mounted


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    documented = read_env_file(ENV_EXAMPLE)
    used = {match["name"] for match in references(compose)}
    missing = sorted(used - set(documented))
    assert not missing, f"deploy/portico.env.example does not mention {missing}"
    for variable in documented:
        if variable.startswith(ENV_PREFIX):
            assert settings_field(variable), f"{variable} is not a field of core.config.Settings"
        if SECRET_NAME.search(variable):
            assert documented[variable] == "", f"the example must not carry a value for {variable}"


def test_required_variables_fail_fast(compose: dict[str, Any]) -> None:
    required = {match["name"] for match in references(compose) if match["op"] in (":?", "?")}
    assert {"PORTICO_ENCRYPTION_KEY", "PORTICO_PUBLIC_URL", "POSTGRES_PASSWORD"} <= required
    for text in strings(compose):  # a bare $NAME or a malformed ${...} would be expanded by surprise
        leftover = "".join(REFERENCE.sub("", piece) for piece in text.split("$$"))
        assert "$" not in leftover, f"a `$` that is not a ${{...}} reference: {text}"


# ---- commands ---------------------------------------------------------------------------------------


def _portico_commands() -> dict[str, Any]:
    group = typer.main.get_command(cli.app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_portico_console_script_is_the_typer_app() -> None:
    assert PYPROJECT["project"]["scripts"]["portico"] == "portico.cli:app"
    module, _, attribute = PYPROJECT["project"]["scripts"]["portico"].partition(":")
    assert module == cli.__name__ and isinstance(getattr(cli, attribute), typer.Typer)


@pytest.mark.parametrize("name", PORTICO_SERVICES)
def test_services_run_real_portico_subcommands(
    services: dict[str, Any], dockerfile: list[tuple[str, str]], name: str
) -> None:
    stage = final_stage(dockerfile)
    service = services[name]
    entrypoint = as_argv(service.get("entrypoint")) or exec_form(stage, "ENTRYPOINT")
    command = as_argv(service.get("command")) if "command" in service else exec_form(stage, "CMD")
    argv = [*entrypoint, *command]
    assert argv[0] == "portico"
    assert argv[1] == name and argv[1] in _portico_commands()
    result = CliRunner().invoke(cli.app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_api_listens_where_compose_looks(services: dict[str, Any], example_env: dict[str, str]) -> None:
    api = services["api"]
    argv = as_argv(api["command"])
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    port = str(Settings.model_fields["api_port"].default)
    if "--port" in argv:
        port = argv[argv.index("--port") + 1]
    port = environment(api).get("PORTICO_API_PORT", port)
    assert any(str(mapping).endswith(f":{port}") for mapping in api["ports"])
    assert f"127.0.0.1:{port}/readyz" in " ".join(as_argv(api["healthcheck"]["test"]))


def test_the_healthcheck_paths_exist(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    from portico.app import create_app

    settings = make_settings(environment="test", data_dir=tmp_path, encryption_key=new_key())
    paths = {getattr(route, "path", "") for route in create_app(settings).routes}
    assert {"/healthz", "/readyz"} <= paths
    assert "/metrics" not in paths  # on its own port, never the public one


def test_metrics_stay_on_the_compose_network(services: dict[str, Any], example_env: dict[str, str]) -> None:
    """Each Portico container serves /metrics on its own port, which no `ports:` entry publishes; the
    worker's health check is that endpoint (it answers once the worker is connected to Temporal)."""
    api_env = {k: interpolate(v, example_env) for k, v in environment(services["api"]).items()}
    worker_env = {k: interpolate(v, example_env) for k, v in environment(services["worker"]).items()}
    api_port, worker_port = api_env["PORTICO_METRICS_PORT"], worker_env["PORTICO_WORKER_METRICS_PORT"]
    assert api_env["PORTICO_METRICS_HOST"] == "0.0.0.0" and api_env["PORTICO_LOG_FORMAT"] == "json"
    for name, port in (("api", api_port), ("worker", worker_port)):
        published = [str(mapping) for mapping in services[name].get("ports", [])]
        assert not any(mapping.split(":")[-1].split("/")[0] == port for mapping in published), name
    assert f"127.0.0.1:{worker_port}/metrics" in " ".join(as_argv(services["worker"]["healthcheck"]["test"]))


def test_dockerfile_default_command_is_a_portico_subcommand(dockerfile: list[tuple[str, str]]) -> None:
    stage = final_stage(dockerfile)
    entrypoint = exec_form(stage, "ENTRYPOINT")
    assert entrypoint == ["portico"]
    assert "portico" in PYPROJECT["project"]["scripts"]
    command = exec_form(stage, "CMD")
    assert command[0] in _portico_commands()
    assert CliRunner().invoke(cli.app, [*command, "--help"]).exit_code == 0


# ---- the image ------------------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_python_image(dockerfile: list[tuple[str, str]]) -> None:
    bases = base_images(dockerfile)
    assert bases
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    for base in bases:
        assert base.startswith(f"python:{minimum}-slim"), base
    assert any("pip install ." in rest for word, rest in dockerfile if word == "RUN")

    stage = final_stage(dockerfile)
    users = [rest.split(":")[0] for word, rest in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    user_at = max(i for i, (word, _) in enumerate(stage) if word == "USER")
    entry_at = max(i for i, (word, _) in enumerate(stage) if word == "ENTRYPOINT")
    assert user_at < entry_at
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "PORTICO_ENVIRONMENT=production" in env


def test_dockerignore_lets_in_the_packages_and_keeps_out_local_state() -> None:
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and p[0] != "#"]
    assert patterns[0] == "*", "the .dockerignore is an allow-list"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= allowed, f"packages the build would not see: {packages - allowed}"
    assert {"pyproject.toml", PYPROJECT["project"]["readme"]} <= allowed
    assert not allowed & {".env", "var", ".git", ".venv", "deploy", "tests"}


def test_the_image_gets_every_data_file() -> None:
    """`pip install .` (not editable, unlike development) ships only what package-data names.

    Globs are matched per package as setuptools does: relative to the package folder, `*` does not
    descend into sub-folders (`static/*` misses `static/vendor/...`), `**` does.
    """
    package_data = PYPROJECT["tool"]["setuptools"].get("package-data", {})
    for package in (p.rstrip("*.") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]):
        folder = ROOT / package
        files = {
            path
            for path in folder.rglob("*")
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
        }
        shipped = {path for pattern in package_data.get(package, []) for path in folder.glob(pattern)}
        missing = sorted(str(path.relative_to(ROOT)) for path in files - shipped)
        assert not missing, f"left out of the installed package (add to package-data.{package}): {missing}"


def test_images_are_pinned(services: dict[str, Any], dockerfile: list[tuple[str, str]]) -> None:
    images = {name: service["image"] for name, service in services.items() if "image" in service}
    assert set(services) == set(images) | {n for n, s in services.items() if "build" in s}
    for image in [*images.values(), *base_images(dockerfile)]:
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag, f"{image} has no tag"
        assert tag != "latest" and re.match(r"\d+\.\d+", tag), f"{image} is not pinned to a version"


def test_temporal_tools_match_the_server_version(services: dict[str, Any]) -> None:
    server_tag = services["temporal"]["image"].rpartition(":")[2]
    images = [service.get("image", "") for service in services.values()]
    tools = [image for image in images if image.startswith("temporalio/admin-tools:")]
    assert tools and all(image.endswith(f":{server_tag}") for image in tools)


def test_temporal_server_uses_the_postgres_service(services: dict[str, Any]) -> None:
    for name in ("temporal", "temporal-schema"):
        env = environment(services[name])
        assert env["DB"] in ("postgres12", "postgres12_pgx")
        assert env["POSTGRES_SEEDS"] == "postgres" and "postgres" in services
        assert env.get("DB_PORT", "5432") == "5432"
    waits = _waits_for(services, "temporal")
    assert "service_healthy" in waits["postgres"]
    assert environment(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"
    dynamic = environment(services["temporal"])["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["temporal"]["volumes"]}
    config = yaml.safe_load((ROOT / mounts[dynamic]).read_text())
    assert config["frontend.enableUpdateWorkflowExecution"][0]["value"] is True


# ---- no secrets committed -------------------------------------------------------------------------


def test_no_secret_values_are_committed(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        mounted = {
            f"/run/secrets/{s if isinstance(s, str) else s['source']}" for s in service.get("secrets", [])
        }
        for variable, value in environment(service).items():
            if not SECRET_NAME.search(variable):
                continue
            if value in mounted:
                continue  # a path to a Docker secret, not the secret itself
            reference = REFERENCE.fullmatch(value)
            assert reference, f"{name}: {variable} must be a ${{...}} reference, not a value"
            field = settings_field(variable)
            if field and Settings.model_fields[field].annotation is SecretStr:
                assert not (reference["op"] in (":-", "-") and reference["arg"]), (
                    f"{name}: {variable} has a default value"
                )
        database_url = environment(service).get("PORTICO_DATABASE_URL")
        if database_url:
            password = database_url.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2]
            assert REFERENCE.fullmatch(password), f"{name}: the database password is written out"


# ---- production settings refuse unsafe keys -------------------------------------------------------


def test_production_without_an_encryption_key_is_refused(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="PORTICO_ENCRYPTION_KEY is required"):
        make_settings(environment="production", data_dir=tmp_path)


def test_production_refuses_the_generated_development_key(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    development = make_settings(environment="development", data_dir=tmp_path)
    development.master_key()  # generates the development key into the data folder
    dev_key = (tmp_path / DEV_KEY_FILE).read_text().strip()

    with pytest.raises(ValidationError, match="generated development key"):
        make_settings(**PRODUCTION, data_dir=tmp_path, encryption_key=dev_key)

    real = make_settings(**PRODUCTION, data_dir=tmp_path, encryption_key=new_key())
    assert real.master_key() != base64.urlsafe_b64decode(dev_key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email_backend": "outbox"}, "outbox backend only stores"),
        ({"sms_backend": "outbox"}, "outbox backend only stores"),
        ({"smtp_host": ""}, "PORTICO_SMTP_HOST"),
        ({"twilio_auth_token": ""}, "PORTICO_TWILIO_AUTH_TOKEN"),
        ({"email_backend": "sendgrid"}, "PORTICO_SENDGRID_API_KEY"),
        ({"public_url": "http://portal.example-cpa.com"}, "https://"),
        ({"encryption_key": "too-short"}, "32 bytes"),
    ],
)
def test_production_refuses_settings_that_would_quietly_fail(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, change: dict[str, str], message: str
) -> None:
    values: dict[str, Any] = {**PRODUCTION, "data_dir": tmp_path, "encryption_key": new_key(), **change}
    with pytest.raises(ValidationError, match=message):
        make_settings(**values)
