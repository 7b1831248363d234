"""Template filters for calls and voicemails in the thread: labels for the values kept in Message.details."""

from __future__ import annotations

from django import template

from voice.models import CallInPosition, CallOutcome, TranscriptStatus

register = template.Library()

_OUTCOMES = dict(CallOutcome.choices)
_TRANSCRIPTS = dict(TranscriptStatus.choices)
_POSITIONS = dict(CallInPosition.choices)


@register.filter
def call_outcome(value: object) -> str:
    return _OUTCOMES.get(str(value), "")


@register.filter
def transcript_status(value: object) -> str:
    return _TRANSCRIPTS.get(str(value), _TRANSCRIPTS[TranscriptStatus.PENDING])


@register.filter
def call_in_position(value: object) -> str:
    return _POSITIONS.get(str(value), str(value))
