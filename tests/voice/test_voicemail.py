"""Voicemails: in the caller's own thread beside their texts, with duration, topic, transcript (or a clear
"no transcript"), audio fetched by a worker and played only to the office's staff, and retention."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from messages.models import Channel, ConversationEvent, ConversationStatus, ConversationTag, Media, Message
from messages.twilio.errors import MediaNotReady, MediaRejected, RetryableSendError
from tests import factories
from tests.messages.twilio.webhook import SMS_PATH, fixture
from tests.voice.conftest import Hotline
from tests.voice.helpers import RECORDING_SID, TRANSCRIPTION_SID
from voice.models import CallOutcome, TranscriptStatus
from voice.services import (
    voice_followups_drain,
    voicemail_audio_download,
    voicemail_recording_delete,
    voicemail_recordings_expire,
)
from voice.services.recordings import MAX_DOWNLOAD_ATTEMPTS
from voice.twilio.backends import LocmemRecordingBackend

pytestmark = pytest.mark.django_db


def _voicemail() -> Message:
    return Message.objects.get(channel=Channel.VOICEMAIL)


def _call() -> Message:
    return Message.objects.get(channel=Channel.CALL)


def _leave_voicemail(post_voice: Any, *, recording: str = "voice_recording_completed__completed") -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit")
    post_voice("voice_voicemail_recorded__basic")
    post_voice(recording)


def test_voicemail_lands_in_the_same_thread_as_the_callers_texts(post_voice: Any, post_signed: Any) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__basic")).status_code == 200
    text = Message.objects.get(channel=Channel.SMS)
    _leave_voicemail(post_voice)
    voicemail, call = _voicemail(), _call()
    assert voicemail.conversation_id == call.conversation_id == text.conversation_id
    assert voicemail.provider_sid == RECORDING_SID
    assert voicemail.duration_seconds == 45
    assert voicemail.details["call_sid"] == call.provider_sid
    assert voicemail.conversation.is_unread
    assert voicemail.conversation.last_message_channel == Channel.VOICEMAIL
    assert call.details["outcome"] == CallOutcome.VOICEMAIL
    assert call.details["recordings"] == [RECORDING_SID]


def test_a_voicemail_reopens_a_thread_closed_while_the_caller_was_on_the_line(post_voice: Any) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit")
    conversation = _call().conversation
    conversation.status, conversation.closed_at = ConversationStatus.CLOSED, timezone.now()
    conversation.save()
    post_voice("voice_recording_completed__completed")
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.is_unread


def test_the_chosen_topic_tags_the_thread_and_sets_its_queue_once(post_voice: Any, hotline: Hotline) -> None:
    _leave_voicemail(post_voice)
    post_voice("voice_transcription_received__completed")
    voice_followups_drain()  # the worker's share: tag and queue the thread
    voice_followups_drain()  # a second drain has nothing left to do
    voicemail = _voicemail()
    assert voicemail.details["topic"] == "Health care"
    assert _call().details["topic"] == "Health care"
    conversation = voicemail.conversation
    assert ConversationTag.objects.filter(conversation=conversation, tag=hotline.tag).count() == 1
    assert conversation.queue == hotline.queue
    kinds = sorted(ConversationEvent.objects.filter(conversation=conversation).values_list("kind", flat=True))
    assert kinds == ["queue", "tagged"]


def test_transcript_is_pending_until_twilio_sends_it_then_attached_once(post_voice: Any) -> None:
    _leave_voicemail(post_voice)
    assert _voicemail().details["transcript_status"] == TranscriptStatus.PENDING
    assert _voicemail().body == ""
    for _ in range(2):
        post_voice("voice_transcription_received__completed")
    voicemail = _voicemail()
    assert voicemail.details["transcript_status"] == TranscriptStatus.COMPLETED
    assert voicemail.body.startswith("Hi, this is Pat.")
    assert voicemail.details["transcription_sids"] == [TRANSCRIPTION_SID]
    assert voicemail.conversation.last_message_preview.startswith("[voicemail]") or voicemail.body


@pytest.mark.parametrize(
    ("recording", "transcription", "backend", "expected"),
    [
        # Too long for Twilio (2-120 s), no backend: say so.
        ("voice_recording_completed__long", None, "none", TranscriptStatus.NONE),
        # Twilio failed and there is no backend.
        (
            "voice_recording_completed__completed",
            "voice_transcription_received__failed",
            "none",
            TranscriptStatus.NONE,
        ),
        # The backend takes over once the audio is stored.
        ("voice_recording_completed__long", None, "simulator", TranscriptStatus.PENDING),
        (
            "voice_recording_completed__completed",
            "voice_transcription_received__failed",
            "simulator",
            TranscriptStatus.PENDING,
        ),
        # An empty recording is no voicemail at all.
    ],
)
def test_transcript_state_without_a_twilio_transcript(
    recording: str, transcription: str | None, backend: str, expected: str, post_voice: Any, settings: Any
) -> None:
    settings.TRANSCRIPTION_BACKEND = backend
    _leave_voicemail(post_voice, recording=recording)
    if transcription:
        post_voice(transcription)
    assert _voicemail().details["transcript_status"] == expected


def test_backend_transcribes_after_the_audio_is_stored(
    post_voice: Any, settings: Any, run_tasks: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    settings.TRANSCRIPTION_BACKEND = "simulator"
    with django_capture_on_commit_callbacks(execute=True):
        _leave_voicemail(post_voice, recording="voice_recording_completed__long")
    assert run_tasks[:2] == ["voice_followups_drain", "voicemail_audio_download"]
    assert "voicemail_transcribe" in run_tasks
    voicemail = _voicemail()
    assert voicemail.details["audio"] == "stored"
    assert voicemail.details["transcript_status"] == TranscriptStatus.COMPLETED
    assert voicemail.details["transcript_source"] == "simulator"
    assert voicemail.body.startswith("[Simulated")


def test_empty_recording_leaves_no_voicemail_and_the_call_shows_it(post_voice: Any) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit")
    post_voice("voice_recording_completed__absent")
    post_voice("voice_call_status__completed")
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()
    call = _call()
    assert call.details["recording_status"] == "absent"
    assert call.details["outcome"] == CallOutcome.ABANDONED


def test_audio_is_downloaded_once_and_played_only_to_the_offices_staff(
    post_voice: Any, hotline: Hotline, staff_in: Client, recordings: type[LocmemRecordingBackend]
) -> None:
    _leave_voicemail(post_voice)
    voicemail = _voicemail()
    assert voicemail_audio_download(message_id=voicemail.pk) == "stored"
    assert voicemail_audio_download(message_id=voicemail.pk) == "nothing-to-do"
    assert recordings.fetched == [voicemail.details["recording_url"]]
    media = Media.objects.get(message=voicemail)
    assert (media.index, media.content_type, media.status) == (0, "audio/wav", "stored")

    url = f"/o/{hotline.office.slug}/voice/voicemails/{voicemail.pk}/audio/"
    response = staff_in.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in response["Content-Disposition"]
    assert response.getvalue().startswith(b"RIFF")
    assert (
        "twilio.com"
        not in staff_in.get(
            f"/o/{hotline.office.slug}/conversations/{voicemail.conversation_id}/"
        ).content.decode()
    )

    outsider: Any = factories.MembershipFactory.create(role="admin")  # an admin of another office
    stranger = Client()
    stranger.force_login(outsider.user)
    assert stranger.get(url).status_code == 404
    assert stranger.get(f"/o/{hotline.office.slug}/voice/voicemails/{voicemail.pk}/audio/").status_code == 404
    assert Client().get(url).status_code == 302  # to the login page
    call_pk = _call().pk
    assert staff_in.get(f"/o/{hotline.office.slug}/voice/voicemails/{call_pk}/audio/").status_code == 404


def test_audio_download_retries_on_not_ready_then_gives_up_after_max_attempts(
    post_voice: Any, recordings: type[LocmemRecordingBackend]
) -> None:
    from voice.services import VoicemailRetry

    _leave_voicemail(post_voice)
    voicemail = _voicemail()
    for attempt in range(1, MAX_DOWNLOAD_ATTEMPTS):
        recordings.fail_next_fetch(MediaNotReady("404"))
        with pytest.raises(VoicemailRetry):
            voicemail_audio_download(message_id=voicemail.pk)
        assert (_voicemail().details["audio"], _voicemail().details["audio_attempts"]) == ("pending", attempt)
    recordings.fail_next_fetch(MediaNotReady("404"))
    assert voicemail_audio_download(message_id=voicemail.pk) == "failed"
    assert _voicemail().details["audio"] == "failed"
    assert _voicemail().details["audio_error"] == f"gave up after {MAX_DOWNLOAD_ATTEMPTS} tries: 404"
    assert len(recordings.fetched) == MAX_DOWNLOAD_ATTEMPTS


def test_audio_download_rejects_a_bad_file_at_once_without_retrying(
    post_voice: Any, recordings: type[LocmemRecordingBackend]
) -> None:
    _leave_voicemail(post_voice)
    voicemail = _voicemail()
    recordings.fail_next_fetch(MediaRejected("too large"))
    assert voicemail_audio_download(message_id=voicemail.pk) == "failed"
    assert _voicemail().details["audio"] == "failed"
    assert "too large" in _voicemail().details["audio_error"]
    assert len(recordings.fetched) == 1


def test_the_thread_shows_the_call_and_the_voicemail_with_their_states(
    post_voice: Any, hotline: Hotline, staff_in: Client
) -> None:
    _leave_voicemail(post_voice, recording="voice_recording_completed__long")
    post_voice("voice_call_status__completed")
    page = staff_in.get(f"/o/{hotline.office.slug}/conversations/{_call().conversation_id}/").content.decode()
    assert "Sent to voicemail" in page
    assert "pressed 1" in page
    assert "voicemail: Health care" in page
    assert "No transcript: listen to the recording." in page
    assert "The recording is being fetched." in page


def test_retention_deletes_old_recordings_here_and_at_twilio_and_keeps_transcripts(
    post_voice: Any, settings: Any, enqueued: list[Any], recordings: type[LocmemRecordingBackend]
) -> None:
    _leave_voicemail(post_voice)
    post_voice("voice_transcription_received__completed")
    voicemail = _voicemail()
    voicemail_audio_download(message_id=voicemail.pk)
    settings.VOICE_RECORDING_RETENTION_DAYS = 0
    assert voicemail_recordings_expire() == 0  # 0 keeps recordings
    settings.VOICE_RECORDING_RETENTION_DAYS = 30
    assert voicemail_recordings_expire() == 0  # not old enough
    later = timezone.now() + dt.timedelta(days=31)
    enqueued.clear()
    assert voicemail_recordings_expire(now=later) == 1
    assert enqueued == [("voicemail_recording_delete", (voicemail.pk,))]

    recordings.fail_next_delete(RetryableSendError("Twilio is down"))
    file_name = Media.objects.get(message=voicemail).file.name
    with pytest.raises(RetryableSendError):
        voicemail_recording_delete(message_id=voicemail.pk)
    assert not Media.objects.filter(message=voicemail).exists()  # the local copy went regardless
    from django.core.files.storage import default_storage

    assert not default_storage.exists(file_name)
    assert voicemail_recording_delete(message_id=voicemail.pk) is True
    assert voicemail_recording_delete(message_id=voicemail.pk) is True  # idempotent
    assert recordings.deleted == [RECORDING_SID]
    voicemail = _voicemail()
    assert voicemail.details["audio"] == "deleted"
    assert voicemail.details["recording_purged"] is True
    assert voicemail.body.startswith("Hi, this is Pat.")
    assert voicemail_recordings_expire(now=later) == 0
