"""A search with no words: only stop characters match nothing (and the page says why); an emoji or a symbol is
looked for literally in the office's message bodies; a blank box is no search at all."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from messages.filters import ConversationFilter
from messages.models import Conversation, ConversationStatus
from messages.selectors.inbox import inbox_conversations, inbox_lookups, inbox_page
from messages.selectors.search import search_terms_parse
from tests import factories
from tests.messages.inbox.conftest import add_conversation

API = "/api/v1/offices/alpha/conversations/"
STOP_ONLY = ['"<>&|!:*()', "%", "*", "(", "_", "\\", "-", "!!! ???", "“”", "\u200d", "<->", "'"]
PRAY = "🙏🏽"


def filterset_for(inbox: Any, data: dict[str, Any]) -> ConversationFilter:
    filterset = ConversationFilter(
        data,
        inbox_conversations(office=inbox.office),
        office=inbox.office,
        user=inbox.staff,
        lookups=inbox_lookups(office=inbox.office),
    )
    assert filterset.is_valid(), filterset.errors
    return filterset


def page_names(inbox: Any, data: dict[str, Any]) -> list[str]:
    """What the inbox page shows (the keyset page), not only the FilterSet's plain queryset."""
    filterset = filterset_for(inbox, data)
    page = inbox_page(queryset=filterset.page_queryset, cursor=None, search=filterset.search)
    return [c.constituent.first_name for c in page.conversations]


def qs_names(inbox: Any, data: dict[str, Any]) -> list[str]:
    return [c.constituent.first_name for c in filterset_for(inbox, data).qs]


@pytest.fixture
def praying(inbox):
    """One conversation of the office whose message holds the emoji, another office's too."""
    conversation = add_conversation(
        inbox.office, name="Ana Ortiz", phone="+12025550177", body=f"Thank you so much {PRAY}", minutes_ago=50
    )
    foreign = factories.ConversationFactory.create()
    factories.MessageFactory.create(conversation=foreign, body=f"Elsewhere {PRAY}")
    return conversation


@pytest.mark.parametrize("query", STOP_ONLY)
def test_only_stop_characters_is_a_search_for_nothing(query):
    terms = search_terms_parse(query)
    assert not terms.is_blank
    assert terms.is_unsearchable
    assert terms.literal == ""


@pytest.mark.parametrize(
    ("query", "literal"),
    [
        (PRAY, PRAY),
        ("🙏", "🙏"),
        ("€", "€"),
        (" ™ ", "™"),
        (f'"{PRAY}"', PRAY),  # a quoted phrase, to websearch: the quotes are not looked for
        ("(€)", "€"),
        ("€%", "€"),
        ("€%€", "€%€"),  # inside, everything is looked for as typed
        ("👩\u200d👩\u200d👧", "👩\u200d👩\u200d👧"),  # a joined emoji keeps its joiners
    ],
)
def test_an_emoji_or_a_symbol_is_searched_literally(query, literal):
    terms = search_terms_parse(query)
    assert (terms.literal, terms.is_unsearchable, terms.words) == (literal, False, ())


@pytest.mark.parametrize("query", ["", "   ", "\t\n", "\x00"])
def test_a_blank_box_is_no_search(query):
    terms = search_terms_parse(query)
    assert terms.is_blank
    assert not terms.is_unsearchable


def test_words_keep_the_full_text_search():
    assert search_terms_parse("water 🙏🏽").literal == ""
    assert search_terms_parse("water 🙏🏽").words == ("water",)


@pytest.mark.parametrize("query", STOP_ONLY)
def test_stop_characters_match_no_conversation(inbox, query):
    data = {"q": query, "status": "any"}
    assert page_names(inbox, data) == []
    assert qs_names(inbox, data) == []


@pytest.mark.parametrize("query", ["", "   "])
def test_a_blank_search_is_the_plain_inbox(inbox, query):
    assert page_names(inbox, {"q": query}) == ["Pat", "Sam", "Dana", "Jo"]
    assert filterset_for(inbox, {"q": query}).unsearchable_query is None


@pytest.mark.parametrize("query", ["%", '"<>&|!:*()'])
def test_the_inbox_page_says_why_it_shows_nothing(inbox, query):
    response = inbox.client_for(inbox.staff).get("/o/alpha/", {"q": query, "status": "any"})
    body = response.content.decode()
    assert response.status_code == 200
    assert '<tr class="row' not in body
    escaped = query.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert f"“{escaped}” has no words to search for. Showing no conversations." in body
    # The search box keeps what was typed.
    assert f'value="{escaped}"' in body


def test_the_count_and_the_api_agree_with_the_page(inbox):
    client = inbox.client_for(inbox.staff)
    assert client.get("/o/alpha/count/", {"q": "%", "status": "any"}).content.decode().strip() == (
        "0 conversations"
    )
    assert client.get(API, {"q": "%", "status": "any"}).json()["results"] == []
    assert client.get(API, {"q": "*"}).json()["results"] == []


def test_acting_on_all_matching_stop_characters_changes_nothing(inbox):
    open_before = Conversation.objects.exclude(status=ConversationStatus.CLOSED).count()
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/",
        {"action": "close", "scope": "matching", "f_q": "%", "f_status": "any", "next": "/o/alpha/"},
        follow=True,
    )
    assert "Nothing was changed. No conversations match this filter." in response.content.decode()
    assert Conversation.objects.exclude(status=ConversationStatus.CLOSED).count() == open_before


def test_an_emoji_finds_the_one_conversation_containing_it(inbox, praying):
    data = {"q": PRAY, "status": "any"}
    assert page_names(inbox, data) == ["Ana"]
    assert qs_names(inbox, data) == ["Ana"]
    client = inbox.client_for(inbox.staff)
    assert [r["id"] for r in client.get(API, data).json()["results"]] == [praying.pk]
    assert client.get("/o/alpha/count/", data).content.decode().strip() == "1 conversation"


def test_an_emoji_hit_is_shown_and_marked(inbox, praying):
    factories.MessageFactory.create(conversation=praying, body="A later message", created_at=timezone.now())
    response = inbox.client_for(inbox.staff).get("/o/alpha/", {"q": PRAY, "status": "any"})
    body = response.content.decode()
    assert body.count('<tr class="row') == 1
    assert f"Thank you so much <mark>{PRAY}</mark>" in body
    assert "has no words to search for" not in body


def test_a_literal_hit_is_escaped_before_it_is_marked(inbox):
    add_conversation(
        inbox.office, name="Max Bell", phone="+12025550178", body="<b>€</b> & more", minutes_ago=60
    )
    body = inbox.client_for(inbox.staff).get("/o/alpha/", {"q": "€", "status": "any"}).content.decode()
    assert "&lt;b&gt;<mark>€</mark>&lt;/b&gt; &amp; more" in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [("€%€", ["Per"]), ("€_€", ["Und"]), ("€\\€", ["Back"]), ("€", ["Per", "Und", "Back", "Plain"])],
)
def test_like_wildcards_in_a_literal_search_match_only_themselves(inbox, query, expected):
    for minutes, (name, body) in enumerate(
        [
            ("Per Cent", "€%€ off"),
            ("Und Score", "€_€ here"),
            ("Back Slash", "€\\€ there"),
            ("Plain Euro", "€x€ and €€€"),
        ]
    ):
        add_conversation(
            inbox.office, name=name, phone=f"+1202555019{minutes}", body=body, minutes_ago=60 + minutes
        )
    assert page_names(inbox, {"q": query, "status": "any"}) == expected
    assert qs_names(inbox, {"q": query, "status": "any"}) == expected


def test_a_literal_search_keeps_keyset_pagination(inbox):
    for i in range(5):
        add_conversation(
            inbox.office, name=f"P{i} Q", phone=f"+120255502{i:02d}", body=f"ok {PRAY}", minutes_ago=i
        )
    filterset = filterset_for(inbox, {"q": PRAY})
    seen, cursor = [], None
    while True:
        page = inbox_page(queryset=filterset.page_queryset, cursor=cursor, size=2, search=filterset.search)
        seen += [c.constituent.first_name for c in page.conversations]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["P0", "P1", "P2", "P3", "P4"]


def test_the_literal_search_reads_only_the_offices_messages(inbox, praying):
    """The literal branch filters messages by office and by the conversation tested, bound as parameters."""
    filterset = filterset_for(inbox, {"q": PRAY})
    unsearched = filterset.page_queryset
    (branch,) = filterset.search
    query = unsearched.filter(branch).values("pk")
    sql, params = query.query.sql_with_params()
    assert PRAY not in sql
    assert f"%{PRAY}%" in params
    assert inbox.office.pk in params
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "~~" in plan  # LIKE, on the office's rows
