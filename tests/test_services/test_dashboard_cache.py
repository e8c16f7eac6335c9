"""The dashboard's kept pages (`services.dashboard.PageCache`): the same page while the firm's projection
version stays, a fresh read when it moves or the page ages out, and one read for many preparers at once.
That each write moves the version is tested with the writers (test_activities, test_retention)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from services.dashboard import DashboardPage, DashboardQuery, PageCache


def page(total: int = 0) -> DashboardPage:
    return DashboardPage(rows=[], total=total, counts={}, query=DashboardQuery())


class Reads:
    """A read of the database, counted; `gate` holds it until released (a slow read)."""

    def __init__(self) -> None:
        self.count = 0
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> DashboardPage:
        self.gate.wait(timeout=10)
        self.count += 1
        return page(self.count)


def test_a_page_is_read_once_while_the_version_stays_and_again_when_it_moves() -> None:
    cache, reads = PageCache(), Reads()
    first = cache.get_or_read("k", 1, reads)
    assert cache.get_or_read("k", 1, reads) is first and reads.count == 1
    moved = cache.get_or_read("k", 2, reads)
    assert moved is not first and moved.total == 2 and reads.count == 2
    assert cache.get_or_read("other", 2, reads).total == 3  # each query its own page


def test_a_page_ages_out() -> None:
    cache, reads = PageCache(seconds=0.05), Reads()
    cache.get_or_read("k", 1, reads)
    time.sleep(0.06)
    assert cache.get_or_read("k", 1, reads).total == 2


def test_the_least_recently_used_page_goes_first() -> None:
    cache, reads = PageCache(size=2), Reads()
    cache.get_or_read("a", 1, reads)
    cache.get_or_read("b", 1, reads)
    cache.get_or_read("a", 1, reads)  # used: "b" is now the oldest
    cache.get_or_read("c", 1, reads)
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) is not None and cache.get("c", 1) is not None


def test_twenty_preparers_asking_for_a_missing_page_at_once_read_it_once() -> None:
    cache, reads = PageCache(), Reads()
    reads.gate.clear()  # the first read is slow: the others arrive while it runs
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(cache.get_or_read, "k", 7, reads) for _ in range(20)]
        time.sleep(0.2)
        reads.gate.set()
        pages = [f.result(timeout=10) for f in futures]
    assert reads.count == 1
    assert all(p is pages[0] for p in pages)
