"""Whole calls with no Twilio, through the simulator the demo uses: it follows the app's own TwiML and posts
every signed webhook Twilio would, then a worker's tasks run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from demo.calls import CallScript, run_call
from messages.models import Channel, ConversationTag, Message
from tests import factories
from tests.voice.conftest import Hotline
from tests.voice.helpers import HOTLINE, client_transport
from voice.models import CallOutcome, TranscriptStatus
from voice.services import voice_sweep, voicemail_audio_download, voicemail_transcribe

pytestmark = pytest.mark.django_db


def test_a_simulated_call_leaves_a_transcribed_voicemail_with_audio(
    hotline: Hotline, run_tasks: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        trace = run_call(
            CallScript(to_number=HOTLINE, inputs=("1",), voicemail_seconds=30), client_transport()
        )
    assert trace.ok, trace
    assert trace.ended_by == "hangup"
    assert [e.path.split("?")[0].rsplit("/", 2)[-2] for e in trace.exchanges] == [
        "voice",
        "menu",
        "record",
        "recording",
        "transcription",
        "status",
    ]
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.body == "Hello, I am calling about the clean water bill. Please call me back."
    assert voicemail.details["audio"] == "stored"
    assert voicemail.duration_seconds == 30
    call = Message.objects.get(channel=Channel.CALL)
    assert call.details["outcome"] == CallOutcome.VOICEMAIL
    assert call.details["topic"] == "Health care"
    # The webhooks nudge the follow-up drain (it tags the thread and starts the download); nothing else.
    assert set(run_tasks) == {"voice_followups_drain", "voicemail_audio_download"}
    assert run_tasks.count("voicemail_audio_download") == 1
    assert ConversationTag.objects.filter(conversation=call.conversation, tag=hotline.tag).count() == 1


def test_a_simulated_call_to_staff_who_answer(hotline: Hotline) -> None:
    trace = run_call(CallScript(to_number=HOTLINE, inputs=("2",), staff_answers=True), client_transport())
    assert trace.ok
    details = Message.objects.get(channel=Channel.CALL).details
    assert details["outcome"] == CallOutcome.ANSWERED
    assert details["answered_by"] == "+12025550111"
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()


def test_a_simulated_withheld_number_caller_who_waits_through_the_menu(hotline: Hotline) -> None:
    trace = run_call(
        CallScript(to_number=HOTLINE, from_number="Anonymous", voicemail_seconds=200), client_transport()
    )
    assert trace.ok
    call = Message.objects.get(channel=Channel.CALL)
    assert call.conversation.constituent.phone == ""
    assert call.details["caller_withheld"]
    assert [entry["result"] for entry in call.details["menu_path"]][
        -1
    ] == "no valid choice after 3 tries: voicemail"
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.details["transcript_status"] == TranscriptStatus.NONE  # 200 s: too long for Twilio
    assert trace.transcription_sids == []


def test_a_caller_who_hangs_up_at_the_beep(hotline: Hotline) -> None:
    trace = run_call(CallScript(to_number=HOTLINE, inputs=("1",), voicemail_seconds=0), client_transport())
    assert trace.ok
    assert trace.ended_by == "hangup"
    assert Message.objects.get(channel=Channel.CALL).details["outcome"] == CallOutcome.ABANDONED
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()


def test_the_sweeper_finishes_what_the_queue_lost(
    post_voice: Any, settings: Any, enqueued: list[Any]
) -> None:
    """The broker was down at commit (nothing published) and Twilio's transcription never came."""
    settings.TRANSCRIPTION_BACKEND = "simulator"
    for name in (
        "voice_call_received__basic",
        "voice_menu_selected__digit",
        "voice_voicemail_recorded__basic",
        "voice_recording_completed__completed",
    ):
        post_voice(name)
    enqueued.clear()
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    now = timezone.now()
    assert voice_sweep(now=now).downloads_requeued == 0  # too recent: the queue may still deliver it
    report = voice_sweep(now=now + timedelta(minutes=2))
    assert report.downloads_requeued == 1
    assert enqueued == [("voicemail_audio_download", (voicemail.pk,))]
    assert report.transcripts_given_up == 0  # Twilio's transcript may still come
    assert voicemail_audio_download(message_id=voicemail.pk) == "stored"

    enqueued.clear()
    report = voice_sweep(now=now + timedelta(seconds=settings.VOICE_TRANSCRIPT_WAIT_SECONDS + 60))
    assert (report.transcripts_given_up, report.transcripts_requeued) == (1, 1)
    assert enqueued == [("voicemail_transcribe", (voicemail.pk,))]
    assert voicemail_transcribe(message_id=voicemail.pk) == TranscriptStatus.COMPLETED
    voicemail.refresh_from_db()
    assert voicemail.details["twilio_transcription_failed"] == "timeout"
    assert voicemail.details["transcript_source"] == "simulator"
    assert voicemail.conversation.last_message_preview.startswith("[Simulated transcript")


def test_staff_place_a_simulated_call_from_the_demo_page(
    hotline: Hotline, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEMO_MODE = True
    monkeypatch.setattr("demo.views.http_transport", lambda base_url, token: client_transport())
    member: Any = factories.MembershipFactory.create(office=hotline.office, role="staff")
    staff = Client()
    staff.force_login(member.user)
    url = f"/o/{hotline.office.slug}/voice/simulator/"
    assert staff.get(url).status_code == 200
    response = staff.post(
        url,
        {
            "from_number": "+14155550142",
            "to_number": HOTLINE,
            "inputs": "1",
            "voicemail_seconds": "25",
            "voicemail_text": "Please fix the potholes.",
        },
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Simulated call CA" in page
    assert "Sent to voicemail" in page
    assert Message.objects.get(channel=Channel.VOICEMAIL).body == "Please fix the potholes."
    reader: Any = factories.MembershipFactory.create(office=hotline.office, role="official")
    official = Client()
    official.force_login(reader.user)
    assert official.post(url, {}).status_code == 403
    settings.DEMO_MODE = False
    assert staff.get(url).status_code == 404
