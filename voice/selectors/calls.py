"""Reads for the voice hotline's pages: voicemail audio, recent calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from messages.models import Channel, Media, MediaStatus, Message
from offices.models import Office


def voicemail_audio_get(*, office: Office, pk: int) -> Media | None:
    """The stored recording of one of the office's voicemails (``pk`` is the voicemail message's)."""
    return (
        Media.objects.filter(
            office=office,
            message__pk=pk,
            message__office=office,
            message__channel=Channel.VOICEMAIL,
            index=0,
            status=MediaStatus.STORED,
        )
        .exclude(file="")
        .first()
    )


@dataclass(frozen=True, slots=True)
class CallWithVoicemails:
    call: Message
    voicemails: list[Message]


def calls_by_sid(*, office: Office, sids: Sequence[str]) -> list[CallWithVoicemails]:
    """The office's calls with these CallSids (in that order), each with its voicemails. Two queries."""
    calls = {
        call.provider_sid: call
        for call in Message.objects.filter(
            office=office, channel=Channel.CALL, provider_sid__in=list(sids)
        ).select_related("conversation__constituent")
    }
    voicemails: dict[str, list[Message]] = {}
    if calls:
        for voicemail in Message.objects.filter(
            office=office,
            channel=Channel.VOICEMAIL,
            conversation_id__in={call.conversation_id for call in calls.values()},
            details__call_sid__in=list(calls),
        ).order_by("created_at", "id"):
            voicemails.setdefault(voicemail.details.get("call_sid", ""), []).append(voicemail)
    return [CallWithVoicemails(calls[sid], voicemails.get(sid, [])) for sid in sids if sid in calls]
