"""Inbox search: message bodies and voicemail transcripts, constituent names, and phone digits.

Every branch is served by an index, and every branch works on stock PostgreSQL (no pg_trgm):
- bodies: ``Message.search_document`` (the stored ``to_tsvector('english', body)``, GIN
  ``message_search_document``) matched with ``websearch_to_tsquery``;
- names: every word of the query must match the first or last name. A word of three or more characters
  matches anywhere inside a name ("iver" finds Rivera), through the GIN index ``constituent_name_trigrams``
  (constituents/search.py); a shorter word matches the start of a name word through
  ``to_tsvector('simple', first_name || ' ' || last_name)`` (GIN ``constituent_name_fts``);
- phones: when the query is only digits and phone punctuation, with at least three digits, the digits match
  anywhere in the E.164 number (GIN ``constituent_phone_trigrams``): "5309", "8675", "(415) 867-5309" and
  "+1 415 867 5309" all find +14158675309.

A query with no words and no phone digits cannot use any of those indexes. If it still holds characters
worth searching for (an emoji such as 🙏🏽, a symbol such as €), its text is looked for literally in the
office's message bodies (``literal``); if it is made only of stop characters (punctuation, ASCII
symbols, spaces: what ``websearch_to_tsquery`` reads as operators or separators), it matches nothing at all
(``is_unsearchable``), and the inbox says so. A blank box is no search.

User text never reaches SQL except as a bound parameter: the body branch hands it to ``websearch_to_tsquery``
(which accepts any input without a syntax error), the literal branch to ``LIKE`` with ``%``, ``_`` and
backslash escaped, and the name branch builds its tsquery and its LIKE patterns only from letter-and-digit
words. NUL bytes (which PostgreSQL refuses in text) are dropped and the length is capped. docs/architecture.md
("Search") explains the choices.
"""

from __future__ import annotations

import functools
import operator
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from constituents.models import Constituent
from constituents.search import MIN_FRAGMENT_LENGTH, name_contains, phone_contains
from messages.models import SEARCH_CONFIG, Message
from offices.models import Office

MAX_QUERY_LENGTH = 200
MAX_TERMS = 8
MIN_PHONE_DIGITS = MIN_FRAGMENT_LENGTH
MAX_CONSTITUENT_MATCHES = 2000
NAME_CONFIG = "simple"  # names are not English words: no stemming, no stop words
# Letters and digits only (``\w`` minus underscore): safe to place in a raw tsquery.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PHONE_LIKE = re.compile(r"^[\d\s().+\-]+$")
_LEXEME = re.compile(r"'((?:[^']|'')+)'")


def is_stop_character(char: str) -> bool:
    """A character no search can look for: whitespace, punctuation, control and format characters, and the
    ASCII symbols ``websearch_to_tsquery`` reads as operators or separators (``<>|&!:*()`` and the rest).

    Everything else that is not a letter or digit (emoji, skin-tone modifiers, non-ASCII symbols such as € or
    ™) is worth searching for literally: the full-text parser drops it, but a message can contain it."""
    if char.isspace() or char.isascii():
        return True  # ASCII letters and digits never get here: they are words
    return unicodedata.category(char)[0] in ("P", "C", "Z")


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """A search box entry, cleaned: the raw text for full-text search, its words, and phone digits.

    ``literal`` is the text to look for as is in message bodies, when it has no words and no phone digits but
    holds characters worth searching for (an emoji), without the stop characters around it; else empty."""

    text: str
    words: tuple[str, ...]
    digits: str
    literal: str = ""

    @property
    def is_blank(self) -> bool:
        """Nothing typed but spaces: no search at all (the plain inbox)."""
        return not self.text

    @property
    def is_empty(self) -> bool:
        """Nothing to search for: no word, no phone digits, no literal text."""
        return not self.words and not self.digits and not self.literal

    @property
    def is_unsearchable(self) -> bool:
        """Something was typed, but only stop characters: the search matches nothing (never everything)."""
        return not self.is_blank and self.is_empty


def search_terms_parse(raw: str | None) -> SearchTerms:
    text = (raw or "").replace("\x00", "")[:MAX_QUERY_LENGTH].strip()
    words = tuple(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:MAX_TERMS]
    digits = re.sub(r"\D", "", text) if _PHONE_LIKE.match(text) else ""
    digits = digits if len(digits) >= MIN_PHONE_DIGITS else ""
    literal = ""
    if not words and not digits:
        # Stop characters around it are not part of it: '"🙏🏽"' or '(€)' look for 🙏🏽 and €.
        start, end = 0, len(text)
        while start < end and is_stop_character(text[start]):
            start += 1
        while end > start and is_stop_character(text[end - 1]):
            end -= 1
        literal = text[start:end]
    return SearchTerms(text=text, words=words, digits=digits, literal=literal)


def body_query(terms: SearchTerms) -> SearchQuery:
    return SearchQuery(terms.text, config=SEARCH_CONFIG, search_type="websearch")


def name_query(words: Sequence[str]) -> SearchQuery:
    # Prefix-match words of two characters; a single letter matches exactly, because a one-letter prefix walks
    # most of the GIN index. (Longer words are matched anywhere in the name: _name_condition.)
    raw = " & ".join(f"{w}:*" if len(w) > 1 else w for w in words)
    return SearchQuery(raw, config=NAME_CONFIG, search_type="raw")


def _name_condition(words: Sequence[str]) -> Q:
    """Every word matches the first or last name: anywhere inside it from three characters on, else as the
    start of a name word. (A name word's start is also a substring, so long words need no prefix test.)"""
    short = [w for w in words if len(w) < MIN_FRAGMENT_LENGTH]
    condition = Q(name_document=name_query(short)) if short else Q()
    for word in words:
        if len(word) >= MIN_FRAGMENT_LENGTH:
            condition &= name_contains(word)
    return condition


def _matching_constituents(*, office: Office, terms: SearchTerms) -> QuerySet[Constituent] | None:
    conditions: list[Q] = []
    if terms.words:
        conditions.append(_name_condition(terms.words))
    if terms.digits:
        conditions.append(phone_contains(terms.digits))
    if not conditions:
        return None
    return (
        Constituent.objects.filter(office=office)
        .alias(name_document=SearchVector("first_name", "last_name", config=NAME_CONFIG))
        .filter(functools.reduce(operator.or_, conditions))
    )


def search_constituent_ids(*, office: Office, terms: SearchTerms) -> list[int] | None:
    """Ids of the office's constituents whose name or phone matches: one query, through the name and phone
    indexes. None when more than MAX_CONSTITUENT_MATCHES match (a one- or two-letter prefix, or three digits
    of an area code, say).

    Fetched first, rather than left as a subquery, because PostgreSQL underestimates what computing
    ``to_tsvector`` per row costs: given the subquery it walks recent conversations and tests each
    constituent's name, which for a name matching 1% of constituents reads thousands of rows to fill a page.
    A short list of ids instead goes straight through the conversations' constituent index.
    """
    matching = _matching_constituents(office=office, terms=terms)
    if matching is None:
        return []
    ids = list(matching.values_list("pk", flat=True)[: MAX_CONSTITUENT_MATCHES + 1])
    return ids if len(ids) <= MAX_CONSTITUENT_MATCHES else None


def search_branches(*, office: Office, terms: SearchTerms) -> list[Q]:
    """One condition on conversations per way a search can match: message bodies; constituent name or phone.

    Kept apart so the inbox page can plan each on its own (``messages.selectors.inbox.inbox_page``): ORed
    together, PostgreSQL can only hash every matching id first, which for a common word means reading tens of
    thousands of messages to show fifty conversations. Runs one query (``search_constituent_ids``).
    """
    if terms.is_empty:
        return []
    if terms.literal:
        matching_literal = literal_matches(office=office, literal=terms.literal)
        return [Q(Exists(matching_literal.filter(conversation_id=OuterRef("pk"))))]
    branches: list[Q] = []
    if terms.words:
        query = body_query(terms)
        # The stored document, not the expression: for a common word PostgreSQL walks recent conversations
        # and tests their messages one by one, which must not re-parse every body; for a rare word or a
        # phrase it goes through the message_search_document GIN index.
        matching_messages = Message.objects.filter(
            office=office, conversation_id=OuterRef("pk"), search_document=query
        )
        branches.append(Q(Exists(matching_messages)))
    constituent_ids = search_constituent_ids(office=office, terms=terms)
    if constituent_ids is None:  # too many to list: let PostgreSQL join them
        matching = _matching_constituents(office=office, terms=terms)
        if matching is not None:
            branches.append(Q(constituent_id__in=matching.values("pk")))
    elif constituent_ids:
        branches.append(Q(constituent_id__in=constituent_ids))
    return branches


def literal_matches(*, office: Office, literal: str) -> QuerySet[Message]:
    """The office's messages whose body contains ``literal`` as typed (case-sensitive, since what reaches here
    has no letters). ``contains`` compiles to ``body LIKE %s`` with the value bound as a parameter and its
    ``%``, ``_`` and ``\\`` escaped, so they match only themselves.

    No index serves it: for each conversation tested it reads that conversation's messages (through the
    ``message_thread_order`` index), and a search that finds nothing reads every message of the office,
    never another office's. docs/architecture.md ("Search") has the cost on the benchmark data."""
    return Message.objects.filter(office=office, body__contains=literal)


@dataclass(frozen=True, slots=True)
class SearchSnippets:
    """For a page of results: the newest matching message body per conversation, and the stems to mark."""

    bodies: dict[int, str]
    stems: tuple[str, ...]


def search_snippets(*, office: Office, conversation_ids: list[int], terms: SearchTerms) -> SearchSnippets:
    """One query: the latest message matching the search in each listed conversation.

    For a literal search the stems are the literal itself (``messages.views.rows`` marks it as is)."""
    if conversation_ids and terms.literal:
        literal_rows = (
            literal_matches(office=office, literal=terms.literal)
            .filter(conversation_id__in=conversation_ids)
            .order_by("conversation_id", "-created_at", "-id")
            .distinct("conversation_id")
            .values_list("conversation_id", "body")
        )
        return SearchSnippets(dict(literal_rows), (terms.literal,))
    if not conversation_ids or not terms.words:
        return SearchSnippets({}, terms.words)
    rows = list(
        Message.objects.filter(
            office=office, conversation_id__in=conversation_ids, search_document=body_query(terms)
        )
        .annotate(
            # The stems PostgreSQL matched ("housing" → 'hous'), so highlighting marks what search found.
            lexemes=RawSQL("websearch_to_tsquery(%s::regconfig, %s)::text", (SEARCH_CONFIG, terms.text))
        )
        .order_by("conversation_id", "-created_at", "-id")
        .distinct("conversation_id")
        .values_list("conversation_id", "body", "lexemes")
    )
    stems: dict[str, None] = {}
    for _, _, lexemes in rows[:1]:
        for match in _LEXEME.findall(lexemes or ""):
            stems[match.replace("''", "'")] = None
    return SearchSnippets({cid: body for cid, body, _ in rows}, tuple(stems) or terms.words)
