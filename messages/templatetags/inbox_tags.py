"""Presentation helpers for the inbox: search-hit highlighting, snippets, and event sentences.

Highlighting escapes first, then marks: the text is cut into hit and non-hit pieces, every piece is escaped
with ``conditional_escape``, and only then are the hits wrapped in ``<mark>``. User text is never passed to
``mark_safe`` unescaped, so a message body cannot inject markup whatever the search string is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from messages import timeline

register = template.Library()

SNIPPET_CONTEXT = 70


def _pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return None
    # A hit is a word that starts with a term: "hous" marks "housing", "pat" marks "Patricia".
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)


def highlight_text(text: str, terms: Sequence[str]) -> SafeString:
    pattern = _pattern(terms)
    if pattern is None:
        return conditional_escape(text)
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        pieces.append(str(conditional_escape(text[position : match.start()])))
        pieces.append(f"<mark>{conditional_escape(match.group(0))}</mark>")
        position = match.end()
    pieces.append(str(conditional_escape(text[position:])))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece above was escaped


def snippet_text(text: str, terms: Sequence[str], context: int = SNIPPET_CONTEXT) -> str:
    """About ``2 * context`` characters of ``text`` around its first hit, on one line."""
    flat = " ".join(text.split())
    pattern = _pattern(terms)
    match = pattern.search(flat) if pattern is not None else None
    if match is None:
        return flat[: context * 2] + ("…" if len(flat) > context * 2 else "")
    start = max(0, match.start() - context)
    end = min(len(flat), match.end() + context)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


@register.filter
def channel_template(channel: str) -> str:
    """The template another app registered for a channel's thread item (``messages.timeline``), or ""."""
    return timeline.channel_template(channel) or ""


@register.filter
def highlight(text: object, terms: Sequence[str] | None) -> SafeString:
    return highlight_text("" if text is None else str(text), terms or ())


@register.filter
def snippet(text: object, terms: Sequence[str] | None) -> SafeString:
    body = "" if text is None else str(text)
    return highlight_text(snippet_text(body, terms or ()), terms or ())


@register.filter
def highlight_phone(phone: object, digits: str | None) -> SafeString:
    """Mark the trailing digits of an E.164 number that a digits search matched."""
    value = "" if phone is None else str(phone)
    if not digits or not value.endswith(digits):
        return conditional_escape(value)
    head, tail = value[: -len(digits)], value[-len(digits) :]
    return mark_safe(f"{conditional_escape(head)}<mark>{conditional_escape(tail)}</mark>")  # noqa: S308


@register.filter
def duration(seconds: object) -> str:
    try:
        total = int(seconds)  # type: ignore[call-overload]  # whatever a template passes; bad values raise
    except (TypeError, ValueError):
        return ""
    minutes, secs = divmod(total, 60)
    return f"{minutes}:{secs:02d}"


_MINUTE, _HOUR, _DAY, _WEEK = 60, 3600, 86400, 7 * 86400  # in seconds


@register.filter
def age(moment: object) -> str:
    """Compact age for a list row: "now", "12m", "3h", "5d", "7w", then the date."""
    if not isinstance(moment, datetime):
        return ""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < _MINUTE:
        return "now"
    if seconds < _HOUR:
        return f"{seconds // _MINUTE}m"
    if seconds < _DAY:
        return f"{seconds // _HOUR}h"
    if seconds < _WEEK:
        return f"{seconds // _DAY}d"
    if seconds < 9 * _WEEK:
        return f"{seconds // _WEEK}w"
    return f"{timezone.localtime(moment):%d %b %Y}"


@register.filter
def iso_moment(value: object) -> datetime | None:
    """An ISO 8601 string stored in event data, as an aware datetime (None if it is not one)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
