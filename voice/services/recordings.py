"""Recording audio and transcripts after the call: download, backend transcription, retention, the sweeper.

All of this runs in Celery workers (``voice.tasks``), never in a webhook: each function may do network
I/O, holds no lock while it does, and is idempotent, so the voice sweeper can re-enqueue anything unfinished.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from common.deadletters import dead_lettered_ids
from common.queueing import enqueue
from messages.arrivals import message_arrived_on_commit
from messages.models import Channel, Media, MediaStatus, Message
from messages.twilio.errors import MediaNotReady, MediaRejected, MediaTemporaryError, PermanentSendError
from offices.selectors import twilio_auth_token_for_account
from voice.models import TranscriptStatus
from voice.services.followups import voice_followups_drain
from voice.services.parking import parked_sweep
from voice.services.voicemail import (
    Audio,
    needs_backend_transcription,
    preview_refresh,
    transcript_state,
    twilio_may_transcribe,
)
from voice.transcription import get_transcription_backend
from voice.twilio.backends import RECORDING_CONTENT_TYPES, get_recording_backend

logger = logging.getLogger(__name__)

MAX_DOWNLOAD_ATTEMPTS = 6
BATCH = 500
# The sweeper looks back this far for unfinished work; older work has exhausted its retries.
SWEEP_WINDOW = timedelta(days=2)


class VoicemailRetry(Exception):
    """The recording is not ready yet, or a transient error happened: the task retries shortly."""


def _credentials(voicemail: Message) -> tuple[str, str]:
    account_sid = voicemail.details.get("account_sid") or settings.TWILIO_ACCOUNT_SID
    auth_token = twilio_auth_token_for_account(account_sid=account_sid) or settings.TWILIO_AUTH_TOKEN
    return str(account_sid), str(auth_token)


def _voicemail(message_id: int) -> Message | None:
    return Message.objects.filter(pk=message_id, channel=Channel.VOICEMAIL).first()


# --- audio ----------------------------------------------------------------------------------------


def voicemail_audio_download(*, message_id: int) -> str:
    """Fetch a voicemail's recording into our storage (Media index 0). Network I/O; idempotent.

    Returns the audio state; raises :class:`VoicemailRetry` for a retry. Enqueues the backend transcription
    when the voicemail is waiting for one.
    """
    voicemail = _voicemail(message_id)
    if voicemail is None or voicemail.details.get("audio") != Audio.PENDING:
        return "nothing-to-do"
    url = voicemail.details.get("recording_url", "")
    if not url:
        return "no-url-yet"
    account_sid, auth_token = _credentials(voicemail)
    attempts = int(voicemail.details.get("audio_attempts", 0)) + 1
    try:
        fetched = get_recording_backend().fetch(
            recording_url=url,
            account_sid=account_sid,
            auth_token=auth_token,
            max_bytes=settings.VOICE_RECORDING_MAX_BYTES,
        )
    except MediaRejected as exc:
        return _audio_give_up(voicemail.pk, f"rejected: {exc}")
    except (MediaNotReady, MediaTemporaryError) as exc:
        if attempts >= MAX_DOWNLOAD_ATTEMPTS:
            return _audio_give_up(voicemail.pk, f"gave up after {attempts} tries: {exc}")
        _details_update(voicemail.pk, audio_attempts=attempts, audio_error=str(exc)[:300])
        raise VoicemailRetry(str(exc)) from exc
    if fetched.content_type not in RECORDING_CONTENT_TYPES:
        return _audio_give_up(voicemail.pk, f"unexpected content type {fetched.content_type!r}")

    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=voicemail.pk)
        if locked.details.get("audio") != Audio.PENDING:
            return str(locked.details.get("audio"))
        extension = (
            ".mp3"
            if fetched.content_type == "audio/mpeg"
            else mimetypes.guess_extension(fetched.content_type)
        )
        media = Media(
            office_id=locked.office_id,
            message=locked,
            index=0,
            provider_url=url,
            content_type=fetched.content_type,
            size=len(fetched.content),
            status=MediaStatus.STORED,
        )
        media.file.save(f"voicemail{extension or '.bin'}", ContentFile(fetched.content), save=False)
        media.save()
        locked.details.update(audio=Audio.STORED, audio_attempts=attempts, audio_error="")
        locked.save(update_fields=["details"])
        if needs_backend_transcription(locked):
            from voice import tasks  # tasks import services; keep the import graph one-way at load time

            transaction.on_commit(lambda: enqueue(tasks.voicemail_transcribe, locked.pk))
    return Audio.STORED


def _audio_give_up(message_id: int, reason: str) -> str:
    logger.warning("voicemail %s: audio not stored (%s)", message_id, reason)
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message_id)
        if locked.details.get("audio") == Audio.PENDING:
            locked.details.update(audio=Audio.FAILED, audio_error=reason[:300])
            # With no audio the backend cannot transcribe: settle the transcript state now.
            locked.details["backend_transcription_done"] = True
            status, _ = transcript_state(
                locked.details, backend_enabled=get_transcription_backend().is_enabled
            )
            locked.details["transcript_status"] = status.value
            locked.save(update_fields=["details"])
    return Audio.FAILED


def _details_update(message_id: int, **values: object) -> None:
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message_id)
        locked.details.update(values)
        locked.save(update_fields=["details"])


# --- backend transcription ------------------------------------------------------------------------


def voicemail_transcribe(*, message_id: int) -> str:
    """Transcribe a stored voicemail with ``TRANSCRIPTION_BACKEND`` when Twilio will not. Network I/O (the
    backend's); idempotent. Raises ``TranscriptionRetry`` for the task to retry. Returns the transcript
    state."""
    voicemail = _voicemail(message_id)
    if voicemail is None or not needs_backend_transcription(voicemail):
        return "nothing-to-do"
    media = voicemail.media.filter(index=0, status=MediaStatus.STORED).first()
    if media is None or not media.file:
        return "no-audio"
    with media.file.open("rb") as audio_file:
        audio = audio_file.read()
    backend = get_transcription_backend()
    language = str(voicemail.details.get("language") or "en-US")
    text = (backend.transcribe(audio=audio, content_type=media.content_type, language=language) or "").strip()

    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=voicemail.pk)
        if not needs_backend_transcription(locked):
            return str(locked.details.get("transcript_status"))
        locked.details["backend_transcription_done"] = True
        if text:
            locked.body = text[:10_000]
            locked.details["transcript_source"] = backend.name
        status, _ = transcript_state(locked.details, backend_enabled=backend.is_enabled)
        locked.details["transcript_status"] = status.value
        locked.save(update_fields=["body", "details"])
        if text:
            preview_refresh(locked)
            message_arrived_on_commit(locked.pk)
    return str(locked.details["transcript_status"])


# --- retention ------------------------------------------------------------------------------------


def voicemail_recordings_expire(*, now: datetime | None = None) -> int:
    """Enqueue the deletion of recordings older than ``VOICE_RECORDING_RETENTION_DAYS`` (0: keep them).
    Returns how many were enqueued."""
    days = int(settings.VOICE_RECORDING_RETENTION_DAYS)
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    ids = list(
        Message.objects.filter(channel=Channel.VOICEMAIL, created_at__lt=cutoff)
        .exclude(details__has_key="recording_purged")  # only ever set to True; absent means not yet
        .order_by("created_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    from voice import tasks  # tasks import services; keep the import graph one-way at load time

    for pk in ids:
        enqueue(tasks.voicemail_recording_delete, pk)
    return len(ids)


def voicemail_recording_delete(*, message_id: int, now: datetime | None = None) -> bool:
    """Delete a voicemail's recording at Twilio and here; keep the transcript. Network I/O; idempotent.

    Raises ``RetryableSendError`` if Twilio could not be reached (the local copy is deleted regardless).
    Returns True when both copies are gone.
    """
    voicemail = _voicemail(message_id)
    if voicemail is None or voicemail.details.get("recording_purged"):
        return True
    now = now or timezone.now()
    # Local copy first: it does not depend on Twilio being reachable.
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=voicemail.pk)
        for media in Media.objects.filter(message=locked):
            if media.file:
                media.file.delete(save=False)
            media.delete()
        if locked.details.get("audio") in (Audio.PENDING, Audio.STORED, Audio.FAILED):
            locked.details.update(audio=Audio.DELETED, recording_deleted_at=now.isoformat())
            locked.save(update_fields=["details"])
    provider_done = bool(voicemail.details.get("provider_recording_deleted"))
    if not provider_done:
        account_sid, auth_token = _credentials(voicemail)
        try:
            get_recording_backend().delete(
                recording_sid=voicemail.provider_sid or "", account_sid=account_sid, auth_token=auth_token
            )
        except PermanentSendError as exc:
            # e.g. revoked credentials: tell an operator; the hourly run tries again.
            logger.error("voicemail %s: Twilio refused to delete the recording: %s", voicemail.pk, exc.reason)
            _details_update(voicemail.pk, provider_delete_error=exc.reason[:300])
            return False
        provider_done = True
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=voicemail.pk)
        locked.details.update(
            provider_recording_deleted=True, recording_purged=True, provider_delete_error=""
        )
        locked.save(update_fields=["details"])
    return provider_done


# --- the sweeper ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoiceSweepReport:
    downloads_requeued: int
    transcripts_requeued: int
    transcripts_given_up: int
    parked_applied: int


def voice_sweep(*, now: datetime | None = None, stale_after: timedelta | None = None) -> VoiceSweepReport:
    """Re-enqueue unfinished voicemail work; stop waiting for Twilio transcripts that never came.

    Run by Celery beat. First does the follow-ups (tagging, downloads) the drain has not done for a while:
    their nudge was lost (Redis down at commit), or no worker was running. Looks at voicemails of the last
    two days (an index covers voicemails by creation time); everything it enqueues is idempotent.
    """
    from voice import tasks  # tasks import services; keep the import graph one-way at load time

    now = now or timezone.now()
    cutoff = now - (
        stale_after if stale_after is not None else timedelta(seconds=settings.SWEEPER_STALE_AFTER_SECONDS)
    )
    wait_cutoff = now - timedelta(seconds=settings.VOICE_TRANSCRIPT_WAIT_SECONDS)
    started = voice_followups_drain(created_before=cutoff, budget_seconds=20.0)
    recent = Message.objects.filter(
        channel=Channel.VOICEMAIL, created_at__gte=now - SWEEP_WINDOW, created_at__lte=cutoff
    )
    # What was dead-lettered lately (it killed its worker at every start) is not started again yet.
    dead_downloads = dead_lettered_ids(task_name=tasks.voicemail_audio_download.name, now=now)
    dead_transcribes = dead_lettered_ids(task_name=tasks.voicemail_transcribe.name, now=now)
    downloads = list(
        recent.filter(details__audio=Audio.PENDING, details__has_key="recording_url")
        .exclude(pk__in=[*started, *dead_downloads])
        .values_list("pk", flat=True)[:BATCH]
    )
    for pk in downloads:
        enqueue(tasks.voicemail_audio_download, pk)

    transcripts = 0
    given_up = 0
    backend = get_transcription_backend()
    for candidate in recent.filter(details__transcript_status=TranscriptStatus.PENDING).order_by(
        "created_at"
    )[:BATCH]:
        voicemail = candidate  # the row as read; replaced by its locked, updated copy when that is taken
        if twilio_may_transcribe(voicemail.details):
            if voicemail.created_at > wait_cutoff:
                continue
            with transaction.atomic():
                locked = Message.objects.select_for_update().get(pk=voicemail.pk)
                if not twilio_may_transcribe(locked.details) or locked.details.get("transcript_source"):
                    continue
                # https://www.twilio.com/docs/voice/twiml/record#transcribe: the callback usually comes within
                # minutes; after VOICE_TRANSCRIPT_WAIT_SECONDS we stop waiting.
                locked.details["twilio_transcription_failed"] = "timeout"
                status, _ = transcript_state(locked.details, backend_enabled=backend.is_enabled)
                locked.details["transcript_status"] = status.value
                locked.save(update_fields=["details"])
                voicemail = locked
            given_up += 1
        if needs_backend_transcription(voicemail) and voicemail.pk not in dead_transcribes:
            enqueue(tasks.voicemail_transcribe, voicemail.pk)
            transcripts += 1
    return VoiceSweepReport(len(started) + len(downloads), transcripts, given_up, parked_sweep(now=now))
