"""Canned responses: stored reply templates with merge fields filled in per conversation.

Merge fields are a fixed list of ``{name}`` placeholders replaced with plain text. This is deliberately not
``str.format`` (which would let a template reach attributes, ``{0.__class__}``) and not a Django template
(which staff-written text has no business running). Unknown placeholders are left exactly as written, so a
typo shows up in the composer instead of vanishing. The result is plain text: it is escaped like any other
text wherever it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.db import transaction

from constituents.models import Constituent
from messages.models import CannedResponse
from messages.segments import MAX_BODY_LENGTH
from offices.models import Office

MERGE_FIELD = re.compile(r"\{([a-z_]+)\}")
MERGE_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "official_name",
    "official_title",
    "official",
    "office_name",
    "district",
)


class CannedRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def merge_values(*, office: Office, constituent: Constituent) -> dict[str, str]:
    return {
        "first_name": constituent.first_name or "there",
        "last_name": constituent.last_name,
        "full_name": constituent.full_name,
        "official_name": office.official_name,
        "official_title": office.official_title,
        "official": office.official_display,
        "office_name": office.name,
        "district": office.district_label,
    }


def canned_render(*, body: str, values: Mapping[str, str]) -> str:
    """Fill known ``{field}`` placeholders with their values; leave everything else untouched."""
    return MERGE_FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), body)


@transaction.atomic
def canned_response_create(*, office: Office, title: str, body: str) -> CannedResponse:
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise CannedRejected("A canned response needs a title and a body.")
    if len(body) > MAX_BODY_LENGTH:
        raise CannedRejected(f"Canned responses are limited to {MAX_BODY_LENGTH} characters.")
    unknown = sorted(set(MERGE_FIELD.findall(body)) - set(MERGE_FIELDS))
    if unknown:
        raise CannedRejected(f"Unknown merge fields: {', '.join('{' + name + '}' for name in unknown)}.")
    if CannedResponse.objects.filter(office=office, title__iexact=title).exists():
        raise CannedRejected("This office already has a canned response with that title.")
    return CannedResponse.objects.create(office=office, title=title, body=body)
