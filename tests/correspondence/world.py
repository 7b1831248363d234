"""A small office for bulk-reply tests: numbers, members, constituents who texted, an approved letter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from correspondence.models import FormLetter
from correspondence.services import letters
from messages.models import Conversation, Direction, Message
from offices.models import Membership, Office, OfficePhoneNumber
from tests import factories

LETTER_BODY = "Dear {first_name|neighbor}, thank you for writing to {official_title} {official_name}."


@dataclass
class World:
    office: Office
    number: OfficePhoneNumber
    staff: Any
    admin: Membership
    letter: FormLetter
    conversations: list[Conversation] = field(default_factory=list)

    def texter(
        self, *, first: str = "Pat", zip_code: str = "", phone: str | None = None, **extra: Any
    ) -> Conversation:
        """A constituent who texted the office (so they can be texted back), with their conversation."""
        kwargs: dict[str, Any] = {"office": self.office, "first_name": first, "zip_code": zip_code, **extra}
        if phone is not None:
            kwargs["phone"] = phone
        constituent = factories.ConstituentFactory.create(**kwargs)
        conversation = factories.ConversationFactory.create(
            constituent=constituent, last_inbound_at=timezone.now() - timedelta(minutes=5)
        )
        factories.MessageFactory.create(
            conversation=conversation, direction=Direction.INBOUND, to_number=self.number.e164
        )
        self.conversations.append(conversation)
        return conversation

    def ids(self) -> list[int]:
        return [c.pk for c in self.conversations]


def world_build(*, slug: str = "alpha", send_rate: float | None = None) -> World:
    office = factories.OfficeFactory.create(
        slug=slug, name=f"{slug.title()} Office", time_zone="America/New_York"
    )
    number = factories.PhoneNumberFactory.create(office=office, send_rate=send_rate)
    staff = factories.MembershipFactory.create(office=office, role="staff").user
    admin = factories.MembershipFactory.create(office=office, role="admin")
    letter = letters.letter_create(office=office, actor=staff, name="Clean water", body=LETTER_BODY)
    letters.letter_approve(office=office, membership=admin, pk=letter.pk)
    letter.refresh_from_db()
    return World(office=office, number=number, staff=staff, admin=admin, letter=letter)


def outbound(world: World) -> list[Message]:
    return list(Message.objects.filter(office=world.office, direction=Direction.OUTBOUND).order_by("pk"))
