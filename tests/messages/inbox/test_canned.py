"""messages.services.canned: merge fields are plain-text substitution, never code."""

from __future__ import annotations

import pytest

from messages.services.canned import CannedRejected, canned_render, canned_response_create, merge_values
from tests import factories


def test_merge_fields_are_filled_from_the_constituent_and_the_office(inbox):
    constituent = inbox.conversations["water"].constituent
    values = merge_values(office=inbox.office, constituent=constituent)
    text = canned_render(body="Hi {first_name}, {official_title} {official_name} thanks you.", values=values)
    assert text == "Hi Pat, Representative Jordan Rivera thanks you."


def test_a_constituent_without_a_name_is_greeted_generically(inbox):
    constituent = factories.ConstituentFactory.create(office=inbox.office, first_name="", last_name="")
    values = merge_values(office=inbox.office, constituent=constituent)
    assert canned_render(body="Hi {first_name}!", values=values) == "Hi there!"


@pytest.mark.parametrize(
    "body",
    [
        "{0.__class__}",
        "{first_name.__class__.__mro__}",
        "{{first_name}}",
        "{unknown_field}",
        "{FIRST_NAME}",
        "{% load static %}{{ settings.SECRET_KEY }}",
    ],
)
def test_anything_but_a_known_field_is_left_exactly_as_written(body):
    assert canned_render(body=body, values={"first_name": "Pat"}) in (
        body,
        body.replace("{first_name}", "Pat"),
    )


def test_merged_values_are_not_re_expanded():
    # A constituent who calls themself "{official_name}" does not get the official's name merged in.
    text = canned_render(
        body="Hi {first_name}", values={"first_name": "{official_name}", "official_name": "X"}
    )
    assert text == "Hi {official_name}"


def test_create_rejects_unknown_fields_and_duplicate_titles(inbox):
    canned_response_create(office=inbox.office, title="Thanks", body="Thanks, {first_name}!")
    with pytest.raises(CannedRejected, match="Unknown merge fields"):
        canned_response_create(office=inbox.office, title="Other", body="Hello {frist_name}")
    with pytest.raises(CannedRejected, match="already has"):
        canned_response_create(office=inbox.office, title="thanks", body="Again")
