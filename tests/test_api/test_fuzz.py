"""API fuzzing: schemathesis generates requests from the OpenAPI schema and sends them, with a logged-in
preparer's or verified taxpayer's session, to the real stack (Temporal dev server, worker and API as
processes). No answer may be a 5xx and every answer must match the schema.

PORTICO_FUZZ_CASES sets the per-operation example count (default 45: about 1,100 cases in total).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from journey import PASSWORD, TAXPAYER, Person
from preparer_steps import api_login_sync
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from soak_stack import Stack

pytestmark = pytest.mark.e2e

SAME_ORIGIN = {"sec-fetch-site": "same-origin"}  # what a browser sends on Portico's own requests

PER_OPERATION = int(os.environ.get("PORTICO_FUZZ_CASES", "45"))
SESSION_COOKIE = "portico_session"
# Ending the session would log the fuzzer out: these run without a session.
# Defects the fuzzer found, reported to the lead; each is tolerated only in exactly this shape and printed on
# every run. Delete an entry once it is fixed. (1) a path id beyond 64 bits reaches the database and fails
# with OverflowError: 500 (fix: bound ids, e.g. `Annotated[int, Path(ge=1, le=2**63 - 1)]`, or map
# OverflowError to 404). (2) a service's 422 carries `detail` as a string while the schema documents 422
# only as HTTPValidationError (a list): document the second shape (`responses={422: ...}`) or use another
# status for refusals a person can act on.
KNOWN: dict[str, re.Pattern[str]] = {}  # tolerated defects, by name; empty: every failure fails the test
NO_SESSION = {"/api/preparer/logout", "/api/taxpayer/logout", "/api/taxpayer/logout-everywhere"}


def _outbox(http: httpx.Client, purpose: str, destination: str) -> str:
    for _ in range(200):
        for message in http.get("/api/dev/outbox").json():
            if message["purpose"] == purpose and message["destination"] == destination:
                return str(message["body"])
        time.sleep(0.1)
    raise AssertionError(f"no {purpose} to {destination}")


def _sessions(stack: Stack) -> dict[str, str]:
    """A logged-in preparer and a verified taxpayer on one engagement; answers their session cookies."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "portico.cli",
            "create-preparer",
            "--email",
            "fuzz@firm.test",
            "--name",
            "Fuzz Preparer",
            "--firm",
            "Fuzz Firm",
            "--password",
            PASSWORD,
        ],
        env=stack.env,
        check=True,
        capture_output=True,
    )
    with (
        httpx.Client(base_url=stack.base_url, timeout=60, headers=SAME_ORIGIN) as preparer,
        httpx.Client(base_url=stack.base_url, timeout=60, headers=SAME_ORIGIN) as taxpayer,
    ):
        api_login_sync(preparer, "fuzz@firm.test")
        eid = preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER}).json()["id"]
        assert preparer.post(f"/api/engagements/{eid}/invite", json={"channel": "email"}).status_code == 200
        body = _outbox(preparer, "invite", TAXPAYER["email"])
        token = re.search(r"/invite/([A-Za-z0-9_\-.]+)", body)
        assert token
        reg = taxpayer.post(
            f"/api/invitations/{token.group(1)}/register",
            json=Person(None, TAXPAYER).registration(),  # type: ignore[arg-type]
        )
        assert reg.status_code == 201, reg.text
        assert taxpayer.post("/api/taxpayer/code", json={"channel": "email"}).status_code == 200
        code = re.search(r"\b(\d{6})\b", _outbox(preparer, "code", TAXPAYER["email"]))
        assert code
        assert taxpayer.post("/api/taxpayer/verify", json={"code": code.group(1)}).status_code == 200
        return {
            "preparer": preparer.cookies[SESSION_COOKIE],
            "taxpayer": taxpayer.cookies[SESSION_COOKIE],
        }


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "var", environment="development")
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop()


def test_fuzz_the_api_with_sessions(stack: Stack) -> None:
    cookies = _sessions(stack)
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    cases = 0

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        path = operation.path
        who = "taxpayer" if path.startswith("/api/taxpayer/") else "preparer"
        headers: dict[str, Any] = dict(SAME_ORIGIN)
        if path not in NO_SESSION:
            headers["Cookie"] = f"{SESSION_COOKIE}={cookies[who]}"

        @hsettings(
            max_examples=PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            response = case.call(base_url=stack.base_url, headers=headers, timeout=60)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {exc}"[:600])

        run()

    known: Counter[str] = Counter()
    unknown = []
    for failure in failures:
        kind = next((k for k, pattern in KNOWN.items() if pattern.search(failure)), None)
        if kind:
            known[kind] += 1
        else:
            unknown.append(failure)
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    print(f"fuzz: known defects tolerated: {dict(known)}")
    for failure in sorted(set(failures)):
        print("FUZZ FAILURE", failure.replace("\n", " | ")[:400])
    print(f"fuzz: {cases} cases, statuses {dict(sorted(statuses.items()))}, 5xx: {server_errors}")
    assert cases >= 1000 or PER_OPERATION < 45, cases
    assert server_errors == known["id-overflow"], unknown[:20]
    assert not unknown, "\n".join(sorted(set(unknown))[:30])
