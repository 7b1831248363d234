"""Callbacks in any order: the transcription before the recording, the status before the menu, a callback
for a call not seen yet. Every ordering of one call's webhooks ends in the same state."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from constituents.models import Constituent
from messages.models import Channel, Conversation, ConversationEvent, ConversationTag, Message
from voice.models import ParkedVoiceCallback
from voice.services import voice_followups_drain

pytestmark = pytest.mark.django_db

EVENTS = {
    "call": "voice_call_received__basic",
    "menu": "voice_menu_selected__digit",
    "record": "voice_voicemail_recorded__basic",
    "recording": "voice_recording_completed__completed",
    "transcription": "voice_transcription_received__completed",
    "status": "voice_call_status__completed",
}
NATURAL = ("call", "menu", "record", "recording", "transcription", "status")
ORDERS = sorted(
    {
        ("call", "menu", *rest)
        for rest in itertools.permutations(("record", "recording", "transcription", "status"))
    }
    | {
        ("transcription", "recording", "status", "call", "menu", "record"),  # parked until the status comes
        ("status", "transcription", "recording", "record", "menu", "call"),
        ("recording", "transcription", "menu", "record", "status", "call"),
        ("menu", "call", "record", "transcription", "recording", "status"),
        tuple(reversed(NATURAL)),
    }
)


def state() -> dict[str, Any]:
    """The domain state a call leaves once the worker has done its share, without timestamps or ids."""
    voice_followups_drain()
    call = Message.objects.get(channel=Channel.CALL)
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    conversation = Conversation.objects.get()
    return {
        "call": (call.provider_sid, call.duration_seconds, call.details),
        "voicemail": (voicemail.provider_sid, voicemail.duration_seconds, voicemail.body, voicemail.details),
        "same_thread": call.conversation_id == voicemail.conversation_id == conversation.pk,
        "messages": Message.objects.count(),
        "constituents": list(Constituent.objects.values_list("phone", flat=True)),
        "thread": (
            conversation.status,
            conversation.queue_id is not None,
            conversation.is_unread,
            conversation.last_message_channel,
            conversation.last_message_preview,
        ),
        "tags": ConversationTag.objects.count(),
        "events": sorted(ConversationEvent.objects.values_list("kind", flat=True)),
        "parked": ParkedVoiceCallback.objects.filter(applied_at__isnull=True).count(),
    }


def _play(post_voice: Any, order: tuple[str, ...]) -> dict[str, Any]:
    for event in order:
        post_voice(EVENTS[event])
    return state()


@pytest.fixture
def expected(post_voice: Any, django_db_blocker: Any) -> dict[str, Any]:
    result = _play(post_voice, NATURAL)
    Message.objects.all().delete()
    ParkedVoiceCallback.objects.all().delete()
    Conversation.objects.all().delete()
    Constituent.objects.all().delete()
    return result


def test_the_natural_order_gives_a_complete_voicemail_call(post_voice: Any) -> None:
    result = _play(post_voice, NATURAL)
    _call_sid, duration, details = result["call"]
    assert duration == 75
    assert details["outcome"] == "voicemail"
    assert details["call_status"] == "completed"
    assert [entry["step"] for entry in details["menu_path"]] == [0, 1]
    _, vm_duration, body, vm_details = result["voicemail"]
    assert vm_duration == 45
    assert body.startswith("Hi, this is Pat.")
    assert vm_details["transcript_status"] == "completed"
    assert vm_details["topic"] == "Health care"
    assert result["thread"][-1].startswith("Hi, this is Pat.")  # the inbox preview shows the transcript
    assert result["parked"] == 0
    assert result["tags"] == 1
    assert result["same_thread"]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(order) for order in ORDERS])
def test_any_order_of_callbacks_ends_in_the_same_state(
    order: tuple[str, ...], post_voice: Any, expected: dict[str, Any]
) -> None:
    assert _play(post_voice, order) == expected


def test_each_callback_twice_changes_nothing(post_voice: Any, expected: dict[str, Any]) -> None:
    assert _play(post_voice, tuple(event for event in NATURAL for _ in range(2))) == expected
