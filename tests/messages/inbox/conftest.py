"""An office with a small, varied inbox: queues, tags, members of every role, every channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from constituents.models import SmsConsent
from messages.models import Channel, ConversationStatus, Direction, MessageStatus
from tests import factories
from tests.redis_cache import PrivateCache


@dataclass
class Inbox:
    office: Any
    staff: Any
    other_staff: Any
    admin: Any
    official: Any
    health: Any
    housing: Any
    casework: Any
    press: Any
    conversations: dict[str, Any] = field(default_factory=dict)

    def client_for(self, user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client


def add_conversation(
    office: Any, *, name: str, phone: str, body: str, minutes_ago: int, **kwargs: Any
) -> Any:
    first, _, last = name.partition(" ")
    constituent_kwargs = kwargs.pop("constituent", {})
    constituent = factories.ConstituentFactory.create(
        office=office, first_name=first, last_name=last, phone=phone, **constituent_kwargs
    )
    channel = kwargs.pop("channel", Channel.SMS)
    at = timezone.now() - timedelta(minutes=minutes_ago)
    tags = kwargs.pop("tags", [])
    conversation: Any = factories.ConversationFactory.create(
        constituent=constituent,
        last_activity_at=at,
        last_message_preview=body[:160],
        last_message_channel=channel,
        last_inbound_at=at,
        **kwargs,
    )
    factories.MessageFactory.create(
        conversation=conversation,
        body=body,
        channel=channel,
        created_at=at,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        details={"transcript_status": "completed"} if channel == Channel.VOICEMAIL else {},
    )
    for tag in tags:
        conversation.tags.add(tag)
    return conversation


@pytest.fixture(autouse=True)
def _private_cache(private_cache: PrivateCache) -> PrivateCache:
    """Every inbox test runs on the real Redis cache, under a key prefix of its own: the rail counts are
    cached by office id, and office ids repeat across tests, xdist workers and concurrent runs."""
    return private_cache


@pytest.fixture
def inbox(db: None) -> Inbox:
    return build_inbox()


def build_inbox() -> Inbox:
    office = factories.OfficeFactory.create(slug="alpha", name="Alpha Office", official_name="Jordan Rivera")
    factories.PhoneNumberFactory.create(office=office, e164="+14155550100")
    staff = factories.MembershipFactory.create(office=office, role="staff", user__username="alice").user
    other = factories.MembershipFactory.create(office=office, role="staff", user__username="bob").user
    admin = factories.MembershipFactory.create(office=office, role="admin", user__username="carol").user
    official = factories.MembershipFactory.create(office=office, role="official", user__username="rep").user
    health = factories.TagFactory.create(office=office, name="Health care", color="#1f6feb")
    housing = factories.TagFactory.create(office=office, name="Housing", color="#bf3989")
    casework = factories.QueueFactory.create(office=office, name="Casework")
    press = factories.QueueFactory.create(office=office, name="Press")
    world = Inbox(office, staff, other, admin, official, health, housing, casework, press)
    c = world.conversations
    c["water"] = add_conversation(
        office,
        name="Pat Rivera",
        phone="+12025550101",
        body="Please support the clean water bill.",
        minutes_ago=5,
        tags=[health],
        queue=casework,
    )
    c["rent"] = add_conversation(
        office,
        name="Sam Lee",
        phone="+12025550102",
        body="My landlord raised the rent on our housing.",
        minutes_ago=10,
        tags=[housing],
        assignee=staff,
        constituent={"in_district": True},
    )
    c["voicemail"] = add_conversation(
        office,
        name="Dana Cruz",
        phone="+12025550103",
        body="Hi, this is Dana calling about my Medicare card.",
        minutes_ago=15,
        channel=Channel.VOICEMAIL,
        constituent={"in_district": False},
    )
    c["snoozed"] = add_conversation(
        office,
        name="Lee Park",
        phone="+12025550104",
        body="Any update on the passport?",
        minutes_ago=20,
        status=ConversationStatus.SNOOZED,
        snoozed_until=timezone.now() + timedelta(days=2),
    )
    c["closed"] = add_conversation(
        office,
        name="Ari Stone",
        phone="+12025550105",
        body="Thanks, all sorted.",
        minutes_ago=30,
        status=ConversationStatus.CLOSED,
        closed_at=timezone.now(),
    )
    c["optout"] = add_conversation(
        office,
        name="Jo Quinn",
        phone="+12025550106",
        body="STOP",
        minutes_ago=40,
        constituent={"sms_consent": SmsConsent.OPTED_OUT},
        assignee=other,
    )
    return world
