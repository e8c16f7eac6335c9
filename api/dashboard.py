"""The status dashboard: filters, search, sort and paging over the workflow's projection, always indexed.

Every query starts with the firm (`firm_id = ?`), and every sortable column has an index that starts with
the firm and ends with the engagement id (see `EngagementStatus`), so a page is an index range scan
however large the firm is. Search matches word prefixes in `EngagementSearchTerm`, itself an index range.
Sorting by stage follows the pipeline (not the alphabet): the per-stage counts the page shows anyway say
which stages the page spans, and each stage is read through its own index.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, intersect
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from core.models import EngagementSearchTerm, EngagementStatus

STAGE_ORDER = (
    "created",
    "invited",
    "expired",
    "registered",
    "verified",
    "documents_sent",
    "signing",
    "signed",
    "completed",
    "needs_attention",
    "cancelled",
)
STAGE_LABELS = {
    "created": "Not invited yet",
    "invited": "Link sent",
    "expired": "Link expired",
    "registered": "Account created",
    "verified": "Verified",
    "documents_sent": "Documents transferred",
    "signing": "Signing",
    "signed": "Signed",
    "completed": "Completed",
    "needs_attention": "Needs attention",
    "cancelled": "Cancelled",
}
# The step indicator: what the preparer follows on every row.
STEPS = (
    ("invited", "Link sent"),
    ("registered", "Account created"),
    ("verified", "Verified"),
    ("documents_sent", "Documents transferred"),
    ("signed", "Signed"),
    ("completed", "Completed"),
)
SIGNER_STEP_LABELS = {
    "created": "not invited yet",
    "invited": "link sent",
    "expired": "link expired",
    "registered": "account created",
    "verified": "verified",
}

_S = EngagementStatus
SORT_COLUMNS: dict[str, Any] = {
    "id": _S.engagement_id,
    "taxpayer": _S.taxpayer_name,
    "year": _S.tax_year,
    "waiting_on": _S.waiting_on,
    "since": _S.waiting_since,
    "reminders": _S.reminders_sent,
    "activity": _S.last_activity_at,
}
SORTS = (*SORT_COLUMNS, "stage")
PER_PAGE_CHOICES = (25, 50, 100)
MAX_SEARCH_TOKENS = 4
SEARCH_IDS_LIMIT = 2000  # up to this many matches, the page query gets them as a list of ids


@dataclass(frozen=True)
class DashboardQuery:
    """What the preparer asked for; `parse` turns loose query-string values into a valid query."""

    stage: str | None = None
    preparer_id: int | None = None
    search: str = ""
    sort: str = "activity"
    descending: bool = True
    page: int = 1
    per_page: int = 25

    @classmethod
    def parse(
        cls,
        *,
        stage: str | None = None,
        preparer: str | int | None = None,
        q: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        page: int | str | None = None,
        per_page: int | str | None = None,
    ) -> DashboardQuery:
        chosen_sort = sort if sort in SORTS else "activity"
        default_desc = chosen_sort in ("activity", "reminders")
        return cls(
            stage=stage if stage in STAGE_LABELS else None,
            preparer_id=_positive(preparer),
            search=(q or "").strip()[:100],
            sort=chosen_sort,
            descending=order == "desc" if order in ("asc", "desc") else default_desc,
            page=_positive(page) or 1,
            per_page=min(_positive(per_page) or 25, 200),
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string for this query with some parts changed (links: sort, page, stage)."""
        values: dict[str, Any] = {
            "stage": self.stage,
            "preparer": self.preparer_id,
            "q": self.search,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            "page": self.page,
            "per_page": self.per_page,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "", 0)}


def _positive(value: str | int | None) -> int | None:
    try:
        number = int(value) if value not in (None, "") else 0
    except ValueError:
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    state: str  # "done", "current", "todo", "stopped"


@dataclass
class DashboardRow:
    status: EngagementStatus
    preparer_name: str
    steps: list[Step]
    signer_notes: list[str] = field(default_factory=list)

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS.get(self.status.stage, self.status.stage)


@dataclass
class DashboardPage:
    rows: list[DashboardRow]
    total: int  # rows matching every filter
    counts: dict[str, int]  # per stage, matching every filter but the stage
    query: DashboardQuery

    @property
    def all_count(self) -> int:
        return sum(self.counts.values())

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


# ---- search --------------------------------------------------------------------------------------------


def _word(text: str) -> str:
    """Case-, accent- and punctuation-free, like `normalise_name`: "O'Neil" and "oneil" match."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def search_terms(first_name: str, last_name: str, email: str | None, phone: str | None) -> set[str]:
    """The words one signer can be found by: each name word, the email, the phone's digits."""
    terms = {_word(w) for w in re.split(r"[\s\-]+", f"{first_name} {last_name}")}
    if email:
        terms.add(email.strip().lower())
    if phone:
        digits = re.sub(r"\D", "", phone)
        national = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        terms |= {digits, national, digits[-4:]}
    return {t[:120] for t in terms if t}


def search_tokens(text: str) -> list[str]:
    """What was typed, as the prefixes to look up: one email, one phone number, or name words."""
    text = text.strip()
    if not text:
        return []
    if "@" in text:
        return [text.lower()[:120]]
    digits = re.sub(r"\D", "", text)
    if re.fullmatch(r"[\d\s()+.\-]+", text) and len(digits) >= 3:
        return [digits]
    words = [_word(w) for w in re.split(r"[\s\-]+", text)]
    return [w for w in words if w][:MAX_SEARCH_TOKENS]


def _prefix_upper(prefix: str) -> str:
    """The smallest string above every string starting with `prefix`, in code point (= UTF-8 byte) order."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _matching(firm_id: int, token: str) -> SelectOfScalar[int]:
    term = col(EngagementSearchTerm.term)
    return select(EngagementSearchTerm.engagement_id).where(
        EngagementSearchTerm.firm_id == firm_id, term >= token, term < _prefix_upper(token)
    )


# ---- the queries ---------------------------------------------------------------------------------------


def _found(firm_id: int, tokens: list[str]) -> Any:
    """The engagements matching every word: one index range per word, intersected."""
    matches = [_matching(firm_id, token) for token in tokens]
    return matches[0] if len(matches) == 1 else intersect(*matches)


def search_ids(db: Session, firm_id: int, query: DashboardQuery) -> list[int] | None:
    """The ids a search matches, when they are few: the page query then fetches exactly those rows
    (a planner can't estimate how few an intersection of prefixes leaves). None: no search, or too many."""
    tokens = search_tokens(query.search)
    if not tokens:
        return None
    found = _found(firm_id, tokens).subquery()
    ids = list(db.exec(select(found.c.engagement_id).limit(SEARCH_IDS_LIMIT + 1)).all())
    return ids if len(ids) <= SEARCH_IDS_LIMIT else None


def _conditions(
    firm_id: int, query: DashboardQuery, *, with_stage: bool, ids: Sequence[int] | None = None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [col(_S.firm_id) == firm_id]
    if query.preparer_id:
        conditions.append(col(_S.preparer_id) == query.preparer_id)
    tokens = search_tokens(query.search)
    if ids is not None:
        conditions.append(col(_S.engagement_id).in_(list(ids)))
    elif tokens:
        conditions.append(col(_S.engagement_id).in_(_found(firm_id, tokens)))
    if with_stage and query.stage:
        conditions.append(col(_S.stage) == query.stage)
    return conditions


def counts_statement(firm_id: int, query: DashboardQuery, ids: Sequence[int] | None = None) -> Any:
    """Rows per stage under every filter except the stage (the counts across the top)."""
    conditions = _conditions(firm_id, query, with_stage=False, ids=ids)
    return select(_S.stage, func.count()).where(*conditions).group_by(_S.stage)


def rows_statement(
    firm_id: int, query: DashboardQuery, offset: int, limit: int, ids: Sequence[int] | None = None
) -> SelectOfScalar[Any]:
    """One page sorted by a column (any sort but "stage")."""
    column = col(SORT_COLUMNS[query.sort])
    ident = col(_S.engagement_id)
    order = (column.desc(), ident.desc()) if query.descending else (column.asc(), ident.asc())
    conditions = _conditions(firm_id, query, with_stage=True, ids=ids)
    return select(_S).where(*conditions).order_by(*order).offset(offset).limit(limit)


def stage_statement(
    firm_id: int, query: DashboardQuery, stage: str, offset: int, limit: int, ids: Sequence[int] | None = None
) -> SelectOfScalar[Any]:
    """Part of a page sorted by stage: one stage, longest waiting first (or last, descending)."""
    since, ident = col(_S.waiting_since), col(_S.engagement_id)
    order = (since.desc(), ident.desc()) if query.descending else (since.asc(), ident.asc())
    conditions = [*_conditions(firm_id, query, with_stage=False, ids=ids), col(_S.stage) == stage]
    return select(_S).where(*conditions).order_by(*order).offset(offset).limit(limit)


def stage_counts(
    db: Session, firm_id: int, query: DashboardQuery, ids: Sequence[int] | None = None
) -> dict[str, int]:
    found = {stage: int(n) for stage, n in db.exec(counts_statement(firm_id, query, ids)).all()}
    ordered = {stage: found.get(stage, 0) for stage in STAGE_ORDER}
    ordered.update({s: n for s, n in sorted(found.items()) if s not in ordered})
    return ordered


def page_rows(
    db: Session, firm_id: int, query: DashboardQuery, counts: dict[str, int], ids: Sequence[int] | None = None
) -> list[Any]:
    offset = (query.page - 1) * query.per_page
    if query.sort != "stage":
        return list(db.exec(rows_statement(firm_id, query, offset, query.per_page, ids)).all())
    stages = [query.stage] if query.stage else [s for s, n in counts.items() if n]
    if query.descending:
        stages.reverse()
    rows: list[Any] = []
    for stage in stages:
        in_stage = counts.get(stage, 0)
        if offset >= in_stage:
            offset -= in_stage
            continue
        wanted = query.per_page - len(rows)
        rows += db.exec(stage_statement(firm_id, query, stage, offset, wanted, ids)).all()
        offset = 0
        if len(rows) >= query.per_page:
            break
    return rows


def load_dashboard(
    db: Session, firm_id: int, query: DashboardQuery, preparer_names: dict[int, str] | None = None
) -> DashboardPage:
    """The page of the dashboard the query asks for (the last page if it asks beyond the end)."""
    ids = search_ids(db, firm_id, query)
    counts = stage_counts(db, firm_id, query, ids)
    total = counts.get(query.stage, 0) if query.stage else sum(counts.values())
    pages = max(1, -(-total // query.per_page))
    if query.page > pages:
        query = DashboardQuery(**{**query.__dict__, "page": pages})
    names = preparer_names or {}
    rows = [
        DashboardRow(row, names.get(row.preparer_id, ""), steps_of(row), signer_notes(row))
        for row in page_rows(db, firm_id, query, counts, ids)
    ]
    return DashboardPage(rows=rows, total=total, counts=counts, query=query)


# ---- the step indicator --------------------------------------------------------------------------------


def _detail(row: EngagementStatus) -> dict[str, str]:
    try:
        value = json.loads(row.detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def steps_reached(stage: str, detail: dict[str, str]) -> int:
    """How many of STEPS are done. Read from the per-signer detail, so a stalled or cancelled
    engagement still shows how far it got."""
    if stage == "completed":
        return 6
    to_sign, signed = _int(detail.get("documents_to_sign")), _int(detail.get("documents_signed"))
    if stage == "signed" or (to_sign and signed >= to_sign):
        return 5
    if stage in ("documents_sent", "signing") or _int(detail.get("documents")):
        return 4
    step = detail.get("taxpayer_step") or stage
    return {"verified": 3, "registered": 2, "invited": 1, "expired": 1}.get(step, 0)


def steps_of(row: EngagementStatus) -> list[Step]:
    return steps_for(row.stage, _detail(row))


def steps_for(stage: str, detail: dict[str, str]) -> list[Step]:
    reached = steps_reached(stage, detail)
    closed = stage in ("cancelled", "completed")
    stalled = stage in ("needs_attention", "expired")
    steps = []
    for index, (key, label) in enumerate(STEPS):
        if index < reached:
            state = "done"
        elif index == reached and not closed:
            state = "stopped" if stalled else "current"
        else:
            state = "todo"
        steps.append(Step(key, label, state))
    return steps


def signer_notes(row: EngagementStatus) -> list[str]:
    """Where the spouse stands, when it differs from the taxpayer (joint returns)."""
    detail = _detail(row)
    spouse = detail.get("spouse_step")
    if not spouse or not row.spouse_name or spouse == detail.get("taxpayer_step"):
        return []
    return [f"Spouse: {SIGNER_STEP_LABELS.get(spouse, spouse)}"]


def all_terms(people: Iterable[tuple[str, str, str | None, str | None]]) -> set[str]:
    terms: set[str] = set()
    for first, last, email, phone in people:
        terms |= search_terms(first, last, email, phone)
    return terms
