"""Celery entry points of the voice hotline: ids in, call one service. Recordings are handled after the call.

The tasks were once defined in ``messages.tasks``. A task published under that old name by an older release
and still in the broker is rejected as unregistered by a new worker; that loses no work, because the voice
sweeper (``voice_sweep``) re-enqueues every voicemail whose download or transcription has not finished.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from messages.tasks import BACKOFF_CAP_SECONDS, MAX_DELIVERY_RETRIES, backoff
from messages.twilio.errors import RetryableSendError
from voice import services as voice_services
from voice.services.recordings import MAX_DOWNLOAD_ATTEMPTS
from voice.transcription import TranscriptionRetry

# The service counts download tries in the voicemail's row (a download the sweeper re-enqueues continues
# the count) and marks the audio failed at the last of MAX_DOWNLOAD_ATTEMPTS: the first try and these retries.
MAX_VOICEMAIL_DOWNLOAD_RETRIES = MAX_DOWNLOAD_ATTEMPTS - 1
TRANSCRIPTION_BACKOFF_BASE_SECONDS = 10.0
RECORDING_DELETE_BACKOFF_BASE_SECONDS = 2.0


def voicemail_download_retry_countdown(retries: int, *, spread: float | None = None) -> float:
    """Seconds before a recording download's retry number ``retries`` + 1: DOWNLOAD_RETRY_BASE_SECONDS,
    then an exponential backoff from it (Twilio can answer 404 for a moment after the recording callback).
    At most BACKOFF_CAP_SECONDS, whatever the setting."""
    base = float(settings.DOWNLOAD_RETRY_BASE_SECONDS)
    return min(float(BACKOFF_CAP_SECONDS), base + backoff(retries, base=base, spread=spread))


def transcription_retry_countdown(retries: int, *, spread: float | None = None) -> float:
    """Seconds before a backend transcription's retry number ``retries`` + 1."""
    return backoff(retries, base=TRANSCRIPTION_BACKOFF_BASE_SECONDS, spread=spread)


def recording_delete_retry_countdown(retries: int, *, spread: float | None = None) -> float:
    """Seconds before a Twilio recording deletion's retry number ``retries`` + 1."""
    return backoff(retries, base=RECORDING_DELETE_BACKOFF_BASE_SECONDS, spread=spread)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=MAX_VOICEMAIL_DOWNLOAD_RETRIES)
def voicemail_audio_download(self: Task[..., None], message_id: int) -> None:
    try:
        voice_services.voicemail_audio_download(message_id=message_id)
    except voice_services.VoicemailRetry as exc:
        # Twilio can answer 404 for a moment after the recording callback: retry soon, then back off.
        raise self.retry(exc=exc, countdown=voicemail_download_retry_countdown(self.request.retries)) from exc


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def voicemail_transcribe(self: Task[..., None], message_id: int) -> None:
    try:
        voice_services.voicemail_transcribe(message_id=message_id)
    except TranscriptionRetry as exc:
        raise self.retry(exc=exc, countdown=transcription_retry_countdown(self.request.retries)) from exc


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=MAX_DELIVERY_RETRIES)
def voicemail_recording_delete(self: Task[..., None], message_id: int) -> None:
    try:
        voice_services.voicemail_recording_delete(message_id=message_id)
    except RetryableSendError as exc:
        # Given up after max_retries: the hourly retention run enqueues it again.
        raise self.retry(exc=exc, countdown=recording_delete_retry_countdown(self.request.retries)) from exc


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
