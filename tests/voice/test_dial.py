"""Talking to staff: who picked up, or the missed call that becomes a voicemail."""

from __future__ import annotations

from typing import Any

import pytest

from messages.models import Channel, Message
from tests.voice.conftest import Hotline
from voice.models import CallOutcome, ParkedVoiceCallback

pytestmark = pytest.mark.django_db


def _call() -> Message:
    return Message.objects.get(channel=Channel.CALL)


def test_answered_call_records_who_picked_up_and_for_how_long(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    whisper = post_voice("voice_staff_answered__basic").content.decode()
    assert "Constituent hotline call" in whisper
    assert "<Hangup" not in whisper
    body = post_voice("voice_dial_completed__answered").content.decode()
    assert body.endswith("<Hangup /></Response>")
    post_voice("voice_call_status__completed")
    details = _call().details
    assert details["outcome"] == CallOutcome.ANSWERED
    assert details["answered_by"] == "+12025550111"
    assert details["dial"] == {"status": "completed", "call_sid": "CA" + "d" * 32, "duration": 42}
    assert details["menu_path"][1]["result"] == "talk to staff"


@pytest.mark.parametrize("name", ["voice_dial_completed__no_answer", "voice_dial_completed__busy"])
def test_missed_call_goes_to_voicemail_and_shows_both(name: str, post_voice: Any) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    body = post_voice(name).content.decode()
    assert "No one is available to take your call right now." in body
    assert "<Record " in body
    assert _call().details["outcome"] == CallOutcome.MISSED
    post_voice("voice_recording_completed__completed")
    details = _call().details
    assert details["outcome"] == CallOutcome.VOICEMAIL
    assert details["dial"]["status"] in ("no-answer", "busy")


def test_staff_answer_for_a_call_not_stored_yet_is_parked_then_applied(post_voice: Any) -> None:
    post_voice("voice_staff_answered__basic")
    assert ParkedVoiceCallback.objects.get().kind == "staff_answered"
    post_voice("voice_call_received__basic")
    assert _call().details["answered_by"] == "+12025550111"
    assert ParkedVoiceCallback.objects.get().applied_at is not None
