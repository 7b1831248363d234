"""Substring matching of constituent names and phone numbers, served by GIN indexes on stock PostgreSQL.

Without pg_trgm (the embedded PostgreSQL has none), trigrams come from two SQL functions created by migration
``0002_search_trigrams``: ``constituents_trigrams(text)`` (every three-character substring of the lowercased
text) and ``constituents_name_trigrams(first_name, last_name)`` (the same over both names). The migration
indexes ``constituents_name_trigrams("first_name", "last_name")`` and ``constituents_trigrams("phone")``;
the expressions below compile to exactly those, which is what lets PostgreSQL use the indexes.

A substring of three or more characters has all its trigrams in the text, so ``trigrams(text) @>
trigrams(fragment)`` narrows the rows through the index, and a ``LIKE '%fragment%'`` on those rows decides.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.lookups import DataContains
from django.db.models import F, Q, TextField, Value
from django.db.models.expressions import Func
from django.db.models.functions import Concat, Lower
from django.db.models.lookups import Contains

MIN_FRAGMENT_LENGTH = 3


class Trigrams(Func):
    function = "constituents_trigrams"
    arity = 1
    output_field = ArrayField(TextField())


class NameTrigrams(Func):
    function = "constituents_name_trigrams"
    arity = 2
    output_field = ArrayField(TextField())


def name_contains(word: str) -> Q:
    """First or last name contains ``word`` (case-insensitive; ``word`` has at least MIN_FRAGMENT_LENGTH
    characters and no space). Lowercasing happens in PostgreSQL on both sides, as in the index."""
    if len(word) < MIN_FRAGMENT_LENGTH or " " in word:
        raise ValueError("name_contains needs a word of at least three characters")
    full_name = Lower(Concat("first_name", Value(" "), "last_name", output_field=TextField()))
    return Q(DataContains(NameTrigrams("first_name", "last_name"), Trigrams(Value(word)))) & Q(
        Contains(full_name, Lower(Value(word)))
    )


def phone_contains(digits: str) -> Q:
    """The phone number contains these digits anywhere ("8675" finds +14158675309)."""
    if len(digits) < MIN_FRAGMENT_LENGTH or not digits.isdigit():
        raise ValueError("phone_contains needs at least three digits")
    return Q(DataContains(Trigrams("phone"), Trigrams(Value(digits)))) & Q(Contains(F("phone"), digits))
