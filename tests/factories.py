"""factory_boy factories: each tenant-owned factory takes its office from its parent, so data is coherent."""

from __future__ import annotations

import secrets

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

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


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class OfficeFactory(factory.django.DjangoModelFactory[Office]):
    class Meta:
        model = Office

    name = factory.Sequence(lambda n: f"Office {n}")
    slug = factory.Sequence(lambda n: f"office-{n}")
    official_name = "Jordan Rivera"
    official_title = "Representative"
    district_label = "CA-12"
    time_zone = "America/Los_Angeles"


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    office = factory.SubFactory(OfficeFactory)
    role = Role.STAFF


class PhoneNumberFactory(factory.django.DjangoModelFactory[OfficePhoneNumber]):
    class Meta:
        model = OfficePhoneNumber

    office = factory.SubFactory(OfficeFactory)
    e164 = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")


class ConstituentFactory(factory.django.DjangoModelFactory[Constituent]):
    class Meta:
        model = Constituent

    office = factory.SubFactory(OfficeFactory)
    phone = factory.Sequence(lambda n: f"+1202555{n % 10000:04d}")
    first_name = "Pat"
    last_name = factory.Sequence(lambda n: f"Constituent{n}")


class TagFactory(factory.django.DjangoModelFactory[Tag]):
    class Meta:
        model = Tag

    office = factory.SubFactory(OfficeFactory)
    name = factory.Sequence(lambda n: f"Tag {n}")
    kind = TagKind.ISSUE


class QueueFactory(factory.django.DjangoModelFactory[TriageQueue]):
    class Meta:
        model = TriageQueue

    office = factory.SubFactory(OfficeFactory)
    name = factory.Sequence(lambda n: f"Queue {n}")


class ConversationFactory(factory.django.DjangoModelFactory[Conversation]):
    class Meta:
        model = Conversation

    constituent = factory.SubFactory(ConstituentFactory)
    office = factory.SelfAttribute("constituent.office")
    status = ConversationStatus.OPEN
    last_activity_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    office = factory.SelfAttribute("conversation.office")
    direction = Direction.INBOUND
    channel = Channel.SMS
    body = "Please support the clean water bill."
    provider_sid = factory.LazyFunction(lambda: sid("SM"))
    status = MessageStatus.RECEIVED
    from_number = factory.SelfAttribute("conversation.constituent.phone")
    to_number = "+14155550100"
    processed_at = factory.LazyFunction(timezone.now)
