"""Voicemail work after the webhooks: tag and queue the thread, start the audio download or transcription.

The webhooks only record what is to be done, in the voicemail row itself (``details["followup"]``: the tag and
queue the caller's topic names, ``download``, ``transcribe``), and *nudge* a worker: an atomic ``SET NX`` of
a short-lived Redis key, and one Celery publish of ``tasks.voice_followups_drain`` by whoever set it, instead
of a publish (~1.3 ms) per call, as the inbound-text intake does (``messages.services.inbound_queue``). The
drain deletes the key first and then works through every voicemail with a follow-up (a partial index covers
them), so a voicemail committed at any moment is either seen by a running drain or nudges a new one. If
Redis is down, nothing is lost: the voice sweeper drains anything left.

Tagging and queueing go through the triage services, as a staff member's would: same events, same counts.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common import queueing
from messages.models import Channel, Conversation, Message, Tag, TriageQueue
from messages.services.triage import conversation_move_queue, conversation_tag

logger = logging.getLogger(__name__)

NUDGE_KEY = "voice-followups-nudge"
FOLLOWUP = "followup"


def followups_nudge_on_commit() -> None:
    transaction.on_commit(followups_nudge)


def followups_nudge() -> bool:
    """Start a drain unless one is already on its way. Never raises; returns True if it published."""
    from voice import tasks  # tasks import services; keep the import graph one-way at load time

    return queueing.nudge(NUDGE_KEY, tasks.voice_followups_drain, seconds=settings.VOICE_NUDGE_SECONDS)


def followup_add(details: dict[str, Any], **work: Any) -> bool:
    """Note work for the drain in a voicemail's details; True if that is new (the caller nudges on commit)."""
    current: dict[str, Any] = dict(details.get(FOLLOWUP) or {})
    wanted = {**current, **{key: value for key, value in work.items() if value}}
    if wanted == current:
        return False
    details[FOLLOWUP] = wanted
    return True


_TABLE = Message._meta.db_table
# Matches the partial index "message_voicemail_followup" (migration 0006), so the drain never scans.
_PENDING_SQL = (
    f"SELECT id FROM {_TABLE} WHERE channel = %s AND details ? 'followup' AND id > %s "  # noqa: S608
    "AND created_at <= %s ORDER BY id LIMIT %s"
)


def voice_followups_drain(
    *, batch_size: int = 100, budget_seconds: float = 5.0, created_before: datetime | None = None
) -> list[int]:
    """Do every voicemail's pending follow-up, oldest first. Returns the voicemails whose download it started.

    ``created_before`` limits it to older voicemails (the sweeper's use). Each voicemail is visited once per
    drain; one whose follow-up fails is logged and left for the sweeper. After ``budget_seconds`` the drain
    nudges a successor and returns.
    """
    if created_before is None:
        queueing.nudge_clear(NUDGE_KEY)
    deadline = time.monotonic() + budget_seconds
    before = created_before or timezone.now() + timedelta(days=1)
    after = 0
    downloads: list[int] = []
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_PENDING_SQL, [Channel.VOICEMAIL, after, before, batch_size])
            ids = [int(row[0]) for row in cursor.fetchall()]
        if not ids:
            return downloads
        for pk in ids:
            try:
                if voicemail_followup_apply(message_id=pk):
                    downloads.append(pk)
            except Exception:
                logger.exception("follow-up of voicemail %s failed; the sweeper will retry it", pk)
        after = ids[-1]
        if time.monotonic() > deadline:
            followups_nudge()
            return downloads


def voicemail_followup_apply(*, message_id: int) -> bool:
    """Tag and queue the voicemail's thread, then enqueue its download or transcription, as noted.

    Locks the voicemail row, then its thread (through the triage services). Publishes after commit. Returns
    True if it started the audio download.
    """
    from voice import tasks  # tasks import services; keep the import graph one-way at load time
    from voice.services.voicemail import Audio, needs_backend_transcription  # voicemail imports followups

    with transaction.atomic():
        voicemail = (
            Message.objects.select_for_update().filter(pk=message_id, channel=Channel.VOICEMAIL).first()
        )
        if voicemail is None or not voicemail.details.get(FOLLOWUP):
            return False
        work: dict[str, Any] = voicemail.details.pop(FOLLOWUP)
        office_id = voicemail.office_id
        tag = Tag.objects.filter(pk=work["tag"], office_id=office_id).first() if work.get("tag") else None
        queue = (
            TriageQueue.objects.filter(pk=work["queue"], office_id=office_id).first()
            if work.get("queue")
            else None
        )
        if tag is not None or queue is not None:
            conversation = Conversation.objects.get(pk=voicemail.conversation_id, office_id=office_id)
            if tag is not None:
                conversation_tag(conversation=conversation, tag=tag, actor=None)
            if queue is not None and conversation.queue_id is None:  # never override where staff put it
                conversation_move_queue(conversation=conversation, queue=queue, actor=None)
        voicemail.save(update_fields=["details"])
        download = (
            bool(work.get("download"))
            and voicemail.details.get("audio") == Audio.PENDING
            and bool(voicemail.details.get("recording_url"))
        )
        transcribe = bool(work.get("transcribe")) and needs_backend_transcription(voicemail)
    # After the commit (or inside a test's transaction, at once): the tasks lock the row themselves.
    if download:
        queueing.enqueue(tasks.voicemail_audio_download, message_id)
    if transcribe:
        queueing.enqueue(tasks.voicemail_transcribe, message_id)
    return download
