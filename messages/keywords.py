"""Recognise the carrier-standard opt-out, opt-in and help keywords in an inbound text.

Twilio filters these on long codes and toll-free numbers and replies itself
(https://help.twilio.com/hc/en-us/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-):
a keyword counts only when it is the whole message, in any letter case.

Our matching is slightly more generous than Twilio's: besides surrounding whitespace we also drop a
trailing run of "." or "!" ("Stop." is what many phones send after auto-punctuation). Erring this way is
safe: if we record an opt-out Twilio did not, we merely stop texting someone who asked us to stop; if
Twilio records one we did not, the next send fails with 21610 and is handled there.
"""

from __future__ import annotations

import enum


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_KEYWORDS: frozenset[str] = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS: frozenset[str] = frozenset({"START", "UNSTOP", "YES"})
# Toll-free numbers recognise only START and UNSTOP as opt-in, not YES (same Twilio article as above).
TOLL_FREE_OPT_IN_KEYWORDS: frozenset[str] = OPT_IN_KEYWORDS - {"YES"}
HELP_KEYWORDS: frozenset[str] = frozenset({"HELP", "INFO"})

_TRAILING_PUNCTUATION = ".!"

# Values of the `OptOutType` webhook parameter sent when Advanced Opt-Out handled the message
# (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out).
_OPT_OUT_TYPES: dict[str, Keyword] = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


def normalize_keyword_text(body: str) -> str:
    """Upper-cased body without surrounding whitespace and without a trailing run of '.'/'!'."""
    return body.strip().rstrip(_TRAILING_PUNCTUATION).strip().upper()


def classify_keyword(body: str, *, is_toll_free: bool) -> Keyword | None:
    """The keyword ``body`` consists of, or ``None`` if it is an ordinary message.

    Only ASCII keywords match: Python upper-cases some non-ASCII letters to ASCII (LATIN SMALL
    LETTER LONG S becomes "S"), which no carrier does.
    """
    if not body.isascii():  # checked before upper-casing, which is what maps the look-alikes to ASCII
        return None
    text = normalize_keyword_text(body)
    if text in OPT_OUT_KEYWORDS:
        return Keyword.OPT_OUT
    if text in (TOLL_FREE_OPT_IN_KEYWORDS if is_toll_free else OPT_IN_KEYWORDS):
        return Keyword.OPT_IN
    if text in HELP_KEYWORDS:
        return Keyword.HELP
    return None


def keyword_from_opt_out_type(value: str | None) -> Keyword | None:
    """Map Twilio's ``OptOutType`` (STOP/START/HELP) to a :class:`Keyword`; anything else is ``None``.

    When this returns a keyword, Twilio has already sent the confirmation reply: do not reply again.
    """
    if not value:
        return None
    return _OPT_OUT_TYPES.get(value.strip().upper())
