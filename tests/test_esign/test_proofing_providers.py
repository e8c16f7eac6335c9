"""The identity-proofing providers (esign/proofing.py): the deterministic development bureau, and the
`http` contract of docs/identity-proofing.md spoken to a local server that checks every request."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from esign.proofing import (
    NONE_OF_THE_ABOVE,
    Address,
    DevProofing,
    HttpProofing,
    Person,
    ProofingUnavailable,
    UnknownCheck,
)

PERSON = Person(
    "Jordan",
    "O'Neil",
    "123-45-6789",
    dt.date(1984, 3, 9),
    Address("1200 Oak Ridge Rd Apt 4", "Brookline", "MA", "02446"),
)


def test_dev_questions_are_the_same_for_a_set_and_new_for_the_next() -> None:
    dev = DevProofing()
    first = dev.start(PERSON, "engagement-1/taxpayer/set-1")
    assert dev.questions(first.check_id, PERSON) == first  # shown again from the id alone: nothing stored
    assert len(first.questions) == 5
    for question in first.questions:
        texts = [c.text for c in question.choices]
        assert texts[-1] == NONE_OF_THE_ABOVE and len(set(texts)) == len(texts)
    second = dev.start(PERSON, "engagement-1/taxpayer/set-2")
    assert second.check_id != first.check_id
    assert second.questions != first.questions  # another order of choices, other wrong choices


def test_dev_grades_right_and_wrong_answers() -> None:
    dev = DevProofing()
    check = dev.start(PERSON, "r")
    right = dev.right_answers(check.check_id, PERSON)
    graded = dev.grade(check.check_id, PERSON, right)
    assert (graded.correct, graded.asked) == (5, 5) and graded.reference_id.startswith("DEV-")
    wrong = {
        q: next(c.id for c in question.choices if c.id != right[q])
        for q, question in ((q.id, q) for q in check.questions)
    }
    assert dev.grade(check.check_id, PERSON, wrong).correct == 0
    assert dev.grade(check.check_id, PERSON, {}).correct == 0
    # The right answers are the person's own facts (or None of the above when left out).
    for question in check.questions:
        chosen = next(c.text for c in question.choices if c.id == right[question.id])
        assert chosen in {"Oak Ridge Rd", "Brookline", "02446", "1984", "March", NONE_OF_THE_ABOVE}
    with pytest.raises(UnknownCheck):
        dev.grade("not-a-dev-check", PERSON, right)


# ---- http: a local gateway that checks what Portico sends ------------------------------------------------

TOKEN = "gateway-token-123"
QUESTIONS = [
    {"id": f"q{n}", "text": f"Question {n}?", "choices": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]}
    for n in range(1, 6)
]


class Gateway:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.fail_with: int | None = None
        self.garbage = False


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, str]]:
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = b"not json" if state.garbage else json.dumps(body).encode()
            self.send_response(state.fail_with or status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((self.command, self.path, dict(self.headers), body))
            return body

        def do_POST(self) -> None:
            body = self._record()
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._answer(401, {"error": "unauthorized"})
            if self.path == "/kba/checks":
                return self._answer(201, {"check_id": "chk_42", "questions": QUESTIONS})
            if self.path == "/kba/checks/chk_42/answers":
                right = sum(1 for a in body["answers"] if a["choice_id"] == "a")
                return self._answer(200, {"correct": right, "asked": 5, "reference_id": "BUREAU-9"})
            return self._answer(404, {"error": "no such check"})

        def do_GET(self) -> None:
            self._record()
            if self.path == "/kba/checks/chk_42":
                return self._answer(200, {"check_id": "chk_42", "questions": QUESTIONS, "status": "open"})
            return self._answer(404, {"error": "no such check"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/kba/"
    finally:
        server.shutdown()
        server.server_close()


def test_http_contract_start_questions_and_grade(gateway: tuple[Gateway, str]) -> None:
    state, url = gateway
    provider = HttpProofing(url, TOKEN, timeout=5)
    check = provider.start(PERSON, "engagement-7/spouse/set-2")
    assert check.check_id == "chk_42" and [q.id for q in check.questions] == ["q1", "q2", "q3", "q4", "q5"]
    assert provider.questions("chk_42", PERSON) == check
    graded = provider.grade("chk_42", PERSON, {"q1": "a", "q2": "a", "q3": "b", "q4": "a", "q5": "b"})
    assert (graded.correct, graded.asked, graded.reference_id) == (3, 5, "BUREAU-9")

    (m1, p1, h1, started), (m2, p2, h2, _), (m3, p3, h3, answered) = state.requests
    assert (m1, p1, m2, p2, m3, p3) == (
        "POST",
        "/kba/checks",
        "GET",
        "/kba/checks/chk_42",
        "POST",
        "/kba/checks/chk_42/answers",
    )
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in (h1, h2, h3))
    assert h1["Content-Type"] == "application/json"
    assert started == {
        "reference": "engagement-7/spouse/set-2",
        "questions": 5,
        "person": {
            "first_name": "Jordan",
            "last_name": "O'Neil",
            "ssn": "123-45-6789",
            "date_of_birth": "1984-03-09",
            "address": {
                "street": "1200 Oak Ridge Rd Apt 4",
                "city": "Brookline",
                "state": "MA",
                "zip": "02446",
            },
        },
    }
    # The answers go as question/choice ids only; the person is not sent again.
    assert answered == {
        "answers": [
            {"question_id": "q1", "choice_id": "a"},
            {"question_id": "q2", "choice_id": "a"},
            {"question_id": "q3", "choice_id": "b"},
            {"question_id": "q4", "choice_id": "a"},
            {"question_id": "q5", "choice_id": "b"},
        ]
    }


def test_http_provider_failures_are_clear_and_never_guessed(gateway: tuple[Gateway, str]) -> None:
    state, url = gateway
    with pytest.raises(ProofingUnavailable, match="HTTP 401"):
        HttpProofing(url, "wrong-token").start(PERSON, "r")
    with pytest.raises(UnknownCheck):
        HttpProofing(url, TOKEN).questions("chk_gone", PERSON)
    with pytest.raises(UnknownCheck):
        HttpProofing(url, TOKEN).questions("../../etc/passwd", PERSON)  # never put into a path
    state.fail_with = 503
    with pytest.raises(ProofingUnavailable, match="HTTP 503"):
        HttpProofing(url, TOKEN).start(PERSON, "r")
    state.fail_with, state.garbage = None, True
    with pytest.raises(ProofingUnavailable, match="not JSON"):
        HttpProofing(url, TOKEN).start(PERSON, "r")
    with pytest.raises(ProofingUnavailable, match="did not answer"):
        HttpProofing("http://127.0.0.1:9/", TOKEN, timeout=2).start(PERSON, "r")
