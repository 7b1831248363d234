"""Merge fields of form letters: ``{first_name}`` or ``{first_name|neighbor}`` filled in once per recipient.

Staff write the letter body, so the language is deliberately tiny and parsed by hand here: a field is one of
the names in :data:`FIELDS`, nothing else. Attribute access, indexing, conversions and format specs
(``{first_name.__class__}``, ``{first_name[0]}``, ``{first_name!r}``, ``{first_name:>99}``) are unknown
names, never evaluated, because no general-purpose formatter (``str.format``, ``string.Template``, Django
templates) ever sees staff text.

Syntax: ``{name}`` or ``{name|default}``, spaces allowed around the name; the default is literal text (no
``{``, ``}`` or ``|``) of at most :data:`MAX_DEFAULT_LENGTH` characters. ``{{`` and ``}}`` are a literal
``{`` and ``}``. Everything else with a brace is a :class:`TemplateError` that says where it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from messages.segments import MAX_BODY_LENGTH

FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "official_name",
    "official_title",
    "office_name",
    "office_phone",
)
FIELD_LABELS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "official_name": "Official's name",
    "official_title": "Official's title",
    "office_name": "Office name",
    "office_phone": "Office phone",
}
MAX_FIELDS = 50
MAX_DEFAULT_LENGTH = 100

_FIELD_SET = frozenset(FIELDS)
_FIELD_LIST = ", ".join(f"{{{name}}}" for name in FIELDS)
_BRACE = re.compile(r"[{}]")
# An unknown name is echoed back to staff; a pasted paragraph is cut to this many characters.
_SHOWN_NAME_LENGTH = 40


class TemplateError(ValueError):
    """A letter body that is not valid merge syntax.

    ``message`` is for staff and names the place ("… at line 2, column 5. …"); ``position`` is the 0-based
    index of the offending character in the template, ``line`` and ``column`` its 1-based place.
    """

    def __init__(self, message: str, *, position: int, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    default: str


def _error(source: str, position: int, problem: str, hint: str = "") -> TemplateError:
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1) + 1
    message = f"{problem} at line {line}, column {column}."
    if hint:
        message = f"{message} {hint}"
    return TemplateError(message, position=position, line=line, column=column)


def _shown(name: str) -> str:
    return name if len(name) <= _SHOWN_NAME_LENGTH else name[: _SHOWN_NAME_LENGTH - 1] + "…"


def _field(source: str, start: int) -> tuple[_Field, int]:
    """The field whose ``{`` is at ``start``, and the index just after its ``}``."""
    close = source.find("}", start + 1)
    if close == -1 or source.find("{", start + 1, close) != -1:
        raise _error(source, start, "Unclosed {", "Close the field with }, or write {{ for a literal {.")
    name_text, bar, default = source[start + 1 : close].partition("|")
    name = name_text.strip()
    if not name:
        if bar:
            raise _error(source, start, "Missing field name before |", f"Fields are: {_FIELD_LIST}.")
        raise _error(source, start, "Empty field {}", f"Fields are: {_FIELD_LIST}.")
    if name not in _FIELD_SET:
        raise _error(source, start, f"Unknown field {{{_shown(name)}}}", f"Fields are: {_FIELD_LIST}.")
    default_start = start + 1 + len(name_text) + 1
    if "|" in default:
        raise _error(
            source,
            default_start + default.index("|"),
            "Second | in a field",
            "A field has at most one default: {name|default}.",
        )
    if len(default) > MAX_DEFAULT_LENGTH:
        raise _error(
            source,
            default_start,
            f"Default of {len(default)} characters",
            f"A default is at most {MAX_DEFAULT_LENGTH} characters.",
        )
    return _Field(name, default), close + 1


def _compile(source: str) -> tuple[tuple[str | _Field, ...], frozenset[str]]:
    """Literal text and fields in order; stops at the first error (and at the first field over the limit)."""
    if len(source) > MAX_BODY_LENGTH:
        raise _error(
            source,
            MAX_BODY_LENGTH,
            f"Text passes the {MAX_BODY_LENGTH}-character limit",
            f"It is {len(source)} characters long; shorten it by {len(source) - MAX_BODY_LENGTH}.",
        )
    parts: list[str | _Field] = []
    literal: list[str] = []
    names: set[str] = set()
    count = 0
    index = 0
    length = len(source)
    while index < length:
        brace = _BRACE.search(source, index)
        end = brace.start() if brace else length
        if end > index:
            literal.append(source[index:end])
            index = end
            continue
        if source.startswith(source[index] * 2, index):
            literal.append(source[index])
            index += 2
            continue
        if source[index] == "}":
            raise _error(source, index, "Unmatched }", "Write }} for a literal }.")
        count += 1
        if count > MAX_FIELDS:
            raise _error(source, index, "Too many fields", f"A letter has at most {MAX_FIELDS} fields.")
        merge_field, index = _field(source, index)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(merge_field)
        names.add(merge_field.name)
    if literal:
        parts.append("".join(literal))
    return tuple(parts), frozenset(names)


@dataclass(frozen=True, slots=True)
class Template:
    """A validated letter body, compiled once and rendered per recipient.

    Constructing one parses ``source`` (raising :class:`TemplateError`); ``fields`` are the names it uses.
    """

    source: str
    fields: frozenset[str] = field(init=False, compare=False)
    _parts: tuple[str | _Field, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts, names = _compile(self.source)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "fields", names)

    def render(self, values: Mapping[str, str]) -> str:
        """The letter for one recipient, in one pass: values are inserted as they are, never parsed.

        A field takes its value stripped of surrounding whitespace; a missing or blank value gives the
        field's default (or nothing).
        """
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = (values.get(part.name) or "").strip()
            out.append(value or part.default)
        return "".join(out)


def parse(template: str) -> Template:
    """Validate and compile ``template``; raises :class:`TemplateError` at the first problem."""
    return Template(template)


def validate(template: str) -> None:
    """Django validator (model or form field): the merge-syntax error, as a ``ValidationError``."""
    try:
        parse(template)
    except TemplateError as error:
        raise ValidationError(error.message, code="merge_syntax") from error
