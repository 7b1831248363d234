"""Inbox search finds constituents by a fragment: digits anywhere in the phone number, and part of a name
("constituent name and phone"). Never another office's constituents."""

from __future__ import annotations

import pytest

from constituents.models import Constituent
from messages.filters import ConversationFilter
from messages.selectors.inbox import inbox_conversations, inbox_lookups, inbox_page
from messages.selectors.search import search_constituent_ids, search_terms_parse
from tests import factories
from tests.messages.inbox.conftest import Inbox, add_conversation

CANARY = "Zqxcanary"


@pytest.fixture
def world(inbox):
    """Office A's inbox plus Jenny (+14158675309); office B has look-alikes (the same phone, the same names)
    and a canary name."""
    add_conversation(inbox.office, name="Jenny Tutone", phone="+14158675309", body="Hello", minutes_ago=1)
    other = factories.OfficeFactory.create(slug="beta")
    add_conversation(other, name=f"Jenny {CANARY}", phone="+14158675309", body="Hello", minutes_ago=1)
    add_conversation(other, name="Pat Rivera", phone="+12025550101", body="Hello", minutes_ago=1)
    add_conversation(other, name=f"Rivera {CANARY}", phone="+16175550101", body="Hello", minutes_ago=1)
    inbox.other_office = other
    return inbox


def found(inbox: Inbox, query: str) -> list[str]:
    """First names of what the search finds, through the ORed filter and through the page path (which plans
    each branch apart); the two must agree."""
    lookups = inbox_lookups(office=inbox.office)
    filterset = ConversationFilter(
        {"q": query, "status": "any"},
        inbox_conversations(office=inbox.office),
        office=inbox.office,
        user=inbox.staff,
        lookups=lookups,
    )
    assert filterset.is_valid(), filterset.errors
    by_filter = [c.constituent.first_name for c in filterset.qs]
    page = inbox_page(queryset=filterset.page_queryset, cursor=None, size=50, search=filterset.search)
    assert [c.constituent.first_name for c in page.conversations] == by_filter
    return by_filter


def constituent_ids(inbox: Inbox, query: str) -> list[int]:
    ids = search_constituent_ids(office=inbox.office, terms=search_terms_parse(query))
    assert ids is not None
    return ids


@pytest.mark.parametrize(
    "query",
    [
        "5309",
        "8675",
        "675",
        "158",
        "867-5309",
        "(415) 867-5309",
        "415.867.5309",
        "+1 415 867 5309",
        "14158675309",
    ],
)
def test_phone_digits_match_anywhere_in_the_number(world, query):
    assert found(world, query) == ["Jenny"]


def test_fewer_than_three_digits_do_not_search_phones(world):
    assert found(world, "53") == []
    assert found(world, "86") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("iver", ["Pat"]),  # inside the last name
        ("IVER", ["Pat"]),  # any case
        ("vera", ["Pat"]),  # its end
        ("enn", ["Jenny"]),  # inside a first name, three letters
        ("ive era", ["Pat"]),  # every word must match
        ("ri vera", ["Pat"]),  # a short word matches the start of a name word
        ("Pat Rivera", ["Pat"]),
        ("riv", ["Pat"]),  # a prefix still matches
        ("jenny iver", []),  # words of two different people
        ("at iver", []),  # a one- or two-letter word must start a name word
        ("ve", []),
    ],
)
def test_name_fragments_match_inside_names(world, query, expected):
    assert found(world, query) == expected


@pytest.mark.parametrize(
    "query", ["5309", "8675", "iver", "Rivera", "enn", "Pat Rivera", "0101", CANARY[1:5]]
)
def test_fragments_never_match_another_offices_constituents(world, query):
    foreign = set(Constituent.objects.filter(office=world.other_office).values_list("pk", flat=True))
    assert not foreign & set(constituent_ids(world, query))
    assert CANARY not in found(world, query)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a%b", []),
        ("1%2%3", []),
        ("[a-z]", []),
        ("%555%", []),  # not phone-like, and "555" is in no name
        ("iv%er", []),
        ("r_vera", []),  # "r" must start a name word; "_" matches no letter
        ("%iver%", ["Pat"]),  # the word "iver", found literally
    ],
)
def test_like_wildcards_in_a_query_are_literal(world, query, expected):
    assert found(world, query) == expected
