"""The cost of a call's webhooks (docs/performance.md, "Voice"), and the follow-up drain that keeps it low.

Statement counts are a regression guard: each extra ORM statement costs 0.6-2 ms of CPU on this class of
machine, and the hotline's target (50 new calls a second on two cores) leaves 2-3 ms per webhook.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messages.models import Channel, ConversationEvent, ConversationTag, Message
from offices.selectors import office_number_routes_clear
from tests.voice.conftest import Hotline
from voice.services import voice_followups_drain, voice_sweep
from voice.services.config import voice_config_clear
from voice.services.followups import FOLLOWUP, followups_nudge

pytestmark = pytest.mark.django_db

FLOW = (
    ("incoming", "voice_call_received__basic"),
    ("menu", "voice_menu_selected__digit"),
    ("record", "voice_voicemail_recorded__basic"),
    ("recording", "voice_recording_completed__completed"),
    ("transcription", "voice_transcription_received__completed"),
    ("status", "voice_call_status__completed"),
)
# Statements per webhook of a new caller's call, once the office's configuration is cached (BEGIN, COMMIT
# and savepoints not counted; see test_no_webhook_nests_transactions):
BUDGET = {
    "incoming": 3,  # constituent upsert, new thread, call INSERT (with "any callbacks parked?")
    "menu": 2,  # compare-and-set of the call: read, conditional UPDATE
    "record": 5,  # call locked, voicemail looked up, INSERTed, thread touched, call updated
    "recording": 2,  # compare-and-set of the voicemail
    "transcription": 2,  # compare-and-set of the voicemail, with the thread's preview
    "status": 2,  # compare-and-set of the call
}
TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")


@pytest.fixture
def cached(settings: Any) -> Iterator[None]:
    settings.VOICE_CONFIG_CACHE_SECONDS = 60
    settings.OFFICE_NUMBER_CACHE_SECONDS = 60
    voice_config_clear()
    office_number_routes_clear()
    yield
    voice_config_clear()
    office_number_routes_clear()


def _play(post_voice: Any, **overrides: str) -> dict[str, list[str]]:
    statements: dict[str, list[str]] = {}
    for step, fixture in FLOW:
        with CaptureQueriesContext(connection) as captured:
            post_voice(fixture, **overrides)
        statements[step] = [query["sql"] for query in captured.captured_queries]
    return statements


def _work(sqls: list[str]) -> list[str]:
    return [sql for sql in sqls if not sql.startswith(TRANSACTION_CONTROL)]


def _warm(post_voice: Any) -> None:
    """A call from another caller first: loads the office's configuration and number into the caches."""
    post_voice("voice_call_received__basic", CallSid="CA" + "9" * 32, From="+14155550999")


def test_each_webhook_of_a_call_stays_within_its_statement_budget(
    cached: None, post_voice: Any, hotline: Hotline
) -> None:
    _warm(post_voice)
    statements = _play(post_voice)
    spent = {step: len(_work(sqls)) for step, sqls in statements.items()}
    assert spent == BUDGET, "\n\n".join(f"{step}:\n" + "\n".join(statements[step]) for step in statements)
    assert not any("pg_advisory" in sql for sqls in statements.values() for sql in sqls)


def test_no_webhook_nests_transactions(cached: None, post_voice: Any, hotline: Hotline) -> None:
    """Inside the test's transaction a webhook's own transaction is one savepoint; nested ones would be more
    (each a round trip). The compare-and-set callbacks need no transaction at all."""
    _warm(post_voice)
    statements = _play(post_voice)
    savepoints = {step: sum(sql.startswith("SAVEPOINT") for sql in sqls) for step, sqls in statements.items()}
    assert savepoints == {
        "incoming": 1,
        "menu": 0,
        "record": 1,
        "recording": 0,
        "transcription": 0,
        "status": 0,
    }


def test_a_call_publishes_nothing_itself_and_nudges_the_drain_once(
    cached: None,
    post_voice: Any,
    hotline: Hotline,
    enqueued: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _play(post_voice)
        _play(
            post_voice,
            CallSid="CA" + "5" * 32,
            RecordingSid="RE" + "5" * 32,
            TranscriptionSid="TR" + "5" * 32,
            From="+14155550155",
        )
    # Two calls, two voicemails: one drain published, no per-call tasks.
    assert enqueued == [("voice_followups_drain", ())]
    pending = Message.objects.filter(channel=Channel.VOICEMAIL, details__has_key=FOLLOWUP)
    assert pending.count() == 2

    enqueued.clear()
    voice_followups_drain()
    assert not pending.exists()
    voicemails = list(Message.objects.filter(channel=Channel.VOICEMAIL).order_by("pk"))
    assert sorted(enqueued) == sorted(("voicemail_audio_download", (vm.pk,)) for vm in voicemails)
    for voicemail in voicemails:
        conversation = voicemail.conversation
        assert conversation.queue == hotline.queue
        assert ConversationTag.objects.filter(conversation=conversation, tag=hotline.tag).count() == 1
        events = ConversationEvent.objects.filter(conversation=conversation)
        assert sorted(events.values_list("kind", flat=True)) == ["queue", "tagged"]
    assert followups_nudge() is True  # the drain cleared the key: the next voicemail publishes again


def test_the_drain_never_overrides_a_queue_staff_chose(
    cached: None, post_voice: Any, hotline: Hotline, enqueued: list[Any]
) -> None:
    _play(post_voice)
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    other: Any = hotline.queue.__class__.objects.create(office=hotline.office, name="Press")
    conversation = voicemail.conversation
    conversation.queue = other
    conversation.save(update_fields=["queue"])
    voice_followups_drain()
    conversation.refresh_from_db()
    assert conversation.queue == other
    assert ConversationTag.objects.filter(conversation=conversation, tag=hotline.tag).exists()


def test_the_sweeper_does_follow_ups_whose_nudge_was_lost(
    post_voice: Any, hotline: Hotline, enqueued: list[Any]
) -> None:
    """Redis was down at commit: no drain ran. The sweeper does the work once it is a minute old."""
    _play(post_voice)
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert FOLLOWUP in voicemail.details
    now = timezone.now()
    assert voice_sweep(now=now).downloads_requeued == 0  # too recent: the drain may still come
    assert not ConversationTag.objects.exists()
    report = voice_sweep(now=now + timedelta(minutes=2))
    assert report.downloads_requeued == 1
    assert enqueued == [("voicemail_audio_download", (voicemail.pk,))]
    voicemail.refresh_from_db()
    assert FOLLOWUP not in voicemail.details
    assert ConversationTag.objects.filter(conversation=voicemail.conversation, tag=hotline.tag).count() == 1


def test_a_callback_that_lost_a_compare_and_set_reads_again(
    post_voice: Any, hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone wrote the voicemail between the callback's read and its write: the write misses, and the
    callback merges into what is there now, so neither change is lost."""
    from voice.services import rows

    for _step, fixture in FLOW[:3]:
        post_voice(fixture)
    original = rows.message_write_if_unchanged
    interfered: list[bool] = []

    def write(read: Any, **kwargs: Any) -> bool:
        if not interfered:
            interfered.append(True)
            Message.objects.filter(pk=read.message.pk).update(body="written meanwhile")
        return original(read, **kwargs)

    monkeypatch.setattr(rows, "message_write_if_unchanged", write)
    monkeypatch.setattr("voice.services.voicemail.message_write_if_unchanged", write)
    post_voice("voice_recording_completed__completed")
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert interfered == [True]
    assert voicemail.body == "written meanwhile"
    assert voicemail.details["recording_status"] == "completed"


def test_a_repeated_incoming_call_webhook_merges_into_the_stored_call(
    post_voice: Any, hotline: Hotline
) -> None:
    """The incoming call is created without looking first; a repeat loses the INSERT, rolls back what it did
    (its thread note included) and merges into the stored row instead."""
    post_voice("voice_call_received__basic")
    post_voice("voice_call_received__basic")
    call = Message.objects.get(channel=Channel.CALL)
    assert [entry["step"] for entry in call.details["menu_path"]] == [0]
    assert Message.objects.count() == 1
