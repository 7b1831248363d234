"""How many SMS segments a body costs, computed the way carriers (and Twilio) split it.

Why this matters: throughput and price are counted in segments, and a single curly quote or emoji
turns a 160-character GSM-7 text into three UCS-2 segments.
See https://www.twilio.com/docs/glossary/what-sms-character-limit and Twilio's segment calculator
(https://twiliodeved.github.io/message-segment-calculator/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Twilio rejects longer bodies with error 21617 (https://www.twilio.com/docs/api/errors/21617).
MAX_BODY_LENGTH = 1600

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (3GPP TS 23.038, section 6.2.1), one septet each.
# 0x1B (ESC) is deliberately absent: it introduces the extension table and cannot be sent on its own.
GSM7_BASIC_CHARS: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each costs two septets (ESC + the character).
GSM7_EXTENSION_CHARS: frozenset[str] = frozenset("^{}\\[~]|€\f")

_GSM7_SINGLE = 160
_GSM7_MULTI = 153  # 7 septets of each part go to the concatenation header (UDH).
_UCS2_SINGLE = 70
_UCS2_MULTI = 67


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """Segment arithmetic for one body.

    ``characters`` is in code units of the chosen encoding: GSM-7 septets (extension characters count 2)
    or UTF-16 code units (characters outside the BMP, such as most emoji, count 2).
    ``per_segment`` is the capacity of one segment at this length (160/70 while the body fits in one
    segment, 153/67 once it is split); ``remaining_in_segment`` is what still fits in the last segment.
    """

    encoding: Encoding
    characters: int
    segments: int
    per_segment: int
    remaining_in_segment: int


def is_gsm7(body: str) -> bool:
    """True if every character is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM7_BASIC_CHARS or ch in GSM7_EXTENSION_CHARS for ch in body)


_LAST_BMP_CODE_POINT = 0xFFFF  # beyond it, a character takes two UCS-2 code units (a surrogate pair)


def _unit_costs(body: str, encoding: Encoding) -> list[int]:
    """Code units per Python character; a character is never split between two segments."""
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION_CHARS else 1 for ch in body]
    return [2 if ord(ch) > _LAST_BMP_CODE_POINT else 1 for ch in body]


def segment_info(body: str) -> SegmentInfo:
    """Encoding, size and segment count for ``body`` (Smart Encoding off: one non-GSM char means UCS-2).

    An empty body is 0 segments: Twilio refuses an empty text (21602), and a media-only message is
    sent as MMS, which is not counted in SMS segments.

    When a split body is packed into segments, an escape pair (GSM-7) or a surrogate pair (UCS-2) is
    never cut in half, so a part can hold one unit less than ``per_segment``; the count below packs
    greedily the same way handsets and Twilio's calculator do.
    """
    encoding: Encoding = "GSM-7" if is_gsm7(body) else "UCS-2"
    single, multi = (_GSM7_SINGLE, _GSM7_MULTI) if encoding == "GSM-7" else (_UCS2_SINGLE, _UCS2_MULTI)
    costs = _unit_costs(body, encoding)
    characters = sum(costs)

    if characters == 0:
        return SegmentInfo(encoding, 0, 0, single, single)
    if characters <= single:
        return SegmentInfo(encoding, characters, 1, single, single - characters)

    segments = 1
    used = 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return SegmentInfo(encoding, characters, segments, multi, multi - used)


def validate_body(body: str) -> None:
    """Raise ``ValueError`` if Twilio would refuse ``body`` for length (more than 1,600 characters)."""
    length = len(body)
    if length > MAX_BODY_LENGTH:
        raise ValueError(
            f"Message is {length} characters long; the limit is {MAX_BODY_LENGTH}. "
            f"Shorten it by {length - MAX_BODY_LENGTH} characters."
        )
