"""``manage.py seed_demo``: the demo office is created once, coherent, and entirely its own."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Q
from django.utils import timezone

from constituents.models import ConsentEvent, Constituent, SmsConsent
from demo.seed import DEMO_OFFICE_SLUG, DEMO_PASSWORD, DEMO_USERS, TAGS, demo_seed
from messages.models import (
    Channel,
    Conversation,
    ConversationStatus,
    ConversationTag,
    Direction,
    Media,
    Message,
    MessageStatus,
    Tag,
    TriageQueue,
)
from messages.services.threading import is_system_message, preview_for
from offices.models import IvrMenu, IvrOption, Membership, Office, OfficeHours, OfficePhoneNumber, Role
from voice.models import CallInCampaign
from voice.services.calls import call_preview

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_mode(settings: Any) -> None:
    settings.DEMO_MODE = True


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def demo_counts() -> dict[str, int]:
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    return {
        "offices": Office.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.filter(office=office).count(),
        "numbers": OfficePhoneNumber.objects.filter(office=office).count(),
        "tags": Tag.objects.filter(office=office).count(),
        "queues": TriageQueue.objects.filter(office=office).count(),
        "constituents": Constituent.objects.filter(office=office).count(),
        "conversations": Conversation.objects.filter(office=office).count(),
        "messages": Message.objects.filter(office=office).count(),
        "media": Media.objects.filter(office=office).count(),
        "conversation_tags": ConversationTag.objects.filter(conversation__office=office).count(),
        "consent_events": ConsentEvent.objects.filter(office=office).count(),
        "ivr_menus": IvrMenu.objects.filter(office=office).count(),
        "ivr_options": IvrOption.objects.filter(menu__office=office).count(),
        "call_in_campaigns": CallInCampaign.objects.filter(office=office).count(),
    }


def test_seeding_twice_creates_the_data_once() -> None:
    first = seed()
    counts = demo_counts()
    second = seed()

    assert demo_counts() == counts
    assert "seeded in" in first
    assert "already exists" in second


def test_second_seed_returns_quickly_without_writing() -> None:
    demo_seed()

    result = demo_seed()

    assert result.created is False
    assert result.seconds < 0.5


def test_counts_are_in_the_expected_ranges() -> None:
    seed()
    counts = demo_counts()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)

    assert counts["offices"] == 1
    assert counts["users"] == 5
    assert counts["memberships"] == 4
    assert counts["numbers"] == 2
    assert counts["tags"] == 10
    assert counts["queues"] == 4
    assert counts["constituents"] == 300
    assert 550 <= counts["conversations"] <= 650
    assert 1700 <= counts["messages"] <= 2400
    assert OfficeHours.objects.filter(office=office).count() == 5
    channels = Counter(Message.objects.filter(office=office).values_list("channel", flat=True))
    assert all(channels[channel] > 0 for channel in Channel.values), channels
    outbound = Counter(
        Message.objects.filter(office=office, direction=Direction.OUTBOUND).values_list("status", flat=True)
    )
    assert {MessageStatus.DELIVERED, MessageStatus.SENT, MessageStatus.FAILED} <= set(outbound)
    statuses = Counter(Conversation.objects.filter(office=office).values_list("status", flat=True))
    assert all(statuses[status] > 0 for status in ConversationStatus.values), statuses


def test_opted_out_constituents_have_a_consent_event_for_their_stop_text() -> None:
    seed()
    opted_out = Constituent.objects.filter(office__slug=DEMO_OFFICE_SLUG, sms_consent=SmsConsent.OPTED_OUT)

    assert opted_out.count() >= 3
    for constituent in opted_out:
        event = ConsentEvent.objects.get(constituent=constituent)
        stop = Message.objects.get(provider_sid=event.message_sid)
        assert (event.previous, event.new) == (SmsConsent.IMPLIED, SmsConsent.OPTED_OUT)
        assert event.keyword == "STOP"
        assert stop.conversation.constituent_id == constituent.pk
        assert stop.body == "STOP"
        assert event.created_at == stop.created_at


def test_each_constituent_has_at_most_one_unclosed_conversation() -> None:
    seed()
    unclosed = (
        Conversation.objects.filter(office__slug=DEMO_OFFICE_SLUG)
        .exclude(status=ConversationStatus.CLOSED)
        .values("constituent")
        .annotate(n=Count("id"))
    )

    assert unclosed.exists()
    assert max(row["n"] for row in unclosed) == 1


def test_conversation_status_fields_are_consistent() -> None:
    seed()
    now = timezone.now()
    conversations = Conversation.objects.filter(office__slug=DEMO_OFFICE_SLUG)

    for c in conversations:
        assert (c.closed_at is not None) == (c.status == ConversationStatus.CLOSED), c.pk
        assert (c.snoozed_until is not None) == (c.status == ConversationStatus.SNOOZED), c.pk
        if c.closed_at is not None:
            assert c.last_activity_at <= c.closed_at <= now
        if c.snoozed_until is not None:
            assert c.snoozed_until > now
    # A constituent's threads do not overlap: each closes before the next begins.
    threads = defaultdict(list)
    for c in conversations.order_by("created_at"):
        threads[c.constituent_id].append(c)
    for sequence in threads.values():
        for earlier, later in itertools.pairwise(sequence):
            assert earlier.closed_at is not None
            assert earlier.closed_at < later.created_at


def test_denormalised_fields_match_the_latest_message() -> None:
    seed()
    messages = defaultdict(list)
    for m in Message.objects.filter(office__slug=DEMO_OFFICE_SLUG).order_by("created_at", "id"):
        messages[m.conversation_id].append(m)

    for c in Conversation.objects.filter(office__slug=DEMO_OFFICE_SLUG):
        thread = messages[c.pk]
        latest = [m for m in thread if not is_system_message(message=m)][-1]  # system texts leave it alone
        # A call alone asks nothing of staff: it is activity, not an unread inbound message.
        inbound = [
            m.created_at for m in thread if m.direction == Direction.INBOUND and m.channel != Channel.CALL
        ]
        replies = [m.created_at for m in thread if m.direction == Direction.OUTBOUND and m.sent_by_id]
        assert c.last_activity_at == latest.created_at, c.pk
        assert c.last_message_preview == (
            call_preview(latest) if latest.channel == Channel.CALL else preview_for(latest)
        )
        assert c.last_message_channel == latest.channel
        assert c.last_inbound_at == (max(inbound) if inbound else None)
        assert c.first_response_at == (min(replies) if replies else None)
        assert c.created_at == thread[0].created_at
        if c.status in (ConversationStatus.PENDING, ConversationStatus.SNOOZED):
            # A new inbound message would have woken the thread (conversation_touch).
            assert thread[-1].direction != Direction.INBOUND


def test_messages_are_processed_in_the_last_60_days_with_well_formed_unique_sids() -> None:
    seed()
    now = timezone.now()
    messages = Message.objects.filter(office__slug=DEMO_OFFICE_SLUG)
    prefixes = {Channel.SMS: "SM", Channel.MMS: "MM", Channel.CALL: "CA", Channel.VOICEMAIL: "RE"}

    assert not messages.filter(processed_at__isnull=True).exists()
    assert not messages.filter(Q(created_at__gt=now) | Q(created_at__lt=now - timedelta(days=61))).exists()
    for m in messages.exclude(channel=Channel.NOTE):
        assert re.fullmatch(r"[A-Z]{2}[0-9a-f]{32}", m.provider_sid or ""), m.pk
        assert m.provider_sid is not None
        assert m.provider_sid[:2] == prefixes[Channel(m.channel)]
    assert not messages.filter(channel=Channel.NOTE).exclude(direction=Direction.INTERNAL).exists()
    assert not messages.filter(channel=Channel.CALL, duration_seconds__isnull=True).exists()
    assert not messages.filter(channel=Channel.VOICEMAIL, body="").exists()


def test_everything_belongs_to_the_demo_office() -> None:
    seed()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    member_ids = set(Membership.objects.filter(office=office).values_list("user_id", flat=True))

    assert not Constituent.objects.exclude(office=office).exists()
    assert not Conversation.objects.exclude(office=office).exists()
    assert not Conversation.objects.exclude(constituent__office=office).exists()
    assert not Conversation.objects.filter(queue__isnull=False).exclude(queue__office=office).exists()
    assert not Message.objects.exclude(office=office).exists()
    assert not Message.objects.exclude(conversation__office=office).exists()
    assert not Media.objects.exclude(office=office).exclude(message__office=office).exists()
    assert not ConversationTag.objects.exclude(tag__office=office).exists()
    assert not ConsentEvent.objects.exclude(office=office).exists()
    assignees = set(Conversation.objects.filter(assignee__isnull=False).values_list("assignee_id", flat=True))
    assert assignees <= member_ids
    senders = set(Message.objects.filter(sent_by__isnull=False).values_list("sent_by_id", flat=True))
    assert senders <= member_ids
    office_numbers = set(OfficePhoneNumber.objects.filter(office=office).values_list("e164", flat=True))
    assert set(Message.objects.filter(direction=Direction.INBOUND).values_list("to_number", flat=True)) <= (
        office_numbers
    )


def test_logins_are_printed_and_work_with_the_demo_password() -> None:
    output = seed()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)

    for spec in DEMO_USERS:
        line = rf"^\s+{spec.username}\s+/\s+{DEMO_PASSWORD}\s+/"
        assert re.search(line, output, re.MULTILINE), spec.username
        user = get_user_model().objects.get(username=spec.username)
        assert user.check_password(DEMO_PASSWORD), spec.username
    roles = dict(Membership.objects.filter(office=office).values_list("user__username", "role"))
    assert roles == {
        "admin": Role.ADMIN,
        "staff": Role.STAFF,
        "staff2": Role.STAFF,
        "official": Role.OFFICIAL,
    }
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_staff
    assert not users["admin"].is_superuser
    assert users["root"].is_superuser
    assert users["root"].is_staff
    assert not any(users[name].is_staff for name in ("staff", "staff2", "official"))


def test_reset_deletes_the_demo_office_and_reseeds_it() -> None:
    seed()
    fresh = demo_counts()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    Constituent.objects.create(office=office, phone="+12025550199", first_name="Added")
    get_user_model().objects.filter(username="staff").update(first_name="Changed")

    seed("--reset")

    assert demo_counts() == fresh
    assert not Constituent.objects.filter(first_name="Added").exists()
    assert get_user_model().objects.get(username="staff").first_name != "Changed"


def test_seed_refuses_to_run_outside_demo_mode(settings: Any) -> None:
    settings.DEMO_MODE = False

    with pytest.raises(CommandError, match="DEMO_MODE"):
        seed()

    assert not Office.objects.exists()


def test_seed_refuses_when_a_demo_number_belongs_to_another_office() -> None:
    other = Office.objects.create(name="Other", slug="other", official_name="X", official_title="Senator")
    OfficePhoneNumber.objects.create(office=other, e164="+14155550100")

    with pytest.raises(CommandError, match=r"\+14155550100"):
        seed()

    assert not Office.objects.filter(slug=DEMO_OFFICE_SLUG).exists()


def _relative_luminance(hex_color: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


@pytest.mark.parametrize(("name", "color"), [(name, color) for name, _, color in TAGS])
def test_tag_colours_are_distinct_and_readable_with_white_text(name: str, color: str) -> None:
    contrast = 1.05 / (_relative_luminance(color) + 0.05)

    assert contrast >= 4.5, f"{name} {color}: {contrast:.2f}:1"
    assert [c for _, _, c in TAGS].count(color) == 1
