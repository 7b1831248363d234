"""Twilio webhook form data -> frozen dataclasses. The only module that knows Twilio's field names.

Rules applied to every payload:
- NUL bytes are stripped from every key and value (PostgreSQL ``text`` cannot store them); everything
  else is kept exactly as sent, including leading/trailing whitespace in bodies.
- Unknown fields are ignored, but all fields are kept in ``raw`` (``dict[str, list[str]]``, JSON-ready).
- Required fields that are missing and SIDs of the wrong shape raise :class:`PayloadError`.
- When a field appears more than once, the last value wins (Django's ``QueryDict`` semantics); ``raw``
  keeps them all.

Webhook parameter references:
- Messaging: https://www.twilio.com/docs/messaging/guides/webhook-request
- Status callbacks: https://www.twilio.com/docs/messaging/guides/track-outbound-message-status
- Voice: https://www.twilio.com/docs/usage/webhooks/voice-webhooks
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

import phonenumbers
from django.utils.datastructures import MultiValueDict

from messages.twilio.errors import PayloadError

__all__ = [
    "MAX_INBOUND_BODY_LENGTH",
    "MAX_MEDIA_PER_MESSAGE",
    "CallStatus",
    "DeliveryStatus",
    "DialResult",
    "GatherResult",
    "InboundCall",
    "InboundMedia",
    "InboundSms",
    "RawParams",
    "RecordingStatus",
    "TranscriptionResult",
    "is_sid",
    "normalize_phone",
    "parse_call_status",
    "parse_delivery_status",
    "parse_dial_result",
    "parse_gather_result",
    "parse_inbound_call",
    "parse_inbound_sms",
    "parse_recording_status",
    "parse_transcription_result",
    "raw_params",
]

RawParams = dict[str, list[str]]
FormData = MultiValueDict[str, str] | Mapping[str, str]

# Twilio caps bodies at 1,600 characters; anything near 10,000 is not a Twilio message at all.
MAX_INBOUND_BODY_LENGTH = 10_000
# Twilio sends at most 10 media per message (MediaUrl0..MediaUrl9).
MAX_MEDIA_PER_MESSAGE = 10

# A Twilio SID is a two-letter type prefix plus 32 lower-case hex digits
# (https://www.twilio.com/docs/glossary/what-is-a-sid).
_SID_RE = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
MESSAGE_SID_PREFIXES = ("SM", "MM")
CALL_SID_PREFIXES = ("CA",)
ACCOUNT_SID_PREFIXES = ("AC",)
MESSAGING_SERVICE_SID_PREFIXES = ("MG",)
RECORDING_SID_PREFIXES = ("RE",)
TRANSCRIPTION_SID_PREFIXES = ("TR",)

# Characters a human-typed or Twilio-sent phone number may contain. Checked before `phonenumbers`
# sees the text, because `phonenumbers.parse` maps letters to keypad digits ("CIVICDESK" would "parse").
_PHONE_TEXT_RE = re.compile(r"\+?[0-9 ().\-]+")

# Twilio reports blocked/withheld caller IDs as keypad spellings of ANONYMOUS, UNKNOWN, BLOCKED,
# RESTRICTED and UNAVAILABLE, some of which are "possible" numbers in real countries. Treating them as
# numbers would merge every anonymous caller into one constituent. (Twilio support article
# "Why am I getting calls from these strange numbers?"; +266696687 spells ANONYMOUS.)
_PLACEHOLDER_CALLER_IDS = frozenset({"+266696687", "+8656696", "+2562533", "+7378742833", "+86282452253"})

_OPT_OUT_TYPES = frozenset({"STOP", "START", "HELP"})


def normalize_phone(raw: str, region: str = "US") -> str | None:
    """E.164 form of ``raw``, or ``None`` if it is not a phone number (short code, alphanumeric sender,
    ``Anonymous``, channel address such as ``whatsapp:+1...``, empty).

    Numbers without a ``+`` are read as national numbers of ``region``. A number must be *possible*
    (right length for its country), not *valid*: validity depends on allocation metadata that goes
    stale, and would reject the fictional 555-01xx numbers used in demos and tests.

    A pure function of its arguments, so recent answers are kept: every webhook normalises the office's
    own number and a caller who writes again, and parsing costs ~0.15 ms a number.
    """
    if len(raw) > _NORMALIZE_CACHEABLE_LENGTH:  # never let odd input fill the cache
        return _normalize_phone(raw, region)
    return _normalize_phone_cached(raw, region)


_NORMALIZE_CACHEABLE_LENGTH = 40


@lru_cache(maxsize=16384)
def _normalize_phone_cached(raw: str, region: str) -> str | None:
    return _normalize_phone(raw, region)


def _normalize_phone(raw: str, region: str) -> str | None:
    text = raw.strip()
    if not text or not _PHONE_TEXT_RE.fullmatch(text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_sid(value: str, prefixes: tuple[str, ...]) -> bool:
    """True if ``value`` is a well-formed Twilio SID with one of ``prefixes``."""
    return bool(_SID_RE.fullmatch(value)) and value[:2] in prefixes


# --- dataclasses -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundMedia:
    url: str
    content_type: str
    index: int


@dataclass(frozen=True, slots=True)
class InboundSms:
    message_sid: str
    account_sid: str
    messaging_service_sid: str | None
    from_raw: str
    from_e164: str | None
    to_raw: str
    to_e164: str | None
    body: str
    num_media: int
    media: tuple[InboundMedia, ...]
    # Carrier's idea of where the sender's number is registered: "" when unknown, as Twilio sends it.
    from_city: str
    from_state: str
    from_zip: str
    from_country: str
    opt_out_type: str | None
    raw: RawParams = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    message_sid: str
    message_status: str
    error_code: int | None
    account_sid: str
    to_raw: str
    from_raw: str
    raw: RawParams = field(compare=False, repr=False)


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


# --- field readers ---------------------------------------------------------------------------------


def _strip_nul(value: str) -> str:
    return value.replace("\x00", "")


def raw_params(post: FormData) -> RawParams:
    """All parameters as ``{name: [values...]}`` with NUL bytes removed, duplicates preserved."""
    if isinstance(post, MultiValueDict):
        # A MultiValueDict is a dict of each key's list of values: copied without its per-key accessors.
        raw: RawParams = {key: list(values) for key, values in dict.items(post)}
    else:
        raw = {key: [value] for key, value in post.items()}
    if "\x00" not in "".join(chain(raw, chain.from_iterable(raw.values()))):
        return raw  # nearly always: one scan in C instead of a strip per name and value
    stripped: RawParams = {}
    for key, values in raw.items():
        stripped.setdefault(_strip_nul(key), []).extend(_strip_nul(value) for value in values)
    return stripped


def _get(raw: RawParams, name: str) -> str | None:
    values = raw.get(name)
    return values[-1] if values else None


def _optional(raw: RawParams, name: str) -> str | None:
    """The value, or ``None`` when absent or empty."""
    return _get(raw, name) or None


def _required(raw: RawParams, *names: str) -> str:
    """The first non-empty value among ``names`` (aliases of one field)."""
    for name in names:
        value = _get(raw, name)
        if value:
            return value
    raise PayloadError(f"missing required field {' / '.join(names)}")


def _required_present(raw: RawParams, name: str) -> str:
    """The value, which must be present but may be empty (e.g. a withheld caller ID)."""
    value = _get(raw, name)
    if value is None:
        raise PayloadError(f"missing required field {name}")
    return value


def _sid(raw: RawParams, names: tuple[str, ...], prefixes: tuple[str, ...]) -> str:
    value = _required(raw, *names)
    if not is_sid(value, prefixes):
        raise PayloadError(f"{names[0]} {value[:40]!r} is not a {'/'.join(prefixes)} SID")
    return value


def _optional_sid(raw: RawParams, name: str, prefixes: tuple[str, ...]) -> str | None:
    value = _optional(raw, name)
    if value is not None and not is_sid(value, prefixes):
        raise PayloadError(f"{name} {value[:40]!r} is not a {'/'.join(prefixes)} SID")
    return value


def _lenient_int(raw: RawParams, name: str) -> int | None:
    """Integer value, or ``None`` when absent, empty or not a number (used for informational codes)."""
    value = _optional(raw, name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _duration(raw: RawParams, name: str) -> int | None:
    """Seconds, or ``None`` when absent/empty; a negative or non-numeric duration is a PayloadError."""
    value = _optional(raw, name)
    if value is None:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        raise PayloadError(f"{name} {value[:20]!r} is not a whole number of seconds") from None
    if seconds < 0:
        raise PayloadError(f"{name} must not be negative, got {seconds}")
    return seconds


def _caller_e164(raw_number: str) -> str | None:
    number = normalize_phone(raw_number)
    return None if number in _PLACEHOLDER_CALLER_IDS else number


def _media(raw: RawParams) -> tuple[InboundMedia, ...]:
    # Collected by index regardless of `NumMedia`: what is present is what we can fetch.
    items = []
    for index in range(MAX_MEDIA_PER_MESSAGE):
        url = _optional(raw, f"MediaUrl{index}")
        if url is not None:
            content_type = _get(raw, f"MediaContentType{index}") or ""
            items.append(InboundMedia(url=url, content_type=content_type, index=index))
    return tuple(items)


# --- parsers ---------------------------------------------------------------------------------------


def parse_inbound_sms(post: FormData) -> InboundSms:
    """Parse the incoming-message webhook (SMS, MMS).

    ``num_media`` is Twilio's declared ``NumMedia``. It is informational only: the ``media`` tuple is
    built from the ``MediaUrlN`` fields actually present. If ``NumMedia`` is missing, not a number or
    negative we use the number of media found rather than reject the message, because rejecting a
    webhook makes Twilio drop a constituent's text when no fallback URL is set.
    """
    raw = raw_params(post)
    message_sid = _sid(raw, ("MessageSid", "SmsMessageSid", "SmsSid"), MESSAGE_SID_PREFIXES)
    account_sid = _sid(raw, ("AccountSid",), ACCOUNT_SID_PREFIXES)
    messaging_service_sid = _optional_sid(raw, "MessagingServiceSid", MESSAGING_SERVICE_SID_PREFIXES)
    from_raw = _required(raw, "From")
    to_raw = _required(raw, "To")
    body = _get(raw, "Body") or ""
    if len(body) > MAX_INBOUND_BODY_LENGTH:
        raise PayloadError(f"Body is {len(body)} characters; refusing more than {MAX_INBOUND_BODY_LENGTH}")
    media = _media(raw)
    declared = _lenient_int(raw, "NumMedia")
    num_media = declared if declared is not None and declared >= 0 else len(media)
    opt_out_type = (_optional(raw, "OptOutType") or "").strip().upper()
    return InboundSms(
        message_sid=message_sid,
        account_sid=account_sid,
        messaging_service_sid=messaging_service_sid,
        from_raw=from_raw,
        from_e164=_caller_e164(from_raw),
        to_raw=to_raw,
        to_e164=normalize_phone(to_raw),
        body=body,
        num_media=num_media,
        media=media,
        from_city=_get(raw, "FromCity") or "",
        from_state=_get(raw, "FromState") or "",
        from_zip=_get(raw, "FromZip") or "",
        from_country=_get(raw, "FromCountry") or "",
        opt_out_type=opt_out_type if opt_out_type in _OPT_OUT_TYPES else None,
        raw=raw,
    )


def parse_delivery_status(post: FormData) -> DeliveryStatus:
    """Parse a message status callback. ``message_status`` is lower-cased; ``ErrorCode`` garbage -> None."""
    raw = raw_params(post)
    return DeliveryStatus(
        message_sid=_sid(raw, ("MessageSid", "SmsSid"), MESSAGE_SID_PREFIXES),
        message_status=_required(raw, "MessageStatus", "SmsStatus").strip().lower(),
        error_code=_lenient_int(raw, "ErrorCode"),
        account_sid=_sid(raw, ("AccountSid",), ACCOUNT_SID_PREFIXES),
        to_raw=_get(raw, "To") or "",
        from_raw=_get(raw, "From") or "",
        raw=raw,
    )


def parse_inbound_call(post: FormData) -> InboundCall:
    """Parse the incoming-call webhook. ``From`` must be present but may be empty or ``Anonymous``."""
    raw = raw_params(post)
    from_raw = _required_present(raw, "From")
    to_raw = _required(raw, "To")
    return InboundCall(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        account_sid=_sid(raw, ("AccountSid",), ACCOUNT_SID_PREFIXES),
        from_raw=from_raw,
        from_e164=_caller_e164(from_raw),
        to_raw=to_raw,
        to_e164=normalize_phone(to_raw),
        call_status=(_get(raw, "CallStatus") or "").strip().lower(),
        direction=(_get(raw, "Direction") or "").strip().lower(),
        caller_city=_get(raw, "CallerCity") or "",
        caller_state=_get(raw, "CallerState") or "",
        caller_zip=_get(raw, "CallerZip") or "",
        raw=raw,
    )


def parse_gather_result(post: FormData) -> GatherResult:
    """Parse the ``<Gather>`` action callback (keypad ``Digits`` and/or ``SpeechResult``)."""
    raw = raw_params(post)
    return GatherResult(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        digits=_optional(raw, "Digits"),
        speech_result=_optional(raw, "SpeechResult"),
        raw=raw,
    )


def parse_dial_result(post: FormData) -> DialResult:
    """Parse the ``<Dial>`` action callback."""
    raw = raw_params(post)
    return DialResult(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        dial_call_status=_required(raw, "DialCallStatus").strip().lower(),
        dial_call_sid=_optional_sid(raw, "DialCallSid", CALL_SID_PREFIXES),
        dial_call_duration=_duration(raw, "DialCallDuration"),
        raw=raw,
    )


def parse_recording_status(post: FormData) -> RecordingStatus:
    """Parse a recording status callback (``recordingStatusCallback``)."""
    raw = raw_params(post)
    return RecordingStatus(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        recording_sid=_sid(raw, ("RecordingSid",), RECORDING_SID_PREFIXES),
        recording_url=_required(raw, "RecordingUrl"),
        recording_status=_required(raw, "RecordingStatus").strip().lower(),
        recording_duration=_duration(raw, "RecordingDuration"),
        raw=raw,
    )


def parse_transcription_result(post: FormData) -> TranscriptionResult:
    """Parse the ``<Record transcribe>`` callback (``transcribeCallback``)."""
    raw = raw_params(post)
    return TranscriptionResult(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        recording_sid=_sid(raw, ("RecordingSid",), RECORDING_SID_PREFIXES),
        transcription_sid=_sid(raw, ("TranscriptionSid",), TRANSCRIPTION_SID_PREFIXES),
        transcription_status=_required(raw, "TranscriptionStatus").strip().lower(),
        transcription_text=_optional(raw, "TranscriptionText"),
        raw=raw,
    )


def parse_call_status(post: FormData) -> CallStatus:
    """Parse a call status callback (``statusCallback`` on a number or call)."""
    raw = raw_params(post)
    return CallStatus(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        call_status=_required(raw, "CallStatus").strip().lower(),
        call_duration=_duration(raw, "CallDuration"),
        raw=raw,
    )


# --- voice: the <Record> action ---------------------------------------------------------------------------
# Appended for the voice hotline (voice.webhooks).

__all__ += ["RecordResult", "parse_record_result"]

_RECORDING_SID_IN_URL_RE = re.compile(r"/Recordings/(RE[0-9a-f]{32})(?:\.[a-z0-9]+)?$")


@dataclass(frozen=True, slots=True)
class RecordResult:
    call_sid: str
    recording_sid: str
    recording_url: str
    recording_duration: int | None
    digits: str | None
    raw: RawParams = field(compare=False, repr=False)


def parse_record_result(post: FormData) -> RecordResult:
    """Parse the ``<Record>`` action request (https://www.twilio.com/docs/voice/twiml/record#action).

    Twilio documents ``RecordingUrl``, ``RecordingDuration`` and ``Digits`` here, not ``RecordingSid``; when
    the SID is absent it is read from the URL's last path segment, which is the recording's SID.
    """
    raw = raw_params(post)
    recording_url = _required(raw, "RecordingUrl")
    recording_sid = _optional_sid(raw, "RecordingSid", RECORDING_SID_PREFIXES)
    if recording_sid is None:
        match = _RECORDING_SID_IN_URL_RE.search(recording_url)
        if match is None:
            raise PayloadError("RecordingSid is missing and RecordingUrl does not name a recording")
        recording_sid = match.group(1)
    return RecordResult(
        call_sid=_sid(raw, ("CallSid",), CALL_SID_PREFIXES),
        recording_sid=recording_sid,
        recording_url=recording_url,
        recording_duration=_duration(raw, "RecordingDuration"),
        digits=_optional(raw, "Digits"),
        raw=raw,
    )
