"""The voice webhook parsers: each Twilio voice request -> its frozen dataclass, or a PayloadError."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from messages.twilio.errors import PayloadError
from voice.twilio.payloads import (
    CallLeg,
    CallStatus,
    DialResult,
    GatherResult,
    InboundCall,
    RecordingStatus,
    RecordResult,
    TranscriptionResult,
    call_status_form,
    dial_result_form,
    gather_form,
    inbound_call_form,
    parse_call_status,
    parse_dial_result,
    parse_gather_result,
    parse_inbound_call,
    parse_record_result,
    parse_recording_status,
    parse_transcription_result,
    record_result_form,
    recording_status_form,
    recording_url_for,
    transcription_form,
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


# --- the form builders: each the inverse of its parser ----------------------------------------------------

DIALLED = "CA" + "d" * 32
LEG = CallLeg(
    account_sid=ACCOUNT,
    call_sid=CALL,
    from_number="+14155552671",
    to_number="+14155550100",
    caller_city="OAKLAND",
    caller_state="CA",
    caller_zip="94612",
)
URL = recording_url_for(ACCOUNT, RECORDING)


def post_of(pairs: list[tuple[str, str]]) -> QueryDict:
    """The form as the webhook view sees it: encoded and decoded again, every pair kept in order."""
    return QueryDict(urlencode(pairs))


def test_inbound_call_form_parses_back_to_the_same_call() -> None:
    call = parse_inbound_call(post_of(inbound_call_form(LEG)))
    assert call == InboundCall(
        call_sid=CALL,
        account_sid=ACCOUNT,
        from_raw="+14155552671",
        from_e164="+14155552671",
        to_raw="+14155550100",
        to_e164="+14155550100",
        call_status="ringing",
        direction="inbound",
        caller_city="OAKLAND",
        caller_state="CA",
        caller_zip="94612",
        raw={},
    )
    assert (call.raw["Caller"], call.raw["Called"], call.raw["ApiVersion"]) == (
        ["+14155552671"],
        ["+14155550100"],
        ["2010-04-01"],
    )


@pytest.mark.parametrize("caller", ["Anonymous", ""])
def test_inbound_call_form_keeps_a_withheld_caller_id(caller: str) -> None:
    call = parse_inbound_call(post_of(inbound_call_form(replace(LEG, from_number=caller))))
    assert (call.from_raw, call.from_e164) == (caller, None)


def test_the_staff_legs_form_names_the_callers_call() -> None:
    staff = CallLeg(
        account_sid=ACCOUNT,
        call_sid=DIALLED,
        from_number="+14155552671",
        to_number="+12025550111",
        direction="outbound-dial",
        parent_call_sid=CALL,
    )
    leg = parse_inbound_call(post_of(inbound_call_form(staff, call_status="in-progress")))
    assert (leg.call_sid, leg.to_e164, leg.direction, leg.call_status) == (
        DIALLED,
        "+12025550111",
        "outbound-dial",
        "in-progress",
    )
    assert (leg.caller_city, leg.caller_state, leg.caller_zip) == ("", "", "")
    assert leg.raw["ParentCallSid"] == [CALL]


@pytest.mark.parametrize(
    ("digits", "speech"), [("2", None), (None, "Trash pickup"), (None, None), ("12#", "two")]
)
def test_gather_form_parses_back_to_the_same_answer(digits: str | None, speech: str | None) -> None:
    form = gather_form(LEG, digits=digits, speech_result=speech, confidence=0.87 if speech else None)
    assert parse_gather_result(post_of(form)) == GatherResult(
        call_sid=CALL, digits=digits, speech_result=speech, raw={}
    )
    assert parse_inbound_call(post_of(form)).call_status == "in-progress"  # the leg's context comes too


@pytest.mark.parametrize(
    ("status", "sid", "seconds"), [("completed", DIALLED, 42), ("no-answer", None, None), ("busy", None, 0)]
)
def test_dial_result_form_parses_back_to_the_same_result(
    status: str, sid: str | None, seconds: int | None
) -> None:
    form = dial_result_form(LEG, dial_call_status=status, dial_call_sid=sid, dial_call_duration=seconds)
    assert parse_dial_result(post_of(form)) == DialResult(
        call_sid=CALL, dial_call_status=status, dial_call_sid=sid, dial_call_duration=seconds, raw={}
    )


@pytest.mark.parametrize(("sid", "digits"), [(None, "#"), (RECORDING, "hangup"), (None, None)])
def test_record_result_form_parses_back_to_the_same_recording(sid: str | None, digits: str | None) -> None:
    form = record_result_form(LEG, recording_url=URL, recording_duration=45, digits=digits, recording_sid=sid)
    # Without a RecordingSid the parser reads the SID from the URL, which recording_url_for puts there.
    assert parse_record_result(post_of(form)) == RecordResult(
        call_sid=CALL,
        recording_sid=RECORDING,
        recording_url=URL,
        recording_duration=45,
        digits=digits,
        raw={},
    )


@pytest.mark.parametrize(("status", "seconds"), [("completed", 45), ("absent", 0), ("completed", None)])
def test_recording_status_form_parses_back_to_the_same_status(status: str, seconds: int | None) -> None:
    form = recording_status_form(
        LEG, recording_sid=RECORDING, recording_url=URL, recording_status=status, recording_duration=seconds
    )
    assert parse_recording_status(post_of(form)) == RecordingStatus(
        call_sid=CALL,
        recording_sid=RECORDING,
        recording_url=URL,
        recording_status=status,
        recording_duration=seconds,
        raw={},
    )
    # A recording callback names the call, not its numbers (so it carries no caller context).
    assert "From" not in dict(form)


@pytest.mark.parametrize(("status", "text"), [("completed", "Please call me back."), ("failed", "")])
def test_transcription_form_parses_back_to_the_same_transcript(status: str, text: str) -> None:
    form = transcription_form(
        LEG,
        recording_sid=RECORDING,
        recording_url=URL,
        transcription_sid=TRANSCRIPTION,
        transcription_status=status,
        transcription_text=text,
    )
    assert parse_transcription_result(post_of(form)) == TranscriptionResult(
        call_sid=CALL,
        recording_sid=RECORDING,
        transcription_sid=TRANSCRIPTION,
        transcription_status=status,
        transcription_text=text or None,
        raw={},
    )
    assert dict(form)["TranscriptionUrl"] == f"{URL}/Transcriptions/{TRANSCRIPTION}"


@pytest.mark.parametrize(("status", "seconds"), [("completed", 75), ("canceled", 0), ("in-progress", None)])
def test_call_status_form_parses_back_to_the_same_status(status: str, seconds: int | None) -> None:
    form = call_status_form(LEG, call_status=status, call_duration=seconds)
    assert parse_call_status(post_of(form)) == CallStatus(
        call_sid=CALL, call_status=status, call_duration=seconds, raw={}
    )
    assert parse_inbound_call(post_of(form)).from_e164 == "+14155552671"
