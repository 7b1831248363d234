"""The inbox when its cache Redis is down or hangs: every page still answers, on time, from the database.

The cache is the real Redis behind a TCP proxy (tests/faults.py) that can refuse connections (Redis down) or
accept them and never answer (a partition, a stuck failover). The cache settings are the production ones
(``socket_timeout`` 0.5 s), so the deadlines here are what staff would wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common.caching import cache_outage_forget
from messages.models import ConversationStatus
from messages.services.presence import replying_mark
from tests.faults import TcpProxy
from tests.messages.inbox.conftest import Inbox
from tests.redis_cache import PrivateCache, redis_upstream

# What a page may take when its cache is unreachable: one cache round trip's socket timeout (0.5 s) and the
# page's own work, with room for a loaded machine.
PAGE_DEADLINE_SECONDS = 1.5

# The rail of the conftest inbox, as the database has it (alice's view).
EXPECTED_RAIL = {
    "My conversations": 1,
    "Unassigned": 2,
    "All open": 4,
    "Casework": 1,
    "Press": 0,
    "Health care": 1,
    "Housing": 1,
    "Voicemails": 1,
    "Snoozed": 1,
    "Closed": 1,
}

Outage = Callable[[TcpProxy], None]
OUTAGES = [
    pytest.param(TcpProxy.refuse, id="redis-down"),
    pytest.param(TcpProxy.hang, id="redis-hangs"),
]


@pytest.fixture
def cache_proxy(settings: Any, private_cache: PrivateCache) -> Iterator[TcpProxy]:
    """The cache goes through a proxy in front of the real Redis (same database, same private prefix)."""
    upstream, db = redis_upstream(private_cache.location)
    with TcpProxy(upstream=upstream) as proxy:
        default = settings.CACHES["default"]
        settings.CACHES = {"default": {**default, "LOCATION": f"redis://127.0.0.1:{proxy.port}/{db}"}}
        yield proxy


def rail_of(response: Any) -> dict[str, int]:
    return {entry.label: entry.count for group in response.context["rail"].values() for entry in group}


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def office_key(inbox: Inbox) -> str:
    return f"inbox-rail:{inbox.office.pk}:0"  # generation 0: nothing has invalidated this office's counts


# --- the cache is really Redis --------------------------------------------------------------------------


def test_inbox_page_stores_its_rail_counts_in_redis_under_this_tests_prefix(
    inbox: Inbox, private_cache: PrivateCache
) -> None:
    assert private_cache.keys() == []
    response = inbox.client_for(inbox.staff).get("/o/alpha/")
    assert response.status_code == 200
    assert private_cache.keys() == sorted(
        [f"inbox-rail:gen:{inbox.office.pk}", office_key(inbox), f"{office_key(inbox)}:mine:{inbox.staff.pk}"]
    )
    assert private_cache.client.get(private_cache.raw_key(f"inbox-rail:gen:{inbox.office.pk}")) == b"0"


# --- pages during an outage -----------------------------------------------------------------------------


@pytest.mark.parametrize("outage", OUTAGES)
def test_inbox_page_answers_on_time_with_counts_from_the_database_when_the_cache_is_out(
    inbox: Inbox, cache_proxy: TcpProxy, outage: Outage
) -> None:
    client = inbox.client_for(inbox.staff)
    outage(cache_proxy)
    response, seconds = timed(lambda: client.get("/o/alpha/"))
    assert response.status_code == 200
    assert rail_of(response) == EXPECTED_RAIL
    assert "Please support the clean water bill." in response.content.decode()
    assert seconds < PAGE_DEADLINE_SECONDS


@pytest.mark.parametrize("outage", OUTAGES)
def test_rail_counts_fragment_answers_on_time_with_counts_from_the_database_when_the_cache_is_out(
    inbox: Inbox, cache_proxy: TcpProxy, outage: Outage
) -> None:
    client = inbox.client_for(inbox.staff)
    outage(cache_proxy)
    response, seconds = timed(lambda: client.get("/o/alpha/updates/", {"sig": "stale"}))
    assert response.status_code == 200
    assert rail_of(response) == EXPECTED_RAIL
    assert 'id="rail"' in response.content.decode()
    assert seconds < PAGE_DEADLINE_SECONDS


@pytest.mark.parametrize("outage", OUTAGES)
def test_conversation_page_and_its_poll_answer_on_time_without_presence_when_the_cache_is_out(
    inbox: Inbox, cache_proxy: TcpProxy, outage: Outage
) -> None:
    c = inbox.conversations["water"]
    replying_mark(conversation=c, user=inbox.other_staff)  # recorded while Redis answered
    client = inbox.client_for(inbox.staff)
    assert (
        "is replying to this conversation" in client.get(f"/o/alpha/conversations/{c.pk}/").content.decode()
    )
    outage(cache_proxy)
    page, seconds = timed(lambda: client.get(f"/o/alpha/conversations/{c.pk}/"))
    assert page.status_code == 200
    assert seconds < PAGE_DEADLINE_SECONDS
    body = page.content.decode()
    assert "Please support the clean water bill." in body
    assert "is replying to this conversation" not in body  # advisory: no notice rather than a stale one
    poll, seconds = timed(lambda: client.get(f"/o/alpha/conversations/{c.pk}/timeline/"))
    assert poll.status_code == 200
    assert poll.context["replying"] == []
    assert seconds < PAGE_DEADLINE_SECONDS


@pytest.mark.parametrize("outage", OUTAGES)
def test_triage_write_is_saved_and_the_counts_follow_the_database_when_the_cache_is_out(
    inbox: Inbox, cache_proxy: TcpProxy, outage: Outage, django_capture_on_commit_callbacks: Any
) -> None:
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.staff)
    outage(cache_proxy)

    def post_and_commit() -> Any:
        # The on-commit work (dropping the office's cached counts) runs as in production, where the commit
        # happens inside the request; the timing includes it.
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(f"/o/alpha/conversations/{c.pk}/triage/", {"action": "close"})
        assert callbacks, "the triage write scheduled no on-commit work"
        return response

    response, seconds = timed(post_and_commit)
    assert response.status_code == 302
    assert seconds < PAGE_DEADLINE_SECONDS
    c.refresh_from_db()
    assert c.status == ConversationStatus.CLOSED
    after = client.get("/o/alpha/")
    assert rail_of(after) == {**EXPECTED_RAIL, "All open": 3, "Unassigned": 1, "Casework": 0,
                              "Health care": 0, "Closed": 2}  # fmt: skip


@pytest.mark.parametrize("outage", OUTAGES)
def test_reply_heartbeat_answers_on_time_when_the_cache_is_out(
    inbox: Inbox, cache_proxy: TcpProxy, outage: Outage
) -> None:
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.other_staff)
    outage(cache_proxy)
    path = f"/o/alpha/conversations/{c.pk}/presence/"
    typing, seconds = timed(lambda: client.post(path, {"state": "typing"}))
    assert typing.status_code == 204
    assert seconds < PAGE_DEADLINE_SECONDS
    cache_outage_forget()  # so that "idle" asks the cache too, rather than skipping it after "typing" failed
    idle, seconds = timed(lambda: client.post(path, {"state": "idle"}))
    assert idle.status_code == 204
    assert seconds < PAGE_DEADLINE_SECONDS


def test_after_one_failed_cache_call_pages_stop_asking_the_hung_redis_and_answer_at_once(
    settings: Any, inbox: Inbox, cache_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.staff)
    cache_proxy.hang()
    assert client.get("/o/alpha/").status_code == 200  # waits for one socket timeout
    connections = cache_proxy.connections
    pages = [
        ("get", "/o/alpha/"),
        ("get", "/o/alpha/updates/"),
        ("get", f"/o/alpha/conversations/{c.pk}/"),
        ("get", f"/o/alpha/conversations/{c.pk}/timeline/"),
        ("post", f"/o/alpha/conversations/{c.pk}/presence/"),
    ]
    started = time.monotonic()
    assert [getattr(client, method)(path).status_code for method, path in pages] == [200, 200, 200, 200, 204]
    seconds = time.monotonic() - started
    assert cache_proxy.connections == connections  # none of them asked Redis
    timeout = settings.CACHES["default"]["OPTIONS"]["socket_timeout"]
    assert seconds < len(pages) * timeout  # less than they would have waited, one timeout each, without it
    warnings = [r for r in caplog.records if r.name == "common.caching"]
    assert [r.getMessage() for r in warnings] == [
        "cache unavailable (reading the rail counts); not asking it again for 5.0 s"
    ]


# --- after the outage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outage", "recover"),
    [
        pytest.param(TcpProxy.refuse, TcpProxy.accept, id="redis-down-then-back"),
        pytest.param(TcpProxy.hang, TcpProxy.resume, id="redis-hangs-then-answers"),
    ],
)
def test_inbox_page_uses_the_cache_again_once_redis_is_back(
    settings: Any,
    inbox: Inbox,
    cache_proxy: TcpProxy,
    private_cache: PrivateCache,
    outage: Outage,
    recover: Outage,
) -> None:
    settings.CACHE_OUTAGE_SECONDS = 0.2
    client = inbox.client_for(inbox.staff)
    outage(cache_proxy)
    assert client.get("/o/alpha/").status_code == 200
    recover(cache_proxy)
    assert not private_cache.exists(office_key(inbox))
    time.sleep(0.25)  # the process asks the cache again once CACHE_OUTAGE_SECONDS have passed
    response = client.get("/o/alpha/")
    assert response.status_code == 200
    assert rail_of(response) == EXPECTED_RAIL
    assert private_cache.exists(office_key(inbox))
