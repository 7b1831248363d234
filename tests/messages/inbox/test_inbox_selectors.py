"""The inbox's reads: the FilterSet, search, keyset pagination, the rail counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from messages.filters import ConversationFilter
from messages.models import Channel
from messages.selectors.inbox import Cursor, inbox_conversations, inbox_lookups, inbox_page
from messages.selectors.rail import rail_counts, rail_counts_compute, rail_counts_invalidate
from messages.selectors.search import search_snippets, search_terms_parse
from messages.services import triage
from tests import factories
from tests.messages.inbox.conftest import Inbox, add_conversation


def names(inbox: Inbox, data: dict[str, Any], user: Any = None) -> list[str]:
    lookups = inbox_lookups(office=inbox.office)
    filterset = ConversationFilter(
        data,
        inbox_conversations(office=inbox.office),
        office=inbox.office,
        user=user or inbox.staff,
        lookups=lookups,
    )
    assert filterset.is_valid(), filterset.errors
    return [c.constituent.first_name for c in filterset.qs]


def test_default_view_is_open_and_pending_newest_first(inbox):
    assert names(inbox, {}) == ["Pat", "Sam", "Dana", "Jo"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"status": "snoozed"}, ["Lee"]),
        ({"status": "closed"}, ["Ari"]),
        ({"status": "any"}, ["Pat", "Sam", "Dana", "Lee", "Ari", "Jo"]),
        ({"assignee": "me"}, ["Sam"]),
        ({"assignee": "none"}, ["Pat", "Dana"]),
        ({"queue": "none"}, ["Sam", "Dana", "Jo"]),
        ({"channel": "voicemail"}, ["Dana"]),
        ({"district": "in"}, ["Sam"]),
        ({"district": "out"}, ["Dana"]),
        ({"district": "unknown"}, ["Pat", "Jo"]),
        ({"opted_out": "yes"}, ["Jo"]),
        ({"opted_out": "no"}, ["Pat", "Sam", "Dana"]),
    ],
)
def test_each_filter(inbox, data, expected):
    assert names(inbox, data) == expected


def test_queue_tag_and_assignee_filters_take_this_offices_ids(inbox):
    assert names(inbox, {"queue": str(inbox.casework.pk)}) == ["Pat"]
    assert names(inbox, {"tag": str(inbox.housing.pk)}) == ["Sam"]
    assert names(inbox, {"assignee": str(inbox.other_staff.pk)}) == ["Jo"]


def test_another_offices_tag_id_is_an_invalid_filter_not_an_ignored_one(inbox):
    foreign = factories.TagFactory.create(name="Housing")
    lookups = inbox_lookups(office=inbox.office)
    filterset = ConversationFilter(
        {"tag": str(foreign.pk)},
        inbox_conversations(office=inbox.office),
        office=inbox.office,
        user=inbox.staff,
        lookups=lookups,
    )
    assert not filterset.is_valid()
    assert "tag" in filterset.errors


def test_date_range_uses_the_office_day(inbox):
    today = timezone.localdate(timezone=__import__("zoneinfo").ZoneInfo(inbox.office.time_zone))
    add_conversation(
        inbox.office, name="Old Timer", phone="+12025550199", body="hello", minutes_ago=60 * 24 * 10
    )
    assert "Old" not in names(inbox, {"since": today.isoformat()})
    assert names(inbox, {"until": (today - timedelta(days=5)).isoformat()}) == ["Old"]
    # Absurd dates do not overflow.
    assert names(inbox, {"since": "0001-01-01", "until": "9999-12-31"})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("water", ["Pat"]),  # message body
        ("waters", ["Pat"]),  # stemmed
        ("medicare", ["Dana"]),  # voicemail transcript
        ("riv", ["Pat"]),  # name prefix
        ("Sam Lee", ["Sam"]),  # full name
        ("0103", ["Dana"]),  # last digits of the phone
        ("(202) 555-0102", ["Sam"]),  # a formatted national number
        ("+1 202 555 0101", ["Pat"]),  # full E.164, spaced
        ('"clean water"', ["Pat"]),  # phrase
        ("landlord -rent", []),  # websearch exclusion
    ],
)
def test_search(inbox, query, expected):
    assert names(inbox, {"q": query}) == expected


@pytest.mark.parametrize(
    "query",
    [
        "'",
        '"',
        "\\",
        "&",
        "|",
        "!",
        "(",
        ")",
        "<->",
        ":*",
        "a:* & !b | (c <-> d)",
        "'; DROP TABLE x; --",
        "\x00water",
        "%",
        "_",
        "%_%",
        "\u202e",
        "😀",
        "a" * 5000,
        "1" * 400,
        "+",
        "-",
        "---",
        "\ufffd",
    ],
)
def test_hostile_search_strings_never_error(inbox, query):
    names(inbox, {"q": query, "status": "any"})


def test_search_terms_are_cleaned():
    terms = search_terms_parse("  Pat\x00 O'Brien  (202) ")
    assert terms.words == ("pat", "o", "brien", "202")
    assert terms.digits == ""
    assert search_terms_parse("(202) 555-0101").digits == "2025550101"
    assert search_terms_parse("12").digits == ""  # too short to mean a phone number
    assert search_terms_parse("867").digits == "867"


@pytest.fixture
def many_rows(inbox):
    """Enough rows that PostgreSQL prefers an index to a scan whenever one applies."""
    from constituents.models import Constituent
    from messages.models import Conversation, Message

    words = [
        "water",
        "housing",
        "passport",
        "veterans",
        "medicare",
        "roads",
        "schools",
        "taxes",
        "parks",
        "zoning",
    ]
    constituents = Constituent.objects.bulk_create(
        Constituent(
            office=inbox.office, phone=f"+1310555{i:04d}", first_name=f"Name{i}", last_name=f"Family{i % 97}"
        )
        for i in range(3000)
    )
    conversations = Conversation.objects.bulk_create(
        Conversation(office=inbox.office, constituent=c, status="closed") for c in constituents
    )
    Message.objects.bulk_create(
        Message(
            office=inbox.office,
            conversation=c,
            direction="inbound",
            channel="sms",
            status="received",
            body=f"About {words[i % 10]} number {i}",
        )
        for i, c in enumerate(conversations)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE constituents_constituent")
        cursor.execute("ANALYZE civicdesk_messages_message")
    return inbox


def test_body_search_uses_the_search_document_index(many_rows):
    """A rare word goes through the GIN index on the stored document (message_search_document)."""
    from messages.models import Message
    from messages.selectors.search import body_query

    query = Message.objects.filter(
        office=many_rows.office, search_document=body_query(search_terms_parse("passport 1234"))
    ).values("conversation_id")
    with connection.cursor() as cursor:
        cursor.execute(
            "SET enable_seqscan = off"
        )  # 3,000 rows are cheap to scan: this proves the index applies
        plan = query.explain()
        cursor.execute("RESET enable_seqscan")
    assert "message_search_document" in plan


def test_search_document_is_the_body_document(inbox):
    """The generated column holds exactly what the old expression index computes from the body."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM civicdesk_messages_message "
            "WHERE search_document IS DISTINCT FROM to_tsvector('english'::regconfig, COALESCE(body, ''))"
        )
        assert cursor.fetchone()[0] == 0


def test_name_and_phone_search_use_their_indexes(many_rows):
    """The selector's own query: fragments through the trigram indexes, short words through the name FTS."""
    from messages.selectors.search import _matching_constituents

    def plan(query: str) -> str:
        matching = _matching_constituents(office=many_rows.office, terms=search_terms_parse(query))
        assert matching is not None
        with connection.cursor() as cursor:
            # 3,000 rows of one office are cheap to scan, or to walk through the office index: with both off,
            # the plan shows which index PostgreSQL can use for the condition itself.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_indexscan = off")
            try:
                return matching.values_list("pk", flat=True).order_by().explain()
            finally:
                cursor.execute("RESET enable_seqscan")
                cursor.execute("RESET enable_indexscan")

    assert "constituent_name_trigrams" in plan("me2999")  # inside "Name2999"
    assert "constituent_phone_trigrams" in plan("555 012")
    assert "constituent_name_fts" in plan("na")


def test_search_snippets_return_the_matching_message_and_stems(inbox):
    c = inbox.conversations["rent"]
    factories.MessageFactory.create(conversation=c, body="Unrelated later message", created_at=timezone.now())
    snippets = search_snippets(
        office=inbox.office, conversation_ids=[c.pk], terms=search_terms_parse("housing")
    )
    assert snippets.bodies == {c.pk: "My landlord raised the rent on our housing."}
    assert snippets.stems == ("hous",)


def test_keyset_pages_cover_everything_once(inbox):
    queryset = inbox_conversations(office=inbox.office)
    seen, cursor = [], None
    while True:
        page = inbox_page(queryset=queryset, cursor=cursor, size=2)
        seen += [c.pk for c in page.conversations]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 6


def test_keyset_handles_ties_on_activity_time(inbox):
    at = timezone.now()
    for i in range(5):
        factories.ConversationFactory.create(
            constituent__office=inbox.office, last_activity_at=at, last_message_preview=str(i)
        )
    queryset = inbox_conversations(office=inbox.office)
    seen, cursor = [], None
    for _ in range(20):
        page = inbox_page(queryset=queryset, cursor=cursor, size=3)
        seen += [c.pk for c in page.conversations]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 11


@pytest.mark.parametrize(
    "token", ["", "garbage", "!!!", "MjAyNi0wMS0wMXww", "eHh8eXk", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk"]
)
def test_tampered_cursors_show_page_one(inbox, token):
    page = inbox_page(queryset=inbox_conversations(office=inbox.office), cursor=token, size=2)
    assert len(page.conversations) == 2


def test_cursor_round_trip():
    cursor = Cursor(timezone.now(), 42)
    assert Cursor.decode(cursor.encode()) == cursor


def test_rail_counts(inbox):
    lookups = inbox_lookups(office=inbox.office)
    counts = rail_counts_compute(office=inbox.office, user=inbox.staff, lookups=lookups)
    assert (counts.mine, counts.unassigned, counts.open, counts.voicemail, counts.snoozed, counts.closed) == (
        1,
        2,
        4,
        1,
        1,
        1,
    )
    assert counts.by_queue == {inbox.casework.pk: 1, inbox.press.pk: 0}
    assert counts.by_tag == {inbox.health.pk: 1, inbox.housing.pk: 1}


def test_rail_counts_are_cached_and_dropped_after_a_triage_write(
    inbox, django_capture_on_commit_callbacks, private_cache
):
    private_cache.clear()
    lookups = inbox_lookups(office=inbox.office)
    assert rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups).open == 4
    with django_capture_on_commit_callbacks(execute=True):
        triage.conversation_close(conversation=inbox.conversations["water"], actor=inbox.staff)
    assert rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups).open == 3


def test_rail_invalidation_is_per_office(inbox, private_cache):
    private_cache.clear()
    lookups = inbox_lookups(office=inbox.office)
    first = rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups)
    rail_counts_invalidate(office_id=inbox.office.pk + 1000)
    add_conversation(inbox.office, name="New Person", phone="+12025550177", body="hi", minutes_ago=1)
    assert rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups) == first  # still cached


def test_page_signature_changes_when_a_row_changes(inbox):
    queryset = inbox_conversations(office=inbox.office)
    before = inbox_page(queryset=queryset, cursor=None).signature
    assert inbox_page(queryset=queryset, cursor=None).signature == before
    triage.conversation_tag(
        conversation=inbox.conversations["voicemail"], tag=inbox.health, actor=inbox.staff
    )
    assert inbox_page(queryset=queryset, cursor=None).signature != before


def test_voicemail_channel_counts_the_latest_message(inbox):
    c = inbox.conversations["water"]
    c.last_message_channel = Channel.VOICEMAIL
    c.save()
    assert names(inbox, {"channel": "voicemail"}) == ["Pat", "Dana"]


def test_rail_office_counts_are_shared_and_each_members_own_count_is_cheap(
    inbox, django_assert_num_queries, private_cache
):
    private_cache.clear()
    lookups = inbox_lookups(office=inbox.office)
    with django_assert_num_queries(2):
        assert rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups).mine == 1
    with django_assert_num_queries(1):
        bobs = rail_counts(office=inbox.office, user=inbox.other_staff, lookups=lookups)
    assert (bobs.mine, bobs.open) == (1, 4)
    with django_assert_num_queries(0):
        rail_counts(office=inbox.office, user=inbox.other_staff, lookups=lookups)


def page_names(inbox: Inbox, data: dict[str, Any], size: int = 50) -> list[str]:
    lookups = inbox_lookups(office=inbox.office)
    filterset = ConversationFilter(
        data, inbox_conversations(office=inbox.office), office=inbox.office, user=inbox.staff, lookups=lookups
    )
    assert filterset.is_valid(), filterset.errors
    page = inbox_page(queryset=filterset.page_queryset, cursor=None, size=size, search=filterset.search)
    return [c.constituent.first_name for c in page.conversations]


@pytest.mark.parametrize(
    "query",
    ["water", "medicare", "riv", "Sam Lee", "0103", "(202) 555-0102", '"clean water"', "zeppelin", "pat"],
)
def test_the_page_path_finds_what_the_filter_finds(inbox, query):
    """inbox_page plans each search branch apart; it must return what the plain ORed filter returns."""
    assert page_names(inbox, {"q": query, "status": "any"}) == names(inbox, {"q": query, "status": "any"})


def test_search_pages_follow_the_keyset(inbox):
    for i in range(5):
        add_conversation(
            inbox.office, name=f"Water Person{i}", phone=f"+1202555099{i}", body="water", minutes_ago=i
        )
    lookups = inbox_lookups(office=inbox.office)
    filterset = ConversationFilter(
        {"q": "water"}, inbox_conversations(office=inbox.office), office=inbox.office, user=inbox.staff,
        lookups=lookups,
    )  # fmt: skip
    seen, cursor = [], None
    while True:
        page = inbox_page(queryset=filterset.page_queryset, cursor=cursor, size=2, search=filterset.search)
        seen += [c.pk for c in page.conversations]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6  # five "Water" people (name and body) and Pat


def test_a_name_matching_too_many_constituents_is_joined_instead_of_listed(inbox, monkeypatch):
    from messages.selectors import search

    monkeypatch.setattr(search, "MAX_CONSTITUENT_MATCHES", 0)
    assert search.search_constituent_ids(office=inbox.office, terms=search_terms_parse("riv")) is None
    assert page_names(inbox, {"q": "riv"}) == ["Pat"]
    assert names(inbox, {"q": "riv"}) == ["Pat"]
