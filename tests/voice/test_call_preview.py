"""A call in the inbox says what happened ("Call, 2 min, answered by …", "Missed call"), in any webhook order;
a voicemail left on a call keeps its own preview (its transcript, else its length)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from messages.models import Channel, Conversation, Message
from tests import factories
from tests.voice.conftest import Hotline
from tests.voice.helpers import CALLER

pytestmark = pytest.mark.django_db

STAFF = "+12025550111"  # the staff phone that picks up in voice_staff_answered__basic


def _thread() -> Conversation:
    return Conversation.objects.get(constituent__phone=CALLER)


def _call_row() -> Message:
    return Message.objects.get(channel=Channel.CALL)


ANSWERED = ("staff", "dial", "status")
ANSWERED_FIXTURES: dict[str, tuple[str, dict[str, str]]] = {
    "staff": ("voice_staff_answered__basic", {}),
    "dial": ("voice_dial_completed__answered", {}),
    "status": ("voice_call_status__completed", {}),
}


@pytest.mark.parametrize("order", list(itertools.permutations(ANSWERED)), ids="-".join)
def test_an_answered_call_previews_its_length_and_who_answered_in_any_order(
    post_voice: Any, hotline: Hotline, order: tuple[str, ...]
) -> None:
    post_voice("voice_call_received__basic")
    assert _thread().last_message_preview == "Call in progress"
    post_voice("voice_menu_selected__digit", Digits="2")
    for event in order:
        name, overrides = ANSWERED_FIXTURES[event]
        post_voice(name, **overrides)
    thread = _thread()
    # The talk time with staff (DialCallDuration 42 s), not the whole call with its menu (75 s).
    assert thread.last_message_preview == f"Call, under a minute, answered by {STAFF}"
    assert thread.last_message_channel == Channel.CALL
    assert not thread.is_unread  # a call alone asks nothing of staff
    assert _call_row().details["preview"] == thread.last_message_preview


def test_a_longer_call_rounds_to_minutes(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    post_voice("voice_call_status__completed", CallDuration="200")  # before the dial result
    post_voice("voice_staff_answered__basic")
    assert _thread().last_message_preview == f"Call, 3 min, answered by {STAFF}"  # the call's 200 s so far
    post_voice("voice_dial_completed__answered", DialCallDuration="130")
    assert _thread().last_message_preview == f"Call, 2 min, answered by {STAFF}"


@pytest.mark.parametrize("status_first", [False, True])
def test_a_call_no_one_answered_is_a_missed_call(
    post_voice: Any, hotline: Hotline, status_first: bool
) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    steps: list[tuple[str, dict[str, str]]] = [
        ("voice_dial_completed__no_answer", {}),
        ("voice_call_status__completed", {}),
    ]
    for name, overrides in reversed(steps) if status_first else steps:
        post_voice(name, **overrides)  # the caller hung up at the beep: no voicemail
    assert _thread().last_message_preview == "Missed call"


def test_a_caller_who_hangs_up_in_the_menu_is_a_missed_call(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_call_status__completed")
    assert _thread().last_message_preview == "Missed call"


@pytest.mark.parametrize(
    "order",
    [
        ("record", "recording", "status"),
        ("status", "recording", "record"),
        ("recording", "status", "record"),
    ],
    ids="-".join,
)
def test_a_voicemail_call_keeps_the_voicemails_preview(
    post_voice: Any, hotline: Hotline, order: tuple[str, ...]
) -> None:
    names = {
        "record": "voice_voicemail_recorded__basic",
        "recording": "voice_recording_completed__completed",
        "status": "voice_call_status__completed",
    }
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit")  # health care: leave a message
    for event in order:
        post_voice(names[event])
    thread = _thread()
    assert (thread.last_message_channel, thread.last_message_preview) == (
        Channel.VOICEMAIL,
        "Voicemail, 0:45",
    )
    post_voice("voice_transcription_received__completed")
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.body
    assert _thread().last_message_preview == " ".join(voicemail.body.split())[:160]


def test_a_call_moves_an_older_thread_and_shows_its_outcome(post_voice: Any, hotline: Hotline) -> None:
    constituent: Any = factories.ConstituentFactory.create(office=hotline.office, phone=CALLER)
    earlier = timezone.now() - timedelta(days=2)
    factories.ConversationFactory.create(
        constituent=constituent,
        last_activity_at=earlier,
        last_message_preview="My housing application",
        last_message_channel=Channel.SMS,
    )
    post_voice("voice_call_received__basic")
    post_voice("voice_call_status__completed")
    thread = _thread()
    assert thread.last_activity_at > earlier
    assert (thread.last_message_channel, thread.last_message_preview) == (Channel.CALL, "Missed call")


def test_a_late_call_webhook_does_not_overwrite_a_newer_message(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    thread = _thread()
    Conversation.objects.filter(pk=thread.pk).update(
        last_activity_at=timezone.now() + timedelta(minutes=1),
        last_message_preview="Missed call",  # a later call, from another webhook
        last_message_channel=Channel.CALL,
    )
    post_voice("voice_menu_selected__digit", Digits="2")
    post_voice("voice_staff_answered__basic")
    assert _thread().last_message_preview == "Missed call"
