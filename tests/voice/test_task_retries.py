"""A voicemail's recording download, retried and given up through a real Celery worker on real Redis, with
the real SSRF-safe fetcher against the local fake Twilio API (VOICE_BACKEND="twilio").

The voicemail arrives through the signed webhooks; on commit they nudge the follow-up drain, which the worker
runs and which publishes ``voice.tasks.voicemail_audio_download``. DOWNLOAD_RETRY_BASE_SECONDS is made tiny.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from messages.models import Channel, MediaStatus, Message
from tests import factories
from tests.fakes.fake_twilio import ROUTE_RECORDING, FakeTwilio, Scripted
from tests.task_ledger import TaskLedger
from tests.voice.conftest import Hotline
from tests.voice.helpers import RECORDING_SID
from voice import tasks
from voice.services.recordings import MAX_DOWNLOAD_ATTEMPTS
from voice.services.voicemail import Audio

pytestmark = pytest.mark.django_db(transaction=True)

BASE_SECONDS = 0.01
# A countdown is read from the ETA header as the retry is published: less than the true one by up to tens of
# milliseconds on a loaded machine (see tests/messages/test_task_retries.py).
MEASURE_TOLERANCE_SECONDS = 0.03
AUDIO = b"ID3\x03voicemail-mp3"
NOT_READY = Scripted.twilio_error(404, 20404, "The requested resource was not found")


@pytest.fixture
def fake(twilio_api: FakeTwilio, settings: Any) -> FakeTwilio:
    settings.VOICE_BACKEND = "twilio"
    settings.DOWNLOAD_RETRY_BASE_SECONDS = BASE_SECONDS
    twilio_api.add_recording(AUDIO, recording_sid=RECORDING_SID, account_sid=settings.TWILIO_ACCOUNT_SID)
    return twilio_api


def _leave_voicemail(post_voice: Any) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit")
    post_voice("voice_voicemail_recorded__basic")
    post_voice("voice_recording_completed__completed")


def _voicemail() -> Message:
    return Message.objects.get(channel=Channel.VOICEMAIL)


def test_a_recording_not_ready_is_retried_by_the_worker_then_stored(
    fake: FakeTwilio, ledger: TaskLedger, post_voice: Any
) -> None:
    not_ready = 2
    fake.script(*[NOT_READY] * not_ready, route=ROUTE_RECORDING)
    _leave_voicemail(post_voice)
    ledger.wait_idle()

    voicemail = _voicemail()
    assert voicemail.details["audio"] == Audio.STORED
    assert voicemail.details["audio_attempts"] == not_ready + 1
    media = voicemail.media.get(index=0)
    assert (media.status, media.content_type, media.size) == (MediaStatus.STORED, "audio/mpeg", len(AUDIO))
    assert len(fake.requests_for(ROUTE_RECORDING)) == not_ready + 1
    assert ledger.runs("voicemail_audio_download") == ["RETRY"] * not_ready + ["SUCCESS"]
    countdowns = ledger.retry_countdowns("voicemail_audio_download")
    assert len(countdowns) == not_ready
    for retries, countdown in enumerate(countdowns):
        lowest = tasks.voicemail_download_retry_countdown(retries, spread=0.0)
        highest = tasks.voicemail_download_retry_countdown(retries, spread=1.0)
        assert lowest - MEASURE_TOLERANCE_SECONDS <= countdown <= highest, (retries, countdowns)


def test_a_recording_never_ready_gives_up_after_max_retries_and_staff_see_it_failed(
    fake: FakeTwilio, ledger: TaskLedger, post_voice: Any, hotline: Hotline
) -> None:
    fake.script(*[NOT_READY] * (MAX_DOWNLOAD_ATTEMPTS + 3), route=ROUTE_RECORDING)
    _leave_voicemail(post_voice)
    ledger.wait_idle()

    voicemail = _voicemail()
    assert voicemail.details["audio"] == Audio.FAILED
    assert voicemail.details["audio_error"].startswith(f"gave up after {MAX_DOWNLOAD_ATTEMPTS} tries: ")
    # The first try and MAX_VOICEMAIL_DOWNLOAD_RETRIES retries; the service gave up (a normal end), before
    # Celery's max_retries would have failed the task and left the audio pending.
    assert MAX_DOWNLOAD_ATTEMPTS == 1 + tasks.MAX_VOICEMAIL_DOWNLOAD_RETRIES
    assert len(fake.requests_for(ROUTE_RECORDING)) == MAX_DOWNLOAD_ATTEMPTS
    assert ledger.runs("voicemail_audio_download") == ["RETRY"] * tasks.MAX_VOICEMAIL_DOWNLOAD_RETRIES + [
        "SUCCESS"
    ]
    assert not voicemail.media.exists()
    # The thread tells staff the recording could not be fetched.
    staff = Client()
    staff.force_login(factories.MembershipFactory.create(office=hotline.office, role="staff").user)
    page = staff.get(f"/o/{hotline.office.slug}/conversations/{voicemail.conversation_id}/").content.decode()
    assert "The recording could not be downloaded from Twilio." in page
    assert "The recording is being fetched." not in page
