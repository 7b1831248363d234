"""Celery entry points of the voice hotline: ids in, call one service. Recordings are handled after the call.

The tasks were once defined in ``messages.tasks``. A task published under that old name by an older release
and still in the broker is rejected as unregistered by a new worker; that loses no work, because the voice
sweeper (``voice_sweep``) re-enqueues every voicemail whose download or transcription has not finished.
"""

from __future__ import annotations

from celery import Task, shared_task

from messages.tasks import MAX_DELIVERY_RETRIES, backoff
from messages.twilio.errors import RetryableSendError
from voice import services as voice_services
from voice.transcription import TranscriptionRetry

MAX_VOICEMAIL_DOWNLOAD_RETRIES = 6


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=MAX_VOICEMAIL_DOWNLOAD_RETRIES)
def voicemail_audio_download(self: Task[..., None], message_id: int) -> None:
    try:
        voice_services.voicemail_audio_download(message_id=message_id)
    except voice_services.VoicemailRetry as exc:
        # Twilio can answer 404 for a moment after the recording callback: retry soon, then back off.
        raise self.retry(exc=exc, countdown=2 + backoff(self.request.retries)) from exc


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def voicemail_transcribe(self: Task[..., None], message_id: int) -> None:
    try:
        voice_services.voicemail_transcribe(message_id=message_id)
    except TranscriptionRetry as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, base=10.0)) from exc


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=MAX_DELIVERY_RETRIES)
def voicemail_recording_delete(self: Task[..., None], message_id: int) -> None:
    try:
        voice_services.voicemail_recording_delete(message_id=message_id)
    except RetryableSendError as exc:
        # Given up after max_retries: the hourly retention run enqueues it again.
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(ignore_result=True)
def voicemail_recordings_expire() -> None:
    voice_services.voicemail_recordings_expire()


@shared_task(ignore_result=True)
def voice_sweep() -> None:
    voice_services.voice_sweep()


@shared_task(acks_late=True, ignore_result=True)
def voice_followups_drain() -> None:
    """Tag and queue voicemails' threads, start their downloads (nudged by the voice webhooks)."""
    voice_services.voice_followups_drain()
