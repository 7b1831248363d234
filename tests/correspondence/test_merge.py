from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from django import forms
from django.core.exceptions import ValidationError

from correspondence.merge import (
    FIELD_LABELS,
    FIELDS,
    MAX_DEFAULT_LENGTH,
    MAX_FIELDS,
    Template,
    TemplateError,
    parse,
    validate,
)
from messages.segments import MAX_BODY_LENGTH

FIELD_LIST = "{first_name}, {last_name}, {official_name}, {official_title}, {office_name}, {office_phone}"

VALUES = {
    "first_name": "Ana",
    "last_name": "Reyes",
    "official_name": "Jordan Lee",
    "official_title": "Senator",
    "office_name": "District Office",
    "office_phone": "(555) 010-0100",
}


def error_of(template: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        parse(template)
    return caught.value


def test_fields_are_exactly_the_six_names_and_each_has_a_label():
    assert FIELDS == (
        "first_name",
        "last_name",
        "official_name",
        "official_title",
        "office_name",
        "office_phone",
    )
    assert list(FIELD_LABELS) == list(FIELDS)
    assert all(label.strip() for label in FIELD_LABELS.values())


def test_a_letter_renders_every_field():
    template = parse(
        "Dear {first_name|neighbor}, thank you for writing to {official_title} {official_name}. "
        "Call {office_phone}."
    )
    assert template.render(VALUES) == (
        "Dear Ana, thank you for writing to Senator Jordan Lee. Call (555) 010-0100."
    )
    assert template.fields == frozenset({"first_name", "official_title", "official_name", "office_phone"})


def test_template_keeps_its_source_and_is_frozen():
    source = "Hi {first_name}"
    template = parse(source)
    assert template.source == source
    assert template == Template(source)
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.source = "Hi {colour}"  # type: ignore[misc]  # the assignment frozen forbids is the test


def test_text_without_fields_renders_unchanged():
    source = "Thank you.\nWe received your letter — ¡gracias! 100% of it."
    template = parse(source)
    assert template.fields == frozenset()
    assert template.render({}) == source


def test_empty_template_renders_empty():
    assert parse("").render(VALUES) == ""


def test_spaces_around_the_name_are_allowed():
    template = parse("{ first_name }/{  last_name|friend}/{office_name |the office}")
    assert template.render({"first_name": "Ana"}) == "Ana/friend/the office"


@pytest.mark.parametrize(
    "values",
    [{}, {"first_name": ""}, {"first_name": "   "}, {"first_name": "\t\n "}],
    ids=["missing", "empty", "spaces", "whitespace"],
)
def test_the_default_stands_in_for_a_missing_or_blank_value(values):
    assert parse("Dear {first_name|neighbor},").render(values) == "Dear neighbor,"


def test_a_field_without_default_and_without_value_renders_nothing():
    assert parse("Dear {first_name} {last_name}.").render({"last_name": "  "}) == "Dear  ."


def test_values_are_stripped():
    assert parse("Dear {first_name|neighbor},").render({"first_name": "  Ana \n"}) == "Dear Ana,"


def test_a_default_is_literal_text_with_spaces_and_punctuation():
    template = parse("Dear {first_name|friend & neighbor, Esq.!}:")
    assert template.render({}) == "Dear friend & neighbor, Esq.!:"


def test_an_empty_default_is_allowed():
    assert parse("[{first_name|}]").render({}) == "[]"


def test_a_default_of_the_maximum_length_is_allowed():
    default = "x" * MAX_DEFAULT_LENGTH
    assert parse(f"{{first_name|{default}}}").render({}) == default


def test_extra_values_are_ignored_and_any_mapping_is_accepted():
    values = MappingProxyType({"first_name": "Ana", "colour": "red", "__class__": "x"})
    assert parse("{first_name}").render(values) == "Ana"


def test_doubled_braces_are_literal_braces():
    template = parse("{{first_name}} is written {{ and }}")
    assert template.fields == frozenset()
    assert template.render(VALUES) == "{first_name} is written { and }"


def test_a_field_inside_literal_braces():
    assert parse("{{{first_name}}}").render(VALUES) == "{Ana}"


@pytest.mark.parametrize(
    "value",
    ["{last_name}", "{{last_name}}", "{__class__}", "{0}", "}{", "{first_name.__class__}"],
)
def test_a_value_with_braces_is_inserted_literally(value):
    template = parse("Dear {first_name} {last_name}")
    assert template.render({"first_name": value, "last_name": "Reyes"}) == f"Dear {value} Reyes"


def test_a_default_is_not_reinterpreted_either():
    # A value that looks like a default marker is just text too.
    assert parse("{first_name|neighbor}").render({"first_name": "a|b"}) == "a|b"


@pytest.mark.parametrize(
    ("template", "message", "position", "line", "column"),
    [
        (
            "Hello {first_name",
            "Unclosed { at line 1, column 7. Close the field with }, or write {{ for a literal {.",
            6,
            1,
            7,
        ),
        (
            "Hi {first_name {last_name}",
            "Unclosed { at line 1, column 4. Close the field with }, or write {{ for a literal {.",
            3,
            1,
            4,
        ),
        (
            "Hi {",
            "Unclosed { at line 1, column 4. Close the field with }, or write {{ for a literal {.",
            3,
            1,
            4,
        ),
        ("a } b", "Unmatched } at line 1, column 3. Write }} for a literal }.", 2, 1, 3),
        ("x }}} y", "Unmatched } at line 1, column 5. Write }} for a literal }.", 4, 1, 5),
        ("{first_name}}", "Unmatched } at line 1, column 13. Write }} for a literal }.", 12, 1, 13),
        ("Dear {}", f"Empty field {{}} at line 1, column 6. Fields are: {FIELD_LIST}.", 5, 1, 6),
        ("Dear {  }", f"Empty field {{}} at line 1, column 6. Fields are: {FIELD_LIST}.", 5, 1, 6),
        (
            "Dear {|neighbor}",
            f"Missing field name before | at line 1, column 6. Fields are: {FIELD_LIST}.",
            5,
            1,
            6,
        ),
        (
            "Hello {colour}",
            f"Unknown field {{colour}} at line 1, column 7. Fields are: {FIELD_LIST}.",
            6,
            1,
            7,
        ),
        ("{ colour |x}", f"Unknown field {{colour}} at line 1, column 1. Fields are: {FIELD_LIST}.", 0, 1, 1),
        (
            "Dear {first_name|a|b}",
            "Second | in a field at line 1, column 19. A field has at most one default: {name|default}.",
            18,
            1,
            19,
        ),
        (
            "Dear {first_name||}",
            "Second | in a field at line 1, column 18. A field has at most one default: {name|default}.",
            17,
            1,
            18,
        ),
        (
            "Dear {first_name|" + "x" * (MAX_DEFAULT_LENGTH + 1) + "}",
            "Default of 101 characters at line 1, column 18. A default is at most 100 characters.",
            17,
            1,
            18,
        ),
    ],
    ids=[
        "unclosed",
        "unclosed-before-next-field",
        "unclosed-at-end",
        "stray-close",
        "stray-after-doubled",
        "stray-after-field",
        "empty",
        "blank",
        "no-name",
        "unknown",
        "unknown-with-spaces",
        "second-bar",
        "second-bar-empty",
        "default-too-long",
    ],
)
def test_each_error_says_what_and_where(template, message, position, line, column):
    error = error_of(template)
    assert error.message == message
    assert str(error) == message
    assert (error.position, error.line, error.column) == (position, line, column)


def test_template_error_is_a_value_error():
    assert isinstance(error_of("{colour}"), ValueError)


def test_an_unknown_field_lists_every_allowed_name():
    message = error_of("{First_Name}").message
    for name in FIELDS:
        assert f"{{{name}}}" in message


@pytest.mark.parametrize(
    ("line", "column", "template"),
    [
        (4, 6, "Dear {first_name},\nThanks.\n\nCall {ofice_phone} today."),
        (2, 6, "Dear {first_name},\r\nCall {ofice_phone} today."),
        (3, 1, "Dear {first_name},\n\n{ofice_phone}"),
    ],
    ids=["lf", "crlf", "line-start"],
)
def test_a_multiline_error_has_its_line_and_column(line, column, template):
    error = error_of(template)
    assert (error.line, error.column) == (line, column)
    assert error.position == template.index("{ofice_phone}")
    assert error.message.startswith(f"Unknown field {{ofice_phone}} at line {line}, column {column}.")


def test_a_multiline_stray_brace():
    error = error_of("Dear {first_name},\nsee you :}")
    assert (error.position, error.line, error.column) == (28, 2, 10)


@pytest.mark.parametrize(
    "hostile",
    [
        "__class__",
        "first_name.__class__",
        "first_name.__init__.__globals__",
        "first_name[0]",
        "0",
        "first_name!r",
        "first_name:>10000",
        "first_name:>99",
        "first_name.upper",
        "self",
        "values",
    ],
)
def test_hostile_fields_are_unknown_names(hostile):
    error = error_of(f"Hi {{{hostile}}}!")
    assert error.position == 3
    assert error.message.startswith(f"Unknown field {{{hostile}}} at line 1, column 4.")


def test_a_long_unknown_name_is_cut_in_the_message():
    name = "a" * 500
    message = error_of(f"{{{name}}}").message
    assert message.startswith("Unknown field {" + "a" * 39 + "…} at line 1, column 1.")


def test_the_maximum_number_of_fields_is_allowed():
    template = parse("{first_name}" * MAX_FIELDS)
    assert template.render({"first_name": "A"}) == "A" * MAX_FIELDS


def test_one_field_too_many_is_rejected_at_that_field():
    source = "{first_name} " * (MAX_FIELDS + 10)
    error = error_of(source)
    assert error.message == "Too many fields at line 1, column 651. A letter has at most 50 fields."
    assert error.position == MAX_FIELDS * len("{first_name} ")


def test_parsing_stops_at_the_field_limit():
    # Errors after the 51st field are never reached: the limit is the first and only error.
    source = "{last_name}" * MAX_FIELDS + "{colour}{first_name|a|b} }"
    error = error_of(source)
    assert error.message.startswith("Too many fields")
    assert error.position == MAX_FIELDS * len("{last_name}")


def test_doubled_braces_are_not_fields_for_the_limit():
    template = parse("{{x}}" * 100 + "{first_name}" * MAX_FIELDS)
    assert template.fields == frozenset({"first_name"})


def test_a_body_of_the_maximum_length_is_allowed():
    assert parse("a" * MAX_BODY_LENGTH).render({}) == "a" * MAX_BODY_LENGTH


def test_a_body_over_the_maximum_length_is_rejected_where_it_passes_the_limit():
    error = error_of("a" * (MAX_BODY_LENGTH + 5))
    assert error.message == (
        "Text passes the 1600-character limit at line 1, column 1601. "
        "It is 1605 characters long; shorten it by 5."
    )
    assert (error.position, error.line, error.column) == (1600, 1, 1601)


def test_a_long_multiline_body_reports_the_line_of_the_limit():
    error = error_of(("x" * 99 + "\n") * 20)
    assert (error.position, error.line, error.column) == (1600, 17, 1)


def test_a_ten_thousand_field_template_is_rejected_by_the_limits():
    source = "{first_name}" * 10_000
    error = error_of(source)
    assert error.position == MAX_BODY_LENGTH
    assert error.message.startswith("Text passes the 1600-character limit")


def test_validate_accepts_valid_syntax():
    validate("Dear {first_name|neighbor}, {{not a field}}")


def test_validate_raises_a_validation_error_with_the_message():
    with pytest.raises(ValidationError) as caught:
        validate("Hello {colour}")
    assert caught.value.code == "merge_syntax"
    assert caught.value.messages == [
        f"Unknown field {{colour}} at line 1, column 7. Fields are: {FIELD_LIST}."
    ]


class LetterForm(forms.Form):
    body = forms.CharField(validators=[validate])


def test_validate_works_as_a_form_field_validator():
    form = LetterForm(data={"body": "Hi {first_name!r}"})
    assert not form.is_valid()
    assert form.errors["body"] == [
        f"Unknown field {{first_name!r}} at line 1, column 4. Fields are: {FIELD_LIST}."
    ]
    assert form.has_error("body", code="merge_syntax")
    assert LetterForm(data={"body": "Hi {first_name}"}).is_valid()
