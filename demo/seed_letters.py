"""The demo office's form letters: one approved letter per big issue, so a bulk reply can be tried at once.

Like the hotline (``demo.seed_voice``), a demo seeded before form letters existed gains them on its next
start, and a letter the office already has (by name) is left as it is.
"""

from __future__ import annotations

from correspondence.models import FormLetter
from correspondence.services import letters
from messages.models import Tag
from offices.models import Membership, Office, Role

LETTERS: tuple[tuple[str, str, str], ...] = (
    (
        "H.R. 1234: thank you",
        "H.R. 1234",
        "Dear {first_name|neighbor}, thank you for contacting {official_title} {official_name} about "
        "H.R. 1234. Your views are shared with the office's staff. To talk to us, call {office_phone}. "
        "Reply STOP to stop texts.",
    ),
    (
        "Health care: we hear you",
        "Health care",
        "Hi {first_name|there}, {official_name}'s office read your message about health care. "
        "We keep track of every view on it. Questions? Call {office_phone}.",
    ),
)


def demo_letters_ensure(*, office: Office) -> dict[str, int]:
    """Create and approve each demo letter the office does not have yet; returns how many (none: empty)."""
    admin = (
        Membership.objects.filter(office=office, role=Role.ADMIN)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if admin is None:
        return {}
    created = 0
    for name, tag_name, body in LETTERS:
        if FormLetter.objects.filter(office=office, name=name).exists():
            continue
        tags = list(Tag.objects.filter(office=office, name=tag_name).values_list("pk", flat=True))
        letter = letters.letter_create(office=office, actor=admin.user, name=name, body=body, tag_ids=tags)
        letters.letter_approve(office=office, membership=admin, pk=letter.pk)
        created += 1
    return {"form letters": created} if created else {}
