"""A call-in vote is counted on its campaign and is not inbox activity: the caller's open casework thread
keeps its place and its summary. A call that starts at the call-in menu and turns out to be something else
is folded into the thread as any call is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from messages.models import Channel, Conversation, ConversationStatus
from messages.selectors.inbox import inbox_conversations
from tests import factories
from tests.voice.conftest import Hotline
from tests.voice.helpers import CALL_SID, CALLER, load
from voice.models import CallInCampaign, CallInPosition, CallInTally

pytestmark = pytest.mark.django_db

SUMMARY = (
    "status",
    "last_activity_at",
    "last_message_preview",
    "last_message_channel",
    "last_inbound_at",
    "staff_read_at",
    "first_response_at",
)


@pytest.fixture
def campaign(hotline: Hotline) -> CallInCampaign:
    issue: Any = factories.TagFactory.create(office=hotline.office, name="H.R. 1234")
    return CallInCampaign.objects.create(
        office=hotline.office,
        tag=issue,
        title="H.R. 1234",
        prompt_text="If you are calling about H.R. 1234, press 1 to support, 2 to oppose, 3 for a message.",
        is_active=True,
    )


@pytest.fixture
def casework(hotline: Hotline) -> tuple[Conversation, Conversation]:
    """The caller's older open casework thread, and another constituent's newer one above it."""
    now = timezone.now()
    caller: Any = factories.ConstituentFactory.create(office=hotline.office, phone=CALLER)
    older: Any = factories.ConversationFactory.create(
        constituent=caller,
        last_activity_at=now - timedelta(days=3),
        last_inbound_at=now - timedelta(days=3),
        staff_read_at=now - timedelta(days=2),
        last_message_preview="My disability claim has been pending since March",
        last_message_channel=Channel.SMS,
    )
    other: Any = factories.ConstituentFactory.create(office=hotline.office, phone="+14155550999")
    newer: Any = factories.ConversationFactory.create(
        constituent=other, last_activity_at=now - timedelta(days=1), last_message_preview="Pothole on Elm"
    )
    return older, newer


def _summary(conversation: Conversation) -> tuple[Any, ...]:
    conversation.refresh_from_db()
    return tuple(getattr(conversation, name) for name in SUMMARY)


def _inbox(hotline: Hotline) -> list[int]:
    return list(inbox_conversations(office=hotline.office).values_list("pk", flat=True))


def _post_call(post_signed: Any, campaign: CallInCampaign, digits: str | None) -> dict[str, str]:
    params = {**load("voice_call_received__basic")["params"], "CallSid": CALL_SID}
    assert post_signed("/webhooks/twilio/voice/", params).status_code == 200
    if digits is not None:
        path = f"/webhooks/twilio/voice/menu/?attempt=1&node=callin-{campaign.pk}&step=1"
        assert post_signed(path, {**params, "Digits": digits}).status_code == 200
    return params


def _hang_up(post_signed: Any, params: dict[str, str]) -> None:
    status = {**load("voice_call_status__completed")["params"], "CallSid": params["CallSid"]}
    assert post_signed("/webhooks/twilio/voice/status/", status).status_code in (200, 204)


@pytest.mark.parametrize("digits", ["1", "2"])
def test_a_call_in_vote_leaves_the_callers_casework_thread_where_it_was(
    post_signed: Any,
    hotline: Hotline,
    campaign: CallInCampaign,
    casework: tuple[Conversation, Conversation],
    digits: str,
) -> None:
    older, newer = casework
    before, order = _summary(older), _inbox(hotline)
    assert order == [newer.pk, older.pk]

    params = _post_call(post_signed, campaign, digits)
    _hang_up(post_signed, params)

    tally = CallInTally.objects.get(campaign=campaign)
    assert tally.position == (CallInPosition.SUPPORT if digits == "1" else CallInPosition.OPPOSE)
    assert tally.constituent_id == older.constituent_id
    assert _summary(older) == before
    assert _inbox(hotline) == order
    assert (
        older.messages.filter(channel=Channel.CALL).count() == 1
    )  # the call is on the timeline all the same


def test_a_caller_on_other_business_is_a_call_in_the_thread(
    post_signed: Any, hotline: Hotline, campaign: CallInCampaign, casework: tuple[Conversation, Conversation]
) -> None:
    older, newer = casework
    before = _summary(older)
    params = _post_call(post_signed, campaign, None)
    assert _summary(older) == before  # at the call-in menu it may still be a vote
    path = f"/webhooks/twilio/voice/menu/?attempt=1&node=callin-{campaign.pk}&step=1"
    assert post_signed(path, {**params, "Digits": "7"}).status_code == 200  # not a vote: the usual menu
    _hang_up(post_signed, params)
    older.refresh_from_db()
    assert (older.last_message_channel, older.last_message_preview) == (Channel.CALL, "Missed call")
    assert _inbox(hotline) == [older.pk, newer.pk]
    assert older.status == ConversationStatus.OPEN
    assert not CallInTally.objects.exists()


def test_a_caller_who_hangs_up_at_the_call_in_menu_is_a_missed_call(
    post_signed: Any, hotline: Hotline, campaign: CallInCampaign, casework: tuple[Conversation, Conversation]
) -> None:
    older, newer = casework
    params = _post_call(post_signed, campaign, None)
    _hang_up(post_signed, params)
    older.refresh_from_db()
    assert older.last_message_preview == "Missed call"
    assert _inbox(hotline) == [older.pk, newer.pk]
