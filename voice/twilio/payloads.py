"""Twilio's voice webhooks -> frozen dataclasses, and back: voice's side of the Twilio boundary.

The parsers read the requests Twilio makes about a call (the incoming call, ``<Gather>``, ``<Dial>`` and
``<Record>`` actions, recording, transcription and call status callbacks); the form builders write the same
requests from domain values, for the call simulator, so that nothing outside the boundary spells a Twilio
field. Each builder is the exact inverse of its parser. The field readers and the rules every payload
follows (NUL bytes, ``raw``, duplicate fields, :class:`PayloadError`) are in ``messages.twilio.payloads``.

Webhook parameter reference: https://www.twilio.com/docs/usage/webhooks/voice-webhooks
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from messages.twilio.errors import PayloadError
from messages.twilio.payloads import (
    ACCOUNT_SID_PREFIXES,
    API_VERSION,
    FormData,
    FormPairs,
    RawParams,
    caller_e164,
    duration_seconds,
    field_value,
    normalize_phone,
    optional_sid,
    optional_value,
    raw_params,
    required_present,
    required_sid,
    required_value,
)

__all__ = [
    "CALL_SID_PREFIXES",
    "RECORDING_SID_PREFIXES",
    "TRANSCRIPTION_SID_PREFIXES",
    "CallLeg",
    "CallStatus",
    "DialResult",
    "GatherResult",
    "InboundCall",
    "RecordResult",
    "RecordingStatus",
    "TranscriptionResult",
    "call_status_form",
    "dial_result_form",
    "gather_form",
    "inbound_call_form",
    "parse_call_status",
    "parse_dial_result",
    "parse_gather_result",
    "parse_inbound_call",
    "parse_record_result",
    "parse_recording_status",
    "parse_transcription_result",
    "record_result_form",
    "recording_status_form",
    "recording_url_for",
    "transcription_form",
]

CALL_SID_PREFIXES = ("CA",)
RECORDING_SID_PREFIXES = ("RE",)
TRANSCRIPTION_SID_PREFIXES = ("TR",)

_RECORDING_SID_IN_URL_RE = re.compile(r"/Recordings/(RE[0-9a-f]{32})(?:\.[a-z0-9]+)?$")


# --- dataclasses -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundCall:
    call_sid: str
    account_sid: str
    from_raw: str
    from_e164: str | None
    to_raw: str
    to_e164: str | None
    call_status: str
    direction: str
    caller_city: str  # "" when unknown, as Twilio sends it
    caller_state: str
    caller_zip: str
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class GatherResult:
    call_sid: str
    digits: str | None
    speech_result: str | None
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DialResult:
    call_sid: str
    dial_call_status: str
    dial_call_sid: str | None
    dial_call_duration: int | None
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    call_sid: str
    recording_sid: str
    recording_url: str
    recording_status: str
    recording_duration: int | None
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TranscriptionResult:
    call_sid: str
    recording_sid: str
    transcription_sid: str
    transcription_status: str
    transcription_text: str | None
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CallStatus:
    call_sid: str
    call_status: str
    call_duration: int | None
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RecordResult:
    call_sid: str
    recording_sid: str
    recording_url: str
    recording_duration: int | None
    digits: str | None
    raw: RawParams = field(compare=False, repr=False)


# --- parsers ---------------------------------------------------------------------------------------


def parse_inbound_call(post: FormData) -> InboundCall:
    """Parse the incoming-call webhook. ``From`` must be present but may be empty or ``Anonymous``."""
    raw = raw_params(post)
    from_raw = required_present(raw, "From")
    to_raw = required_value(raw, "To")
    return InboundCall(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        account_sid=required_sid(raw, ("AccountSid",), ACCOUNT_SID_PREFIXES),
        from_raw=from_raw,
        from_e164=caller_e164(from_raw),
        to_raw=to_raw,
        to_e164=normalize_phone(to_raw),
        call_status=(field_value(raw, "CallStatus") or "").strip().lower(),
        direction=(field_value(raw, "Direction") or "").strip().lower(),
        caller_city=field_value(raw, "CallerCity") or "",
        caller_state=field_value(raw, "CallerState") or "",
        caller_zip=field_value(raw, "CallerZip") or "",
        raw=raw,
    )


def parse_gather_result(post: FormData) -> GatherResult:
    """Parse the ``<Gather>`` action callback (keypad ``Digits`` and/or ``SpeechResult``)."""
    raw = raw_params(post)
    return GatherResult(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        digits=optional_value(raw, "Digits"),
        speech_result=optional_value(raw, "SpeechResult"),
        raw=raw,
    )


def parse_dial_result(post: FormData) -> DialResult:
    """Parse the ``<Dial>`` action callback."""
    raw = raw_params(post)
    return DialResult(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        dial_call_status=required_value(raw, "DialCallStatus").strip().lower(),
        dial_call_sid=optional_sid(raw, "DialCallSid", CALL_SID_PREFIXES),
        dial_call_duration=duration_seconds(raw, "DialCallDuration"),
        raw=raw,
    )


def parse_recording_status(post: FormData) -> RecordingStatus:
    """Parse a recording status callback (``recordingStatusCallback``)."""
    raw = raw_params(post)
    return RecordingStatus(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        recording_sid=required_sid(raw, ("RecordingSid",), RECORDING_SID_PREFIXES),
        recording_url=required_value(raw, "RecordingUrl"),
        recording_status=required_value(raw, "RecordingStatus").strip().lower(),
        recording_duration=duration_seconds(raw, "RecordingDuration"),
        raw=raw,
    )


def parse_transcription_result(post: FormData) -> TranscriptionResult:
    """Parse the ``<Record transcribe>`` callback (``transcribeCallback``)."""
    raw = raw_params(post)
    return TranscriptionResult(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        recording_sid=required_sid(raw, ("RecordingSid",), RECORDING_SID_PREFIXES),
        transcription_sid=required_sid(raw, ("TranscriptionSid",), TRANSCRIPTION_SID_PREFIXES),
        transcription_status=required_value(raw, "TranscriptionStatus").strip().lower(),
        transcription_text=optional_value(raw, "TranscriptionText"),
        raw=raw,
    )


def parse_call_status(post: FormData) -> CallStatus:
    """Parse a call status callback (``statusCallback`` on a number or call)."""
    raw = raw_params(post)
    return CallStatus(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        call_status=required_value(raw, "CallStatus").strip().lower(),
        call_duration=duration_seconds(raw, "CallDuration"),
        raw=raw,
    )


def parse_record_result(post: FormData) -> RecordResult:
    """Parse the ``<Record>`` action request (https://www.twilio.com/docs/voice/twiml/record#action).

    Twilio documents ``RecordingUrl``, ``RecordingDuration`` and ``Digits`` here, not ``RecordingSid``; when
    the SID is absent it is read from the URL's last path segment, which is the recording's SID.
    """
    raw = raw_params(post)
    recording_url = required_value(raw, "RecordingUrl")
    recording_sid = optional_sid(raw, "RecordingSid", RECORDING_SID_PREFIXES)
    if recording_sid is None:
        match = _RECORDING_SID_IN_URL_RE.search(recording_url)
        if match is None:
            raise PayloadError("RecordingSid is missing and RecordingUrl does not name a recording")
        recording_sid = match.group(1)
    return RecordResult(
        call_sid=required_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        recording_sid=recording_sid,
        recording_url=recording_url,
        recording_duration=duration_seconds(raw, "RecordingDuration"),
        digits=optional_value(raw, "Digits"),
        raw=raw,
    )


# --- form builders ---------------------------------------------------------------------------------
# The inverse of the parsers: each request Twilio makes about a call, from domain values (the simulator).


@dataclass(frozen=True, slots=True)
class CallLeg:
    """One leg of a call as Twilio describes it in every request about that leg."""

    account_sid: str
    call_sid: str
    from_number: str  # the raw caller ID: "Anonymous" or "" when it is withheld
    to_number: str
    direction: str = "inbound"  # "outbound-dial" for a staff phone rung by <Dial>
    parent_call_sid: str | None = None  # the caller's call, on a leg that <Dial> started
    caller_city: str = ""  # the caller's carrier location; "" when unknown
    caller_state: str = ""
    caller_zip: str = ""


def recording_url_for(account_sid: str, recording_sid: str) -> str:
    """The REST URL Twilio gives a recording (and names it by in ``<Record>`` and recording callbacks)."""
    return f"https://api.twilio.com/{API_VERSION}/Accounts/{account_sid}/Recordings/{recording_sid}"


def inbound_call_form(leg: CallLeg, *, call_status: str = "ringing") -> FormPairs:
    """The leg's own fields, in the order Twilio sends them: the incoming-call webhook (and a staff leg's
    ``<Number url>`` request); every other request about the leg starts with them. Read back by
    :func:`parse_inbound_call`. The caller's location is sent when known."""
    form = [
        ("AccountSid", leg.account_sid),
        ("ApiVersion", API_VERSION),
        ("CallSid", leg.call_sid),
        ("CallStatus", call_status),
        ("Called", leg.to_number),
        ("Caller", leg.from_number),
    ]
    for name, value in (
        ("CallerCity", leg.caller_city),
        ("CallerState", leg.caller_state),
        ("CallerZip", leg.caller_zip),
    ):
        if value:
            form.append((name, value))
    form += [("Direction", leg.direction), ("From", leg.from_number)]
    if leg.parent_call_sid is not None:
        form.append(("ParentCallSid", leg.parent_call_sid))
    form.append(("To", leg.to_number))
    return form


def gather_form(
    leg: CallLeg,
    *,
    digits: str | None = None,
    speech_result: str | None = None,
    confidence: float | None = None,
    call_status: str = "in-progress",
) -> FormPairs:
    """The ``<Gather action>`` request: the keys pressed and/or the words said (neither: the caller was
    silent). Read back by :func:`parse_gather_result`."""
    form = inbound_call_form(leg, call_status=call_status)
    if speech_result is not None:
        form.append(("SpeechResult", speech_result))
        if confidence is not None:
            form.append(("Confidence", f"{confidence:g}"))
    if digits is not None:
        form.append(("Digits", digits))
    return form


def dial_result_form(
    leg: CallLeg,
    *,
    dial_call_status: str,
    dial_call_sid: str | None = None,
    dial_call_duration: int | None = None,
    call_status: str = "in-progress",
) -> FormPairs:
    """The ``<Dial action>`` request about the caller's leg: how the dialled leg ended, and, when a staff
    phone answered, that leg's SID and length. Read back by :func:`parse_dial_result`."""
    form = [*inbound_call_form(leg, call_status=call_status), ("DialCallStatus", dial_call_status)]
    if dial_call_sid is not None:
        form.append(("DialCallSid", dial_call_sid))
    if dial_call_duration is not None:
        form.append(("DialCallDuration", str(dial_call_duration)))
    return form


def record_result_form(
    leg: CallLeg,
    *,
    recording_url: str,
    recording_duration: int | None,
    digits: str | None = None,
    recording_sid: str | None = None,
    call_status: str = "in-progress",
) -> FormPairs:
    """The ``<Record action>`` request. Twilio names the recording by its URL here (the SID is sent only
    when given). Read back by :func:`parse_record_result`."""
    form = inbound_call_form(leg, call_status=call_status)
    if recording_sid is not None:
        form.append(("RecordingSid", recording_sid))
    form.append(("RecordingUrl", recording_url))
    if recording_duration is not None:
        form.append(("RecordingDuration", str(recording_duration)))
    if digits is not None:
        form.append(("Digits", digits))
    return form


def recording_status_form(
    leg: CallLeg,
    *,
    recording_sid: str,
    recording_url: str,
    recording_status: str,
    recording_duration: int | None,
    channels: int = 1,
    source: str = "RecordVerb",
) -> FormPairs:
    """The ``recordingStatusCallback`` request, which names the call but none of its numbers. Read back by
    :func:`parse_recording_status`."""
    form = [
        ("AccountSid", leg.account_sid),
        ("CallSid", leg.call_sid),
        ("RecordingSid", recording_sid),
        ("RecordingUrl", recording_url),
        ("RecordingStatus", recording_status),
    ]
    if recording_duration is not None:
        form.append(("RecordingDuration", str(recording_duration)))
    form += [("RecordingChannels", str(channels)), ("RecordingSource", source)]
    return form


def transcription_form(
    leg: CallLeg,
    *,
    recording_sid: str,
    recording_url: str,
    transcription_sid: str,
    transcription_status: str,
    transcription_text: str,
    call_status: str = "completed",
) -> FormPairs:
    """The ``transcribeCallback`` request (``""`` text when the transcription failed). Read back by
    :func:`parse_transcription_result`."""
    return [
        *inbound_call_form(leg, call_status=call_status),
        ("RecordingSid", recording_sid),
        ("RecordingUrl", recording_url),
        ("TranscriptionSid", transcription_sid),
        ("TranscriptionStatus", transcription_status),
        ("TranscriptionText", transcription_text),
        ("TranscriptionType", "fast"),
        ("TranscriptionUrl", f"{recording_url}/Transcriptions/{transcription_sid}"),
    ]


def call_status_form(leg: CallLeg, *, call_status: str, call_duration: int | None = None) -> FormPairs:
    """The call status callback: the leg's new status and, once it has ended, its length. Read back by
    :func:`parse_call_status`."""
    form = inbound_call_form(leg, call_status=call_status)
    if call_duration is not None:
        form.append(("CallDuration", str(call_duration)))
    return form
