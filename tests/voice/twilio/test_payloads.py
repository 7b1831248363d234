"""The voice webhook parsers: each Twilio voice request -> its frozen dataclass, or a PayloadError."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from messages.twilio.errors import PayloadError
from voice.twilio.payloads import (
    parse_call_status,
    parse_dial_result,
    parse_gather_result,
    parse_inbound_call,
    parse_recording_status,
    parse_transcription_result,
)

ACCOUNT = "AC" + "a" * 32
CALL = "CA" + "3" * 32
RECORDING = "RE" + "4" * 32
TRANSCRIPTION = "TR" + "5" * 32


def form(pairs: dict[str, str] | list[tuple[str, str]]) -> QueryDict:
    items = list(pairs.items()) if isinstance(pairs, dict) else pairs
    return QueryDict(urlencode(items))


def call_params(**overrides: str) -> dict[str, str]:
    params = {
        "CallSid": CALL,
        "AccountSid": ACCOUNT,
        "From": "+14155552671",
        "To": "+14155550100",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "CallerCity": "OAKLAND",
        "CallerState": "CA",
        "CallerZip": "94612",
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


def test_parse_inbound_call():
    call = parse_inbound_call(form(call_params()))
    assert (call.call_sid, call.account_sid, call.call_status, call.direction) == (
        CALL,
        ACCOUNT,
        "ringing",
        "inbound",
    )
    assert (call.from_e164, call.to_e164) == ("+14155552671", "+14155550100")
    assert (call.caller_city, call.caller_state, call.caller_zip) == ("OAKLAND", "CA", "94612")


@pytest.mark.parametrize("caller", ["Anonymous", "", "+266696687", "+8656696", "+86282452253"])
def test_withheld_caller_ids_have_no_e164(caller):
    call = parse_inbound_call(form(call_params(From=caller)))
    assert call.from_raw == caller
    assert call.from_e164 is None


def test_inbound_call_without_call_sid_is_a_payload_error():
    params = call_params()
    del params["CallSid"]
    with pytest.raises(PayloadError, match="CallSid"):
        parse_inbound_call(form(params))


def test_parse_gather_result():
    result = parse_gather_result(form({"CallSid": CALL, "Digits": "2"}))
    assert (result.call_sid, result.digits, result.speech_result) == (CALL, "2", None)
    speech = parse_gather_result(form({"CallSid": CALL, "SpeechResult": "Trash pickup"}))
    assert (speech.digits, speech.speech_result) == (None, "Trash pickup")


def test_parse_dial_result():
    result = parse_dial_result(
        form({"CallSid": CALL, "DialCallStatus": "completed", "DialCallSid": CALL, "DialCallDuration": "42"})
    )
    assert (result.dial_call_status, result.dial_call_sid, result.dial_call_duration) == (
        "completed",
        CALL,
        42,
    )
    unanswered = parse_dial_result(form({"CallSid": CALL, "DialCallStatus": "no-answer"}))
    assert (unanswered.dial_call_sid, unanswered.dial_call_duration) == (None, None)


def test_parse_recording_status():
    result = parse_recording_status(
        form(
            {
                "CallSid": CALL,
                "RecordingSid": RECORDING,
                "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}",
                "RecordingStatus": "completed",
                "RecordingDuration": "17",
            }
        )
    )
    assert (result.recording_sid, result.recording_status, result.recording_duration) == (
        RECORDING,
        "completed",
        17,
    )


def test_parse_transcription_result():
    result = parse_transcription_result(
        form(
            {
                "CallSid": CALL,
                "RecordingSid": RECORDING,
                "TranscriptionSid": TRANSCRIPTION,
                "TranscriptionStatus": "completed",
                "TranscriptionText": "Please call me back",
            }
        )
    )
    assert (result.transcription_sid, result.transcription_status, result.transcription_text) == (
        TRANSCRIPTION,
        "completed",
        "Please call me back",
    )


def test_parse_call_status():
    result = parse_call_status(form({"CallSid": CALL, "CallStatus": "completed", "CallDuration": "65"}))
    assert (result.call_status, result.call_duration) == ("completed", 65)


@pytest.mark.parametrize(
    ("parser", "params"),
    [
        (parse_call_status, {"CallSid": CALL, "CallStatus": "completed", "CallDuration": "-1"}),
        (parse_dial_result, {"CallSid": CALL, "DialCallStatus": "completed", "DialCallDuration": "-5"}),
        (
            parse_recording_status,
            {
                "CallSid": CALL,
                "RecordingSid": RECORDING,
                "RecordingUrl": "https://api.twilio.com/r",
                "RecordingStatus": "completed",
                "RecordingDuration": "-3",
            },
        ),
        (parse_call_status, {"CallSid": CALL, "CallStatus": "completed", "CallDuration": "ten"}),
    ],
)
def test_negative_or_non_numeric_durations_are_payload_errors(parser, params):
    with pytest.raises(PayloadError, match="Duration"):
        parser(form(params))


def test_recording_sid_shape_is_checked():
    with pytest.raises(PayloadError, match="RecordingSid"):
        parse_recording_status(
            form(
                {
                    "CallSid": CALL,
                    "RecordingSid": "RE123",
                    "RecordingUrl": "https://api.twilio.com/r",
                    "RecordingStatus": "completed",
                }
            )
        )
