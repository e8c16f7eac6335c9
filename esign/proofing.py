"""Identity proofing before a remote signature: knowledge-based authentication (KBA) providers.

IRS Pub 1345 asks, for a Form 8879 or 8878 signed remotely, that each signer's identity be verified by
knowledge-based authentication (or an equivalent check) and the result kept in the e-signature record.
A provider asks a *set* of multiple-choice questions about the person and grades the answers; the rules
around it (5 questions, 3 right to pass, 3 sets, then paper) are `services.proofing`'s.

Two providers share one interface (`IdentityProofing`):
- `DevProofing` (`dev`): deterministic, for development and tests, and **not a real identity check**. Its
  right answers come from what the preparer entered (street, city, ZIP code, date of birth); the wrong
  choices come from the fixture "bureau" file `esign/dev_bureau.json`.
- `HttpProofing` (`http`): a firm's own bureau gateway, spoken to over the JSON contract in
  `docs/identity-proofing.md`. The person's details (with the full SSN) go only to the provider.

What Portico keeps of a set is the provider's check id, the outcome and the provider's reference id. The
questions are fetched again from the provider when shown; the answers go straight to the provider and are
never stored or logged.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import random
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

QUESTIONS_PER_SET = 5
Outcome = Literal["passed", "failed"]
BUREAU_FILE = Path(__file__).with_name("dev_bureau.json")
NONE_OF_THE_ABOVE = "None of the above"


class ProofingUnavailable(Exception):
    """The provider did not answer, or answered outside its contract: try again later; no set is used."""


class UnknownCheck(Exception):
    """The provider does not know this check (expired, or never started there)."""


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    state: str
    zip: str


@dataclass(frozen=True)
class Person:
    """What a provider needs to find the person at its bureau. Sent to the provider, kept nowhere else
    unencrypted."""

    first_name: str
    last_name: str
    ssn: str
    date_of_birth: dt.date
    address: Address


@dataclass(frozen=True)
class Choice:
    id: str
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class Check:
    """A set of questions the provider opened: its id (kept by Portico) and the questions (shown only)."""

    check_id: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Graded:
    """The provider's verdict on a set: how many answers were right, and its reference for the set."""

    correct: int
    asked: int
    reference_id: str


class IdentityProofing(Protocol):
    name: str
    is_real: bool
    """False for the development provider: the pages say it is not a real identity check."""

    def start(self, person: Person, reference: str) -> Check:
        """Opens a new set of questions about the person; `reference` is Portico's own id of the set."""
        ...

    def questions(self, check_id: str, person: Person) -> Check:
        """The questions of an open set again (Portico does not keep them)."""
        ...

    def grade(self, check_id: str, person: Person, answers: dict[str, str]) -> Graded:
        """Grades the answers (question id -> choice id). A set is graded once; again answers the same."""
        ...


# ---- dev: a deterministic fixture bureau ------------------------------------------------------------------


@cache
def _bureau() -> dict[str, list[str]]:
    data = json.loads(BUREAU_FILE.read_text())
    return {key: list(data[key]) for key in ("streets", "cities", "zip_codes")}


@dataclass(frozen=True)
class _Asked:
    question: Question
    right: str  # the right choice's id


@dataclass
class DevProofing:
    """Questions about the street, city, ZIP code, birth year and birth month the preparer entered, each
    among four wrong choices from the fixture bureau (and sometimes "None of the above", when the person's
    own answer is left out). Deterministic for a check id and person, so nothing about a set is stored."""

    name: str = "dev"
    is_real: bool = False

    def start(self, person: Person, reference: str) -> Check:
        return self.questions(f"dev-{secrets.token_hex(8)}", person)

    def questions(self, check_id: str, person: Person) -> Check:
        return Check(check_id, tuple(asked.question for asked in self._asked(check_id, person)))

    def grade(self, check_id: str, person: Person, answers: dict[str, str]) -> Graded:
        if not check_id.startswith("dev-"):
            raise UnknownCheck(check_id)
        asked = self._asked(check_id, person)
        correct = sum(1 for a in asked if answers.get(a.question.id) == a.right)
        reference = "DEV-" + hashlib.sha256(check_id.encode()).hexdigest()[:10].upper()
        return Graded(correct=correct, asked=len(asked), reference_id=reference)

    def right_answers(self, check_id: str, person: Person) -> dict[str, str]:
        """The right choice of each question: what a developer (or a test) who knows the person picks."""
        return {a.question.id: a.right for a in self._asked(check_id, person)}

    def _asked(self, check_id: str, person: Person) -> list[_Asked]:
        seed = hashlib.sha256(
            "\x00".join(
                (check_id, person.last_name.lower(), person.ssn, person.date_of_birth.isoformat())
            ).encode()
        ).digest()
        rng = random.Random(seed)
        bureau = _bureau()
        born = person.date_of_birth
        street = _street_name(person.address.street)
        topics = [
            ("Which of these streets have you lived on?", street, bureau["streets"]),
            (
                "In which of these cities have you lived?",
                person.address.city.strip().title(),
                bureau["cities"],
            ),
            ("Which of these ZIP codes has been yours?", person.address.zip.strip()[:5], bureau["zip_codes"]),
            (
                "In which year were you born?",
                str(born.year),
                [str(born.year + d) for d in (-4, -3, -2, -1, 1, 2, 3, 4)],
            ),
            ("In which month were you born?", calendar.month_name[born.month], list(calendar.month_name)[1:]),
        ]
        asked = []
        for number, (text, truth, pool) in enumerate(topics, start=1):
            decoys = rng.sample([p for p in pool if p.lower() != truth.lower()], 4)
            hidden = rng.random() < 0.2  # the truth left out: "None of the above" is right
            shown = [*decoys, truth] if not hidden else decoys
            rng.shuffle(shown)
            shown.append(NONE_OF_THE_ABOVE)
            choices = tuple(Choice(chr(ord("a") + i), t) for i, t in enumerate(shown))
            right = next(c.id for c in choices if c.text == (NONE_OF_THE_ABOVE if hidden else truth))
            asked.append(_Asked(Question(f"q{number}", text, choices), right))
        return asked


def _street_name(street: str) -> str:
    """ "1200 Oak Ridge Rd Apt 4" -> "Oak Ridge Rd": the street without the house number or unit."""
    words = street.strip().split()
    while words and any(ch.isdigit() for ch in words[0]):
        words = words[1:]
    for i, word in enumerate(words):
        if word.lower().strip(".,#") in {"apt", "unit", "suite", "ste"} or word.startswith("#"):
            words = words[:i]
            break
    return " ".join(words).strip(",").title() or street.strip()


# ---- http: a firm's bureau gateway ----------------------------------------------------------------------


@dataclass
class HttpProofing:
    """The JSON contract of `docs/identity-proofing.md`, over HTTPS with a bearer token."""

    base_url: str
    token: str
    timeout: float = 10.0
    transport: httpx.BaseTransport | None = None
    name: str = "http"
    is_real: bool = True

    def start(self, person: Person, reference: str) -> Check:
        body = {
            "reference": reference,
            "questions": QUESTIONS_PER_SET,
            "person": {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "ssn": person.ssn,
                "date_of_birth": person.date_of_birth.isoformat(),
                "address": {
                    "street": person.address.street,
                    "city": person.address.city,
                    "state": person.address.state,
                    "zip": person.address.zip,
                },
            },
        }
        return _check(self._call("POST", "/checks", body, expect=201))

    def questions(self, check_id: str, person: Person) -> Check:
        return _check(self._call("GET", f"/checks/{_path_id(check_id)}", None, expect=200))

    def grade(self, check_id: str, person: Person, answers: dict[str, str]) -> Graded:
        body = {"answers": [{"question_id": q, "choice_id": c} for q, c in sorted(answers.items())]}
        data = self._call("POST", f"/checks/{_path_id(check_id)}/answers", body, expect=200)
        try:
            return Graded(int(data["correct"]), int(data["asked"]), str(data["reference_id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofingUnavailable("the identity provider's answer was not understood") from exc

    def _call(self, method: str, path: str, body: object, *, expect: int) -> dict[str, Any]:
        url = self.base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ProofingUnavailable(f"the identity provider did not answer ({type(exc).__name__})") from exc
        if response.status_code == 404:
            raise UnknownCheck(path)
        if response.status_code != expect:
            # The body is not logged or passed on: a provider's error may repeat what it was sent.
            raise ProofingUnavailable(f"the identity provider answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise ProofingUnavailable("the identity provider's answer was not JSON") from exc
        if not isinstance(data, dict):
            raise ProofingUnavailable("the identity provider's answer was not a JSON object")
        return data


def _path_id(check_id: str) -> str:
    if not check_id or not all(ch.isalnum() or ch in "-_." for ch in check_id):
        raise UnknownCheck(check_id)
    return check_id


def _check(data: dict[str, Any]) -> Check:
    try:
        questions = tuple(
            Question(
                str(q["id"]),
                str(q["text"]),
                tuple(Choice(str(c["id"]), str(c["text"])) for c in q["choices"]),
            )
            for q in data["questions"]
        )
        check_id = _path_id(str(data["check_id"]))
    except (KeyError, TypeError, UnknownCheck) as exc:
        raise ProofingUnavailable("the identity provider's questions were not understood") from exc
    if not questions or any(len(q.choices) < 2 for q in questions):
        raise ProofingUnavailable("the identity provider sent no questions to ask")
    return Check(check_id, questions)


PROVIDERS = ("dev", "http")
