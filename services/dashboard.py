"""The status dashboard: filters, search, sort and paging over the workflow's projection, always indexed.

Every query starts with the firm (`firm_id = ?`), and every sortable column has an index that starts with
the firm and ends with the engagement id (see `EngagementStatus`), so a page is an index range scan
however large the firm is. Search matches word prefixes in `EngagementSearchTerm`, itself an index range.
Sorting by stage follows the pipeline (not the alphabet): the per-stage counts the page shows anyway say
which stages the page spans, and each stage is read through its own index.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, intersect
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from core import projection_version
from core.enums import Role, Stage
from core.identity import normalise_name
from core.models import AccountLink, Engagement, EngagementSearchTerm, EngagementStatus, Signer
from core.progress import Progress
from services.kept import Kept, per_engine

STAGE_ORDER: tuple[str, ...] = (
    Stage.CREATED,
    Stage.INVITED,
    Stage.EXPIRED,
    Stage.REGISTERED,
    Stage.VERIFIED,
    Stage.DOCUMENTS_SENT,
    Stage.SIGNING,
    Stage.SIGNED,
    Stage.COMPLETED,
    Stage.NEEDS_ATTENTION,
    Stage.DECLINED,
    Stage.CANCELLED,
)
STAGE_LABELS: dict[str, str] = {
    Stage.CREATED: "Not invited yet",
    Stage.INVITED: "Link sent",
    Stage.EXPIRED: "Link expired",
    Stage.REGISTERED: "Account created",
    Stage.VERIFIED: "Verified",
    Stage.DOCUMENTS_SENT: "Documents transferred",
    Stage.SIGNING: "Signing",
    Stage.SIGNED: "Signed",
    Stage.COMPLETED: "Completed",
    Stage.NEEDS_ATTENTION: "Needs attention",
    Stage.DECLINED: "Declined",
    Stage.CANCELLED: "Cancelled",
}
# The step indicator: what the preparer follows on every row.
STEPS = (
    (Stage.INVITED, "Link sent"),
    (Stage.REGISTERED, "Account created"),
    (Stage.VERIFIED, "Verified"),
    (Stage.DOCUMENTS_SENT, "Documents transferred"),
    (Stage.SIGNED, "Signed"),
    (Stage.COMPLETED, "Completed"),
)
SIGNER_STEP_LABELS: dict[str, str] = {
    Stage.CREATED: "not invited yet",
    Stage.INVITED: "link sent",
    Stage.EXPIRED: "link expired",
    Stage.REGISTERED: "account created",
    Stage.VERIFIED: "verified",
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
    client: int | None = None  # a client's key (services/clients.py): only that person's returns

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
        client: int | str | None = None,
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
            client=_positive(client),
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
            "client": self.client,
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
    returning: bool = False  # a returning client's: an earlier year's return, or an account from before

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS.get(self.status.stage, self.status.stage)


@dataclass(eq=False)  # one page is itself (kept and looked up by identity: web/preparer/dashboard_pages.py)
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


def name_word(last_name: str) -> str:
    """The search word a last name is always found by (its first word): where a person's other returns are
    looked up (`services.clients`, the Returning badge)."""
    return next((_word(w) for w in re.split(r"[\s\-]+", last_name) if _word(w)), "")[:120]


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
    db: Session,
    firm_id: int,
    query: DashboardQuery,
    preparer_names: dict[int, str] | None = None,
    *,
    client_ids: Sequence[int] | None = None,
) -> DashboardPage:
    """The page of the dashboard the query asks for (the last page if it asks beyond the end).

    `client_ids`: the engagements of the client `query.client` names (`services.clients.engagement_ids`),
    given by the caller, which holds the key to confirm a person's SSN.

    Kept per process under the firm's projection version (`PageCache`): twenty preparers paging and polling
    a firm at rest share one computation of each page, and any change to the firm's rows moves the version."""
    names = preparer_names or {}
    client = tuple(client_ids) if client_ids is not None else None
    key = (firm_id, query, client, tuple(sorted(names.items())))
    cache = per_engine(_PAGES, db.get_bind(), PageCache)
    version = projection_version.current(db, firm_id)  # first: the rows read below are at least as new

    def read() -> DashboardPage:
        page = compute_dashboard(db, firm_id, query, names, client_ids)
        for row in page.rows:  # kept past this session: no longer tied to it (nothing is lazy on the row)
            db.expunge(row.status)
        return page

    return cache.get_or_read(key, version, read)


def compute_dashboard(
    db: Session,
    firm_id: int,
    query: DashboardQuery,
    names: dict[int, str],
    client_ids: Sequence[int] | None = None,
) -> DashboardPage:
    """The page read from the database, every time (`load_dashboard` keeps it)."""
    ids = search_ids(db, firm_id, query)
    if query.client is not None:
        ids = _client_matches(db, firm_id, query, list(client_ids or []), ids)
    counts = stage_counts(db, firm_id, query, ids)
    total = counts.get(query.stage, 0) if query.stage else sum(counts.values())
    pages = max(1, -(-total // query.per_page))
    if query.page > pages:
        query = DashboardQuery(**{**query.__dict__, "page": pages})
    statuses = page_rows(db, firm_id, query, counts, ids)
    returning = returning_ids(db, firm_id, statuses)
    rows = [
        DashboardRow(
            row,
            names.get(row.preparer_id, ""),
            steps_of(row),
            signer_notes(row),
            row.engagement_id in returning,
        )
        for row in statuses
    ]
    return DashboardPage(rows=rows, total=total, counts=counts, query=query)


def _client_matches(
    db: Session, firm_id: int, query: DashboardQuery, client_ids: list[int], ids: list[int] | None
) -> list[int]:
    """The client's engagements that also match the search (a person has a few: always a list of ids)."""
    if ids is not None:
        return [i for i in client_ids if i in set(ids)]
    tokens = search_tokens(query.search)
    if not tokens or not client_ids:
        return client_ids
    found = _found(firm_id, tokens).subquery()
    chosen = found.c.engagement_id
    return list(db.exec(select(chosen).where(chosen.in_(client_ids))).all())


class PageCache(Kept[Hashable, DashboardPage]):
    """Dashboard pages as computed, each under the firm's projection version it was read at
    (`core.projection_version`): a page is computed again once the firm's rows change, and at least once
    a minute whatever happens (its Returning badges come from other tables). Twenty preparers polling a
    firm share one read of each page (`Kept.get_or_read`)."""

    def __init__(self, size: int = 512, seconds: float = 60.0) -> None:
        super().__init__(size, seconds)


_PAGES: weakref.WeakKeyDictionary[Any, PageCache] = weakref.WeakKeyDictionary()


# ---- the Returning badge -------------------------------------------------------------------------------


class ReturningCache:
    """Each engagement's badge as last found, for `seconds`: the dashboard polls every few seconds and
    twenty preparers page through the same rows, while the lookup walks every return filed under each
    last name on the page (tens of milliseconds at 100,000 returns with common names). A badge that
    changes (a return from an earlier year imported later) shows within `seconds`; a new engagement is
    looked up at once. One per process, shared by its threads."""

    def __init__(self, seconds: float = 60.0, size: int = 100_000) -> None:
        self.seconds, self.size = seconds, size
        self._found: OrderedDict[tuple[int, int], tuple[bool, float]] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, firm_id: int, ids: Iterable[int]) -> dict[int, bool]:
        now = time.monotonic()
        with self._lock:
            entries = {eid: self._found.get((firm_id, eid)) for eid in ids}
        return {eid: e[0] for eid, e in entries.items() if e is not None and now - e[1] < self.seconds}

    def remember(self, firm_id: int, flags: dict[int, bool]) -> None:
        now = time.monotonic()
        with self._lock:
            for eid, flag in flags.items():
                self._found[(firm_id, eid)] = (flag, now)
                self._found.move_to_end((firm_id, eid))
            while len(self._found) > self.size:
                self._found.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()


_RETURNING: weakref.WeakKeyDictionary[Any, ReturningCache] = weakref.WeakKeyDictionary()


def returning_ids(db: Session, firm_id: int, rows: Sequence[EngagementStatus]) -> set[int]:
    """The engagements on this page whose taxpayer or spouse is a returning client (`find_returning`),
    remembered a while (`ReturningCache`)."""
    cache = per_engine(_RETURNING, db.get_bind(), ReturningCache)
    known = cache.known(firm_id, [r.engagement_id for r in rows])
    unknown = [r for r in rows if r.engagement_id not in known]
    found = find_returning(db, firm_id, unknown) if unknown else set()
    cache.remember(firm_id, {r.engagement_id: r.engagement_id in found for r in unknown})
    return found | {eid for eid, flag in known.items() if flag}


def find_returning(db: Session, firm_id: int, rows: Sequence[EngagementStatus]) -> set[int]:
    """The engagements of `rows` whose taxpayer or spouse is a returning client: the firm has a return of
    theirs from an earlier year (same last name and last four of the SSN, found through the last name's
    search word: an index range per name), or their client account reaches an earlier year's return.

    A badge, not an identity decision: the full SSN is not compared here (the client page does)."""
    years = {r.engagement_id: r.tax_year for r in rows}
    if not years:
        return set()
    signers = db.exec(select(Signer).where(col(Signer.engagement_id).in_(list(years)))).all()
    if not signers:
        return set()
    returning = _returning_by_account(db, signers, years)
    words = {name_word(s.last_name) for s in signers} - {""}
    digests = {s.ssn_last4_digest for s in signers}
    term = EngagementSearchTerm
    earlier = db.exec(
        select(Signer.last_name, Signer.ssn_last4_digest, Engagement.tax_year)
        .join(term, col(term.engagement_id) == col(Signer.engagement_id))
        .join(Engagement, col(Engagement.id) == col(Signer.engagement_id))
        .where(
            term.firm_id == firm_id,
            col(term.term).in_(words),
            col(Signer.ssn_last4_digest).in_(digests),
            col(Engagement.tax_year) < max(years.values()),
        )
    ).all()
    first_year: dict[tuple[str, str], int] = {}
    for last_name, digest, year in earlier:
        person = (normalise_name(last_name), digest)
        first_year[person] = min(year, first_year.get(person, year))
    for s in signers:
        seen = first_year.get((normalise_name(s.last_name), s.ssn_last4_digest))
        if seen is not None and seen < years[s.engagement_id]:
            returning.add(s.engagement_id)
    return returning


def _returning_by_account(db: Session, signers: Sequence[Signer], years: dict[int, int]) -> set[int]:
    accounts = {
        link.signer_id: link.account_id
        for link in db.exec(
            select(AccountLink).where(col(AccountLink.signer_id).in_([s.id for s in signers]))
        )
    }
    if not accounts:
        return set()
    first_year = dict(
        db.exec(
            select(AccountLink.account_id, func.min(Engagement.tax_year))
            .join(Engagement, col(Engagement.id) == col(AccountLink.engagement_id))
            .where(col(AccountLink.account_id).in_(set(accounts.values())))
            .group_by(col(AccountLink.account_id))
        ).all()
    )
    return {
        s.engagement_id
        for s in signers
        if s.id in accounts
        and first_year.get(accounts[s.id], years[s.engagement_id]) < years[s.engagement_id]
    }


# ---- the step indicator --------------------------------------------------------------------------------


def steps_reached(stage: str, progress: Progress) -> int:
    """How many of STEPS are done. Read from the per-signer progress, so a stalled or cancelled
    engagement still shows how far it got."""
    if stage == Stage.COMPLETED:
        return 6
    if stage == Stage.SIGNED or progress.all_documents_signed:
        return 5
    if stage in (Stage.DOCUMENTS_SENT, Stage.SIGNING) or progress.documents:
        return 4
    step: str = progress.step_of(Role.TAXPAYER) if progress.signer(Role.TAXPAYER) else stage
    return _SIGNER_STEPS_REACHED.get(step, 0)


_SIGNER_STEPS_REACHED: dict[str, int] = {
    Stage.VERIFIED: 3,
    Stage.REGISTERED: 2,
    Stage.INVITED: 1,
    Stage.EXPIRED: 1,
}


def steps_of(row: EngagementStatus) -> list[Step]:
    return steps_for(row.stage, Progress.from_json(row.detail))


def steps_for(stage: str, progress: Progress) -> list[Step]:
    reached = steps_reached(stage, progress)
    closed = stage in (Stage.CANCELLED, Stage.COMPLETED)
    stalled = stage in (Stage.NEEDS_ATTENTION, Stage.EXPIRED, Stage.DECLINED)
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
    progress = Progress.from_json(row.detail)
    spouse = progress.signer(Role.SPOUSE)
    if spouse is None or not row.spouse_name or spouse.step == progress.step_of(Role.TAXPAYER):
        return []
    return [f"Spouse: {SIGNER_STEP_LABELS[spouse.step]}"]


def all_terms(people: Iterable[tuple[str, str, str | None, str | None]]) -> set[str]:
    terms: set[str] = set()
    for first, last, email, phone in people:
        terms |= search_terms(first, last, email, phone)
    return terms
