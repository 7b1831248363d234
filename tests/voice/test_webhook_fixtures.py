"""One test per recorded voice webhook (tests/voice/fixtures/voice_*.json): the domain state it leaves.

Each test is named ``test_<fixture name>`` and posts its fixture signed, after the requests that come
before it in a real call, then checks what is stored (the call's ``Message`` row and its details, the
voicemail, its transcript, the caller and the thread) and the TwiML's verbs. A rejected request (400, or a
call to a number no office owns) must leave the database exactly as it was. The last test fails when a
fixture file has no test of its own.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from constituents.models import Constituent
from messages.models import Channel, Conversation, ConversationStatus, Direction, Message
from tests.voice.conftest import Hotline
from tests.voice.helpers import (
    CALL_SID,
    CALLER,
    HOTLINE,
    RECORDING_SID,
    TRANSCRIPTION_SID,
    voice_fixture_names,
)
from voice.models import CallOutcome, ParkedVoiceCallback, TranscriptStatus

pytestmark = pytest.mark.django_db

STAFF_PHONE = "+12025550111"
DIALLED_SID = "CA" + "d" * 32
RECORDING_URL = f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{RECORDING_SID}"
TRANSCRIPT = "Hi, this is Pat. I'm calling about my Medicare claim, please call me back."


# --- helpers ------------------------------------------------------------------------------------------


def verbs(response: Any) -> list[str]:
    """The top-level TwiML verbs of a response, in order."""
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    return [verb.tag for verb in root]


def said(response: Any) -> str:
    root = ET.fromstring(response.content)
    return " ".join(element.text or "" for element in root.iter("Say"))


def snapshot() -> tuple[Any, ...]:
    """Everything a voice webhook can write, to show a rejected request wrote nothing."""
    return (
        list(
            Message.objects.order_by("id").values_list(
                "provider_sid", "channel", "status", "duration_seconds", "body", "details"
            )
        ),
        list(
            Conversation.objects.order_by("id").values_list(
                "status", "last_message_preview", "last_activity_at", "last_inbound_at", "staff_read_at"
            )
        ),
        list(Constituent.objects.order_by("id").values_list("phone", "carrier_city")),
        list(ParkedVoiceCallback.objects.order_by("id").values_list("call_sid", "kind", "applied_at")),
    )


def the_call(sid: str = CALL_SID) -> Message:
    return Message.objects.get(provider_sid=sid, channel=Channel.CALL)


def the_voicemail() -> Message:
    return Message.objects.get(channel=Channel.VOICEMAIL)


def assert_rejected(post_voice: Any, name: str, reason: str) -> None:
    before = snapshot()
    response = post_voice(name)
    assert response.status_code == 400
    assert response.content.decode().startswith("Bad request: ")
    assert reason in response.content.decode()
    assert snapshot() == before


@pytest.fixture
def called(post_voice: Any) -> Message:
    """The call's own incoming-call request, which comes first in life."""
    post_voice("voice_call_received__basic")
    return the_call()


# --- the incoming call --------------------------------------------------------------------------------


def test_voice_call_received__basic(post_voice: Any, hotline: Hotline) -> None:
    response = post_voice("voice_call_received__basic")
    assert verbs(response) == ["Gather"]
    assert f"node=menu-{hotline.main.pk}" in response.content.decode()
    assert "Thank you for calling the office of Representative Rivera." in said(response)
    call = the_call()
    assert (call.office, call.direction, call.from_number, call.to_number) == (
        hotline.office,
        Direction.INBOUND,
        CALLER,
        HOTLINE,
    )
    assert call.duration_seconds is None
    assert (call.details["outcome"], call.details["call_status"], call.details["caller_withheld"]) == (
        CallOutcome.IN_PROGRESS,
        "ringing",
        False,
    )
    constituent = call.conversation.constituent
    assert (
        constituent.phone,
        constituent.carrier_city,
        constituent.carrier_state,
        constituent.carrier_zip,
    ) == (
        CALLER,
        "SAN FRANCISCO",
        "CA",
        "94103",
    )
    conversation = call.conversation
    assert (conversation.status, conversation.last_message_channel, conversation.is_unread) == (
        ConversationStatus.OPEN,
        Channel.CALL,
        False,
    )


def _withheld(post_voice: Any, name: str, raw_caller: str) -> None:
    assert verbs(post_voice(name)) == ["Gather"]
    call = the_call()
    assert call.from_number == raw_caller
    assert call.details["caller_withheld"] is True
    # Not a number to match callers by: a constituent of their own, with no phone.
    constituent = Constituent.objects.get()
    assert (constituent.phone, constituent.carrier_city) == ("", "")
    assert call.conversation.constituent == constituent


def test_voice_call_received__anonymous(post_voice: Any) -> None:
    _withheld(post_voice, "voice_call_received__anonymous", "Anonymous")


def test_voice_call_received__empty_from(post_voice: Any) -> None:
    _withheld(post_voice, "voice_call_received__empty_from", "")


def test_voice_call_received__withheld_placeholder(post_voice: Any) -> None:
    _withheld(post_voice, "voice_call_received__withheld_placeholder", "+266696687")


def test_voice_call_received__malformed_call_sid(post_voice: Any) -> None:
    assert_rejected(post_voice, "voice_call_received__malformed_call_sid", "CallSid 'CA123' is not a CA SID")
    assert not Message.objects.exists()


def test_voice_call_received__missing_to(post_voice: Any) -> None:
    assert_rejected(post_voice, "voice_call_received__missing_to", "missing required field To")
    assert not Message.objects.exists()


def test_voice_call_received__unknown_number(post_voice: Any) -> None:
    before = snapshot()
    response = post_voice("voice_call_received__unknown_number")
    assert verbs(response) == ["Say", "Hangup"]
    assert "not accepting calls" in said(response)
    assert snapshot() == before
    assert not Message.objects.exists()
    assert not Constituent.objects.exists()


# --- the menu -----------------------------------------------------------------------------------------


def _last_step(call: Message) -> dict[str, Any]:
    call.refresh_from_db()
    step: dict[str, Any] = call.details["menu_path"][-1]
    return step


def test_voice_menu_selected__digit(post_voice: Any, called: Message, hotline: Hotline) -> None:
    response = post_voice("voice_menu_selected__digit")
    assert verbs(response) == ["Say", "Record", "Say", "Hangup"]  # the prompt, the beep, a goodbye
    assert f"topic=o{hotline.health_option.pk}" in response.content.decode()
    step = _last_step(called)
    assert (step["via"], step["digit"], step["result"]) == ("dtmf", "1", "voicemail: Health care")
    assert called.details["outcome"] == CallOutcome.IN_PROGRESS
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()  # nothing recorded yet


def test_voice_menu_selected__speech(post_voice: Any, called: Message, hotline: Hotline) -> None:
    response = post_voice("voice_menu_selected__speech")
    assert verbs(response) == ["Say", "Record", "Say", "Hangup"]  # the prompt, the beep, a goodbye
    assert f"topic=o{hotline.health_option.pk}" in response.content.decode()
    step = _last_step(called)
    # "Health care" matches the option's speech keywords: the same choice as pressing 1.
    assert (step["via"], step["input"], step["digit"], step["result"]) == (
        "speech",
        "Health care, please.",
        "1",
        "voicemail: Health care",
    )


def _not_understood(post_voice: Any, name: str, called: Message, *, via: str, typed: str) -> None:
    response = post_voice(name)
    assert verbs(response) == ["Gather"]
    assert "attempt=2" in response.content.decode()
    assert "Sorry, I did not understand that." in said(response)
    step = _last_step(called)
    assert (step["via"], step["input"]) == (via, typed)
    assert step["result"] == ("no input" if via == "none" else "not an option")
    assert "digit" not in step
    assert called.details["outcome"] == CallOutcome.IN_PROGRESS


def test_voice_menu_selected__garbage_digits(post_voice: Any, called: Message) -> None:
    _not_understood(post_voice, "voice_menu_selected__garbage_digits", called, via="dtmf", typed="12#abc")


def test_voice_menu_selected__unknown_digit(post_voice: Any, called: Message) -> None:
    _not_understood(post_voice, "voice_menu_selected__unknown_digit", called, via="dtmf", typed="7")


def test_voice_menu_selected__no_input(post_voice: Any, called: Message) -> None:
    _not_understood(post_voice, "voice_menu_selected__no_input", called, via="none", typed="")


def test_voice_menu_selected__unknown_call(post_voice: Any, hotline: Hotline) -> None:
    """Its incoming-call request was lost: the call is stored from the menu answer's own fields."""
    response = post_voice("voice_menu_selected__unknown_call")
    assert verbs(response) == ["Say", "Record", "Say", "Hangup"]  # the prompt, the beep, a goodbye
    call = the_call("CA" + "e" * 32)
    assert (call.office, call.from_number, call.to_number) == (hotline.office, CALLER, HOTLINE)
    assert call.conversation.constituent.phone == CALLER
    assert [step["result"] for step in call.details["menu_path"]] == ["voicemail: Health care"]


# --- staff --------------------------------------------------------------------------------------------


def test_voice_dial_completed__answered(post_voice: Any, called: Message) -> None:
    response = post_voice("voice_dial_completed__answered")
    assert verbs(response) == ["Hangup"]
    called.refresh_from_db()
    assert called.details["outcome"] == CallOutcome.ANSWERED
    assert called.details["dial"] == {"status": "completed", "call_sid": DIALLED_SID, "duration": 42}


def _missed(post_voice: Any, name: str, called: Message, dial_status: str) -> None:
    response = post_voice(name)
    # Voicemail instead: the apology, the prompt, the recording, and what follows if nothing is recorded.
    assert verbs(response) == ["Say", "Say", "Record", "Say", "Hangup"]
    assert "No one is available to take your call right now." in said(response)
    called.refresh_from_db()
    assert called.details["outcome"] == CallOutcome.MISSED
    assert called.details["dial"] == {"status": dial_status, "call_sid": "", "duration": None}


def test_voice_dial_completed__busy(post_voice: Any, called: Message) -> None:
    _missed(post_voice, "voice_dial_completed__busy", called, "busy")


def test_voice_dial_completed__no_answer(post_voice: Any, called: Message) -> None:
    _missed(post_voice, "voice_dial_completed__no_answer", called, "no-answer")


def test_voice_dial_completed__negative_duration(post_voice: Any, called: Message) -> None:
    assert_rejected(
        post_voice, "voice_dial_completed__negative_duration", "DialCallDuration must not be negative"
    )
    called.refresh_from_db()
    assert called.details["outcome"] == CallOutcome.IN_PROGRESS
    assert "dial" not in called.details


def test_voice_staff_answered__basic(post_voice: Any, called: Message) -> None:
    response = post_voice("voice_staff_answered__basic")
    assert verbs(response) == ["Say"]
    assert "Connecting you now." in said(response)
    called.refresh_from_db()
    assert called.details["outcome"] == CallOutcome.ANSWERED
    assert (called.details["answered_by"], called.details["answered_leg_sid"]) == (STAFF_PHONE, DIALLED_SID)
    assert Message.objects.count() == 1  # the staff leg is not a call of its own


def test_voice_staff_answered__no_parent(post_voice: Any, called: Message) -> None:
    assert_rejected(post_voice, "voice_staff_answered__no_parent", "the URL does not name the caller's call")
    called.refresh_from_db()
    assert "answered_by" not in called.details


# --- voicemail ----------------------------------------------------------------------------------------


def test_voice_voicemail_recorded__basic(post_voice: Any, called: Message, hotline: Hotline) -> None:
    response = post_voice("voice_voicemail_recorded__basic")
    assert verbs(response) == ["Say", "Hangup"]
    assert "Thank you for calling. Goodbye." in said(response)
    voicemail = the_voicemail()
    assert (voicemail.provider_sid, voicemail.duration_seconds, voicemail.body) == (RECORDING_SID, 45, "")
    assert voicemail.conversation == called.conversation
    assert (voicemail.details["call_sid"], voicemail.details["recording_url"]) == (CALL_SID, RECORDING_URL)
    assert (voicemail.details["topic"], voicemail.details["transcript_status"]) == (
        "Health care",
        TranscriptStatus.PENDING,
    )
    assert voicemail.details["followup"] == {"tag": hotline.tag.pk, "queue": hotline.queue.pk}
    called.refresh_from_db()
    assert (called.details["outcome"], called.details["recordings"]) == (
        CallOutcome.VOICEMAIL,
        [RECORDING_SID],
    )
    conversation = voicemail.conversation
    assert (conversation.last_message_channel, conversation.last_message_preview, conversation.is_unread) == (
        Channel.VOICEMAIL,
        "Voicemail, 0:45",  # no transcript yet: its length
        True,
    )


def test_voice_voicemail_recorded__with_sid(post_voice: Any, called: Message) -> None:
    """The caller hung up instead of pressing #; no topic was chosen (the URL names none)."""
    assert verbs(post_voice("voice_voicemail_recorded__with_sid")) == ["Say", "Hangup"]
    voicemail = the_voicemail()
    assert (voicemail.provider_sid, voicemail.duration_seconds) == (RECORDING_SID, 45)
    assert "topic" not in voicemail.details
    assert voicemail.details["transcript_status"] == TranscriptStatus.PENDING
    called.refresh_from_db()
    assert called.details["outcome"] == CallOutcome.VOICEMAIL


def test_voice_voicemail_recorded__bad_url(post_voice: Any, called: Message) -> None:
    assert_rejected(post_voice, "voice_voicemail_recorded__bad_url", "RecordingUrl does not name a recording")
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()


def test_voice_recording_completed__completed(post_voice: Any, called: Message, hotline: Hotline) -> None:
    """The status callback alone (its action request lost) stores the voicemail, ready to download."""
    post_voice("voice_recording_completed__completed")
    voicemail = the_voicemail()
    assert (voicemail.provider_sid, voicemail.duration_seconds, voicemail.conversation) == (
        RECORDING_SID,
        45,
        called.conversation,
    )
    assert (voicemail.details["recording_status"], voicemail.details["recording_url"]) == (
        "completed",
        RECORDING_URL,
    )
    assert (voicemail.details["topic"], voicemail.details["transcript_status"]) == (
        "Health care",
        TranscriptStatus.PENDING,
    )
    assert voicemail.details["followup"] == {
        "tag": hotline.tag.pk,
        "queue": hotline.queue.pk,
        "download": True,
    }
    called.refresh_from_db()
    assert called.details["outcome"] == CallOutcome.VOICEMAIL


def test_voice_recording_completed__long(post_voice: Any, called: Message) -> None:
    """Five minutes: kept, but Twilio transcribes at most two, so no transcript is awaited."""
    post_voice("voice_recording_completed__long")
    voicemail = the_voicemail()
    assert voicemail.duration_seconds == 300
    assert voicemail.details["transcript_status"] == TranscriptStatus.NONE
    assert voicemail.details["followup"] == {"download": True}


def test_voice_recording_completed__absent(post_voice: Any, called: Message) -> None:
    """The caller hung up at the beep: no voicemail, and the call says why."""
    post_voice("voice_recording_completed__absent")
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()
    called.refresh_from_db()
    assert called.details["recording_status"] == "absent"
    assert (called.details["outcome"], called.details["recordings"]) == (CallOutcome.IN_PROGRESS, [])


def test_voice_recording_completed__negative_duration(post_voice: Any, called: Message) -> None:
    assert_rejected(
        post_voice, "voice_recording_completed__negative_duration", "RecordingDuration must not be negative"
    )


def test_voice_recording_completed__unknown_call(post_voice: Any, called: Message) -> None:
    """For a call not stored yet: parked, to apply when the call appears; nothing else is stored."""
    post_voice("voice_recording_completed__unknown_call")
    parked = ParkedVoiceCallback.objects.get()
    assert (parked.call_sid, parked.kind, parked.applied_at) == ("CA" + "f" * 32, "recording", None)
    assert parked.payload["RecordingSid"] == ["RE" + "f" * 32]
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()
    assert not Message.objects.filter(provider_sid="CA" + "f" * 32).exists()


def test_voice_transcription_received__completed(post_voice: Any, called: Message) -> None:
    post_voice("voice_voicemail_recorded__basic")
    post_voice("voice_transcription_received__completed")
    voicemail = the_voicemail()
    assert voicemail.body == TRANSCRIPT
    assert (voicemail.details["transcript_status"], voicemail.details["transcript_source"]) == (
        TranscriptStatus.COMPLETED,
        "twilio",
    )
    assert voicemail.details["transcription_sid"] == TRANSCRIPTION_SID
    assert voicemail.duration_seconds == 45  # the recording's own fields are kept
    assert voicemail.conversation.last_message_preview == TRANSCRIPT
    assert Message.objects.filter(body__search="medicare").get() == voicemail  # searchable at once


def test_voice_transcription_received__failed(post_voice: Any, called: Message) -> None:
    post_voice("voice_voicemail_recorded__basic")
    post_voice("voice_transcription_received__failed")
    voicemail = the_voicemail()
    assert voicemail.body == ""
    assert voicemail.details["twilio_transcription_failed"] == "failed"
    assert voicemail.details["transcription_sids"] == [TRANSCRIPTION_SID]
    assert voicemail.conversation.last_message_preview == "Voicemail, 0:45"  # no transcript: its length


def test_voice_transcription_received__malformed_sid(post_voice: Any, called: Message) -> None:
    post_voice("voice_voicemail_recorded__basic")
    assert_rejected(post_voice, "voice_transcription_received__malformed_sid", "TranscriptionSid 'TR-nope'")
    assert the_voicemail().body == ""


# --- the call's status --------------------------------------------------------------------------------


def test_voice_call_status__completed(post_voice: Any, called: Message) -> None:
    """The caller hung up in the menu after 75 s."""
    post_voice("voice_call_status__completed")
    called.refresh_from_db()
    assert called.duration_seconds == 75
    assert (called.details["outcome"], called.details["call_status"]) == (CallOutcome.ABANDONED, "completed")


def test_voice_call_status__canceled(post_voice: Any, called: Message) -> None:
    post_voice("voice_call_status__canceled")
    called.refresh_from_db()
    assert called.duration_seconds == 0
    assert (called.details["outcome"], called.details["call_status"]) == (CallOutcome.ABANDONED, "canceled")


def test_voice_call_status__negative_duration(post_voice: Any, called: Message) -> None:
    assert_rejected(post_voice, "voice_call_status__negative_duration", "CallDuration must not be negative")
    called.refresh_from_db()
    assert called.duration_seconds is None


def test_voice_call_status__unknown_call(post_voice: Any, hotline: Hotline) -> None:
    """Every request before it was lost: the call is stored from what the status carries."""
    post_voice("voice_call_status__unknown_call")
    call = the_call("CA" + "9" * 32)
    assert (call.office, call.from_number, call.duration_seconds) == (hotline.office, CALLER, 12)
    assert (call.details["outcome"], call.details["menu_path"]) == (CallOutcome.ABANDONED, [])
    assert call.conversation.constituent.phone == CALLER


# --- coverage -----------------------------------------------------------------------------------------


def test_every_voice_fixture_has_its_own_test() -> None:
    module = sys.modules[__name__]
    tested = {name.removeprefix("test_") for name in dir(module) if name.startswith("test_voice_")}
    fixtures = set(voice_fixture_names())
    assert fixtures, "no voice fixtures found"
    assert sorted(fixtures - tested) == [], "a voice fixture without a test here"
    assert sorted(tested - fixtures) == [], "a test here for a fixture that does not exist"
