"""Twilio webhook form data <-> frozen dataclasses, for texts, and the field readers every parser shares.

This module and ``voice.twilio.payloads`` (the voice webhooks, built on the readers here) are the only
modules that know Twilio's webhook field names: the parsers read them, and the form builders
(:func:`inbound_sms_form`) write them for the simulators, so nothing else spells a Twilio field.

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
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

import phonenumbers
from django.utils.datastructures import MultiValueDict

from messages.twilio.errors import PayloadError

__all__ = [
    "ACCOUNT_SID_PREFIXES",
    "API_VERSION",
    "MAX_INBOUND_BODY_LENGTH",
    "MAX_MEDIA_PER_MESSAGE",
    "DeliveryStatus",
    "FormData",
    "FormPairs",
    "InboundMedia",
    "InboundSms",
    "RawParams",
    "caller_e164",
    "duration_seconds",
    "field_value",
    "inbound_sms_form",
    "is_sid",
    "lenient_int",
    "normalize_phone",
    "optional_sid",
    "optional_value",
    "parse_delivery_status",
    "parse_inbound_sms",
    "raw_params",
    "required_present",
    "required_sid",
    "required_value",
]

RawParams = dict[str, list[str]]
FormData = MultiValueDict[str, str] | Mapping[str, str]
# A webhook body as the form builders make it: (name, value) pairs in the order Twilio sends them.
FormPairs = list[tuple[str, str]]

# The REST API version Twilio names in every webhook (``ApiVersion``) and in resource URLs.
API_VERSION = "2010-04-01"

# Twilio caps bodies at 1,600 characters; anything near 10,000 is not a Twilio message at all.
MAX_INBOUND_BODY_LENGTH = 10_000
# Twilio sends at most 10 media per message (MediaUrl0..MediaUrl9).
MAX_MEDIA_PER_MESSAGE = 10

# A Twilio SID is a two-letter type prefix plus 32 lower-case hex digits
# (https://www.twilio.com/docs/glossary/what-is-a-sid).
_SID_RE = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
MESSAGE_SID_PREFIXES = ("SM", "MM")
ACCOUNT_SID_PREFIXES = ("AC",)
MESSAGING_SERVICE_SID_PREFIXES = ("MG",)

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


# --- field readers ---------------------------------------------------------------------------------
# Shared by every parser here and in voice.twilio.payloads.


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


def field_value(raw: RawParams, name: str) -> str | None:
    """The last value of ``name``, or ``None`` when absent."""
    values = raw.get(name)
    return values[-1] if values else None


def optional_value(raw: RawParams, name: str) -> str | None:
    """The value, or ``None`` when absent or empty."""
    return field_value(raw, name) or None


def required_value(raw: RawParams, *names: str) -> str:
    """The first non-empty value among ``names`` (aliases of one field)."""
    for name in names:
        value = field_value(raw, name)
        if value:
            return value
    raise PayloadError(f"missing required field {' / '.join(names)}")


def required_present(raw: RawParams, name: str) -> str:
    """The value, which must be present but may be empty (e.g. a withheld caller ID)."""
    value = field_value(raw, name)
    if value is None:
        raise PayloadError(f"missing required field {name}")
    return value


def required_sid(raw: RawParams, names: tuple[str, ...], prefixes: tuple[str, ...]) -> str:
    """The first non-empty value among ``names``, which must be a SID with one of ``prefixes``."""
    value = required_value(raw, *names)
    if not is_sid(value, prefixes):
        raise PayloadError(f"{names[0]} {value[:40]!r} is not a {'/'.join(prefixes)} SID")
    return value


def optional_sid(raw: RawParams, name: str, prefixes: tuple[str, ...]) -> str | None:
    """The value or ``None`` when absent or empty; a present value must be a SID with one of ``prefixes``."""
    value = optional_value(raw, name)
    if value is not None and not is_sid(value, prefixes):
        raise PayloadError(f"{name} {value[:40]!r} is not a {'/'.join(prefixes)} SID")
    return value


def lenient_int(raw: RawParams, name: str) -> int | None:
    """Integer value, or ``None`` when absent, empty or not a number (used for informational codes)."""
    value = optional_value(raw, name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def duration_seconds(raw: RawParams, name: str) -> int | None:
    """Seconds, or ``None`` when absent/empty; a negative or non-numeric duration is a PayloadError."""
    value = optional_value(raw, name)
    if value is None:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        raise PayloadError(f"{name} {value[:20]!r} is not a whole number of seconds") from None
    if seconds < 0:
        raise PayloadError(f"{name} must not be negative, got {seconds}")
    return seconds


def caller_e164(raw_number: str) -> str | None:
    """The sender's E.164 number, or ``None`` for a non-number or a withheld caller ID's placeholder."""
    number = normalize_phone(raw_number)
    return None if number in _PLACEHOLDER_CALLER_IDS else number


def _media(raw: RawParams) -> tuple[InboundMedia, ...]:
    # Collected by index regardless of `NumMedia`: what is present is what we can fetch.
    items = []
    for index in range(MAX_MEDIA_PER_MESSAGE):
        url = optional_value(raw, f"MediaUrl{index}")
        if url is not None:
            content_type = field_value(raw, f"MediaContentType{index}") or ""
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
    message_sid = required_sid(raw, ("MessageSid", "SmsMessageSid", "SmsSid"), MESSAGE_SID_PREFIXES)
    account_sid = required_sid(raw, ("AccountSid",), ACCOUNT_SID_PREFIXES)
    messaging_service_sid = optional_sid(raw, "MessagingServiceSid", MESSAGING_SERVICE_SID_PREFIXES)
    from_raw = required_value(raw, "From")
    to_raw = required_value(raw, "To")
    body = field_value(raw, "Body") or ""
    if len(body) > MAX_INBOUND_BODY_LENGTH:
        raise PayloadError(f"Body is {len(body)} characters; refusing more than {MAX_INBOUND_BODY_LENGTH}")
    media = _media(raw)
    declared = lenient_int(raw, "NumMedia")
    num_media = declared if declared is not None and declared >= 0 else len(media)
    opt_out_type = (optional_value(raw, "OptOutType") or "").strip().upper()
    return InboundSms(
        message_sid=message_sid,
        account_sid=account_sid,
        messaging_service_sid=messaging_service_sid,
        from_raw=from_raw,
        from_e164=caller_e164(from_raw),
        to_raw=to_raw,
        to_e164=normalize_phone(to_raw),
        body=body,
        num_media=num_media,
        media=media,
        from_city=field_value(raw, "FromCity") or "",
        from_state=field_value(raw, "FromState") or "",
        from_zip=field_value(raw, "FromZip") or "",
        from_country=field_value(raw, "FromCountry") or "",
        opt_out_type=opt_out_type if opt_out_type in _OPT_OUT_TYPES else None,
        raw=raw,
    )


def parse_delivery_status(post: FormData) -> DeliveryStatus:
    """Parse a message status callback. ``message_status`` is lower-cased; ``ErrorCode`` garbage -> None."""
    raw = raw_params(post)
    return DeliveryStatus(
        message_sid=required_sid(raw, ("MessageSid", "SmsSid"), MESSAGE_SID_PREFIXES),
        message_status=required_value(raw, "MessageStatus", "SmsStatus").strip().lower(),
        error_code=lenient_int(raw, "ErrorCode"),
        account_sid=required_sid(raw, ("AccountSid",), ACCOUNT_SID_PREFIXES),
        to_raw=field_value(raw, "To") or "",
        from_raw=field_value(raw, "From") or "",
        raw=raw,
    )


# --- form builders ---------------------------------------------------------------------------------
# The inverse of the parsers: a webhook body from domain values, as Twilio would send it (the simulators).


def inbound_sms_form(
    *,
    account_sid: str,
    message_sid: str,
    from_number: str,
    to_number: str,
    body: str,
    media: Sequence[tuple[str, str]] = (),
    num_segments: int = 1,
    from_city: str = "",
    from_state: str = "",
    from_zip: str = "",
    from_country: str = "",
    to_city: str = "",
    to_state: str = "",
    to_zip: str = "",
    to_country: str = "",
    messaging_service_sid: str | None = None,
    opt_out_type: str | None = None,
) -> FormPairs:
    """The incoming-message webhook's fields, in the order Twilio sends them; :func:`parse_inbound_sms`
    reads them back. ``media`` is ``(url, content type)`` pairs, numbered in order from 0; the location
    fields are the carrier's, ``""`` when unknown as Twilio sends them. ``MessagingServiceSid`` and
    ``OptOutType`` are sent only when given, as Twilio sends them only then."""
    if len(media) > MAX_MEDIA_PER_MESSAGE:
        raise ValueError(f"Twilio sends at most {MAX_MEDIA_PER_MESSAGE} media per message, not {len(media)}")
    form = [
        ("ToCountry", to_country),
        ("ToState", to_state),
        ("SmsMessageSid", message_sid),
        ("NumMedia", str(len(media))),
        ("ToCity", to_city),
        ("FromZip", from_zip),
        ("SmsSid", message_sid),
        ("FromState", from_state),
        ("SmsStatus", "received"),
        ("FromCity", from_city),
        ("Body", body),
        ("FromCountry", from_country),
        ("To", to_number),
    ]
    if messaging_service_sid is not None:
        form.append(("MessagingServiceSid", messaging_service_sid))
    form += [
        ("ToZip", to_zip),
        ("NumSegments", str(num_segments)),
        ("MessageSid", message_sid),
        ("AccountSid", account_sid),
        ("From", from_number),
        ("ApiVersion", API_VERSION),
    ]
    if opt_out_type is not None:
        form.append(("OptOutType", opt_out_type))
    for index, (url, content_type) in enumerate(media):
        form.append((f"MediaContentType{index}", content_type))
        form.append((f"MediaUrl{index}", url))
    return form
