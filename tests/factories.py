"""factory_boy factories: each tenant-owned factory takes its office from its parent, so data is coherent.

In annotated code call ``create`` (``OfficeFactory.create(...)`` is an ``Office``): factory_boy types it,
while calling the class itself (``OfficeFactory(...)``, the same thing at runtime) is untyped.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone
from factory.declarations import LazyFunction, SelfAttribute, Sequence, SubFactory
from factory.django import DjangoModelFactory, Password

from constituents.models import Constituent
from messages.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
    Tag,
    TagKind,
    TriageQueue,
)
from offices.models import Membership, Office, OfficePhoneNumber, Role


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = Sequence(lambda n: f"user{n}")
    password = Password("pw-for-tests-only")


class OfficeFactory(DjangoModelFactory[Office]):
    class Meta:
        model = Office

    name = Sequence(lambda n: f"Office {n}")
    slug = Sequence(lambda n: f"office-{n}")
    official_name = "Jordan Rivera"
    official_title = "Representative"
    district_label = "CA-12"
    time_zone = "America/Los_Angeles"


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = SubFactory(UserFactory)
    office = SubFactory(OfficeFactory)
    role = Role.STAFF


class PhoneNumberFactory(DjangoModelFactory[OfficePhoneNumber]):
    class Meta:
        model = OfficePhoneNumber

    office = SubFactory(OfficeFactory)
    e164 = Sequence(lambda n: f"+1415555{n % 10000:04d}")


class ConstituentFactory(DjangoModelFactory[Constituent]):
    class Meta:
        model = Constituent

    office = SubFactory(OfficeFactory)
    phone = Sequence(lambda n: f"+1202555{n % 10000:04d}")
    first_name = "Pat"
    last_name = Sequence(lambda n: f"Constituent{n}")


class TagFactory(DjangoModelFactory[Tag]):
    class Meta:
        model = Tag

    office = SubFactory(OfficeFactory)
    name = Sequence(lambda n: f"Tag {n}")
    kind = TagKind.ISSUE


class QueueFactory(DjangoModelFactory[TriageQueue]):
    class Meta:
        model = TriageQueue

    office = SubFactory(OfficeFactory)
    name = Sequence(lambda n: f"Queue {n}")


class ConversationFactory(DjangoModelFactory[Conversation]):
    class Meta:
        model = Conversation

    constituent = SubFactory(ConstituentFactory)
    office = SelfAttribute("constituent.office")
    status = ConversationStatus.OPEN
    last_activity_at = LazyFunction(timezone.now)


class MessageFactory(DjangoModelFactory[Message]):
    class Meta:
        model = Message

    conversation = SubFactory(ConversationFactory)
    office = SelfAttribute("conversation.office")
    direction = Direction.INBOUND
    channel = Channel.SMS
    body = "Please support the clean water bill."
    provider_sid = LazyFunction(lambda: sid("SM"))
    status = MessageStatus.RECEIVED
    from_number = SelfAttribute("conversation.constituent.phone")
    to_number = "+14155550100"
    processed_at = LazyFunction(timezone.now)
