"""The inbox page is a constant number of queries (at most 12) whatever the page size."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories

MAX_QUERIES = 12


@pytest.fixture
def big_inbox(inbox):
    """Enough conversations, tags and assignees that an N+1 anywhere would show."""
    tags = [factories.TagFactory.create(office=inbox.office, name=f"Topic {i}") for i in range(5)]
    for i in range(120):
        c = factories.ConversationFactory.create(
            constituent__office=inbox.office,
            constituent__phone=f"+1303555{i:04d}",
            queue=inbox.casework if i % 2 else inbox.press,
            assignee=inbox.staff if i % 3 else inbox.other_staff,
            last_message_preview=f"About the water bill, message {i}",
            last_message_channel="sms",
        )
        c.tags.add(tags[i % 5], tags[(i + 1) % 5])
        factories.MessageFactory.create(conversation=c, body=f"About the water bill, message {i}")
    return inbox


def count_queries(client: Any, params: dict[str, Any]) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/o/alpha/", params)
    assert response.status_code == 200
    return len(captured), response


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": "water"},
        {"tag": "TAG", "assignee": "me", "queue": "QUEUE", "district": "unknown", "opted_out": "no"},
        {"q": "water bill", "status": "any", "since": "2000-01-01", "channel": "sms"},
    ],
    ids=["default", "search", "filters", "search+filters"],
)
@pytest.mark.parametrize("cached_rail", [True, False], ids=["rail-cached", "rail-cold"])
def test_query_count_is_constant_and_small_whatever_the_page_size(
    big_inbox, params, cached_rail, private_cache
):
    placeholders = {
        "TAG": str(big_inbox.office.tags.get(name="Topic 1").pk),
        "QUEUE": str(big_inbox.casework.pk),
    }
    params = {key: placeholders.get(value, value) for key, value in params.items()}
    client = big_inbox.client_for(big_inbox.staff)
    counts = {}
    for size in (5, 50, 200):
        if not cached_rail:
            private_cache.clear()
        else:
            client.get("/o/alpha/", {**params, "size": size})  # warm the rail counts
        counts[size], response = count_queries(client, {**params, "size": size})
        if size == 5 and params.get("q") is None and "tag" not in params:
            assert len(response.context["page"].conversations) == 5
    assert len(set(counts.values())) == 1, counts
    assert counts[200] <= MAX_QUERIES, counts


def test_query_count_assertion_with_pytest_django(big_inbox, django_assert_max_num_queries, private_cache):
    client = big_inbox.client_for(big_inbox.staff)
    private_cache.clear()
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get("/o/alpha/", {"size": 200, "q": "water"})
    assert len(response.context["page"].conversations) == 121  # and Pat's "clean water bill"


def test_updates_poll_and_api_are_constant_too(big_inbox, django_assert_max_num_queries):
    client = big_inbox.client_for(big_inbox.staff)
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get("/o/alpha/updates/", {"size": 200, "sig": "x"})
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get("/api/v1/offices/alpha/conversations/", {"size": 200})
    assert len(response.json()["results"]) == 124
