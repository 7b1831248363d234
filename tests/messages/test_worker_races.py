"""Two real Celery worker processes racing for the same work, and a worker killed with SIGKILL mid-task.

The rules under test: a duplicated delivery task never sends twice (the claim's row lock), an inbound text
is processed once however many drains run (the row lock in ``inbound_process`` and the ``processed_at``
guard of the batch mark), a snooze ends once however many wake-ups overlap (SKIP LOCKED in
``snoozed_conversations_wake``), and a send whose worker died is reconciled with Twilio, never resent.

The workers are ``celery worker`` subprocesses (tests/workers.py) on this test's database, sending through
the real twilio SDK to a fake Twilio in this process, which counts what reaches it. The race windows are
widened deterministically by PostgreSQL triggers this module installs for each test: a pause inside the
transaction that claims a send or marks a text processed, so that a second worker reads the same row
while the first still holds it. A trigger also logs every commit that marks a text processed, which is
how "processed once" is observed from outside the worker.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from civicdesk.celery import app as celery_app
from common.models import DeadLetter
from constituents.models import ConsentEvent, SmsConsent
from messages import tasks
from messages.models import (
    Conversation,
    ConversationEvent,
    ConversationStatus,
    Direction,
    EventKind,
    Message,
    MessageStatus,
)
from messages.services.delivery import SENDING_STALE_AFTER
from messages.services.inbound_queue import NUDGE_KEY
from messages.services.processing import DEAD_LETTER_TASK_NAME
from messages.services.sweeper import sweep
from tests import factories
from tests.fakes.fake_twilio import ROUTE_CREATE_MESSAGE, ROUTE_LIST_MESSAGES, FakeTwilio, Scripted
from tests.workers import Workers, celery_workers, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Redis gives a task whose worker died unacknowledged to another worker after this many seconds. A task
# that runs longer comes back too while it runs, which every task here must (and does) take in its stride.
VISIBILITY_TIMEOUT = 1.0
OFFICE_NUMBER = "+14155550100"
ACK_TEXT = "Thanks for writing to the office."
# How long a pausing trigger holds the transaction that claims a send or marks a text processed.
CLAIM_PAUSE_SECONDS = 0.02
MARK_PAUSE_SECONDS = 0.01


@pytest.fixture(scope="module")
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(accounts={settings.TWILIO_ACCOUNT_SID: settings.TWILIO_AUTH_TOKEN}) as fake:
        yield fake


@pytest.fixture(scope="module")
def workers(django_db_setup: None, fake_twilio: FakeTwilio) -> Iterator[Workers]:
    """Two worker processes for the whole module: they keep no state between tasks."""
    with celery_workers(
        2,
        twilio_base_url=fake_twilio.base_url,
        twilio_http_timeout=5.0,
        visibility_timeout=VISIBILITY_TIMEOUT,
    ) as started:
        yield started


@pytest.fixture
def fake(fake_twilio: FakeTwilio, workers: Workers) -> Iterator[FakeTwilio]:
    """The module's fake Twilio, with nothing left queued for the workers by an earlier test."""
    celery_app.control.purge()
    cache.delete(NUDGE_KEY)
    yield fake_twilio
    workers.wait_idle()  # nothing of this test's runs into the next one's database


@pytest.fixture
def two_workers(workers: Workers) -> Workers:
    """Both of the module's workers, alive: a test that killed one may have left it dead."""
    for worker in workers:
        if not worker.alive():
            worker.restart()
    return workers


@pytest.fixture
def office(db: None) -> Any:
    office = factories.OfficeFactory.create(slug="alpha", name="Alpha Office", sms_auto_ack_text=ACK_TEXT)
    factories.PhoneNumberFactory.create(office=office, e164=OFFICE_NUMBER)
    return office


# --- instruments in PostgreSQL ------------------------------------------------------------------------------

MESSAGES_TABLE = Message._meta.db_table
assert (MessageStatus.QUEUED.value, MessageStatus.SENDING.value) == ("queued", "sending")  # the triggers' SQL

INSTRUMENTS = f"""
CREATE TABLE race_processed_log (message_id bigint NOT NULL);
CREATE FUNCTION race_processed_log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO race_processed_log (message_id) VALUES (NEW.id); RETURN NULL; END $$;
CREATE TRIGGER race_processed_log AFTER UPDATE OF processed_at ON {MESSAGES_TABLE} FOR EACH ROW
    WHEN (NEW.processed_at IS NOT NULL AND NEW.processed_at IS DISTINCT FROM OLD.processed_at)
    EXECUTE FUNCTION race_processed_log_row();
CREATE FUNCTION race_pause() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(TG_ARGV[0]::float); RETURN NULL; END $$;
CREATE TRIGGER race_pause_mark AFTER UPDATE OF processed_at ON {MESSAGES_TABLE} FOR EACH STATEMENT
    EXECUTE FUNCTION race_pause('{MARK_PAUSE_SECONDS}');
CREATE TRIGGER race_pause_claim AFTER UPDATE OF status ON {MESSAGES_TABLE} FOR EACH ROW
    WHEN (OLD.status = 'queued' AND NEW.status = 'sending')
    EXECUTE FUNCTION race_pause('{CLAIM_PAUSE_SECONDS}');
"""  # noqa: S608 - built from the model's table name and this module's constants
DROP_INSTRUMENTS = f"""
DROP TRIGGER IF EXISTS race_processed_log ON {MESSAGES_TABLE};
DROP TRIGGER IF EXISTS race_pause_mark ON {MESSAGES_TABLE};
DROP TRIGGER IF EXISTS race_pause_claim ON {MESSAGES_TABLE};
DROP FUNCTION IF EXISTS race_processed_log_row();
DROP FUNCTION IF EXISTS race_pause();
DROP TABLE IF EXISTS race_processed_log;
"""


@pytest.fixture(autouse=True)
def instruments(db: None) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(DROP_INSTRUMENTS)  # a run killed mid-test may have left them
        cursor.execute(INSTRUMENTS)
    yield
    with connection.cursor() as cursor:
        cursor.execute(DROP_INSTRUMENTS)


def times_processed() -> Counter[int]:
    """How many committed transactions marked each inbound message processed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT message_id FROM race_processed_log")
        return Counter(row[0] for row in cursor.fetchall())


# --- data ------------------------------------------------------------------------------------------------


def conversation(office: Any, **fields: Any) -> Conversation:
    return factories.ConversationFactory.create(
        constituent=factories.ConstituentFactory.create(office=office), **fields
    )


def pending_text(conversation: Conversation, body: str) -> Message:
    return factories.MessageFactory.create(
        conversation=conversation, body=body, to_number=OFFICE_NUMBER, processed_at=None
    )


def queued_reply(conversation: Conversation, body: str) -> Message:
    """A reply as ``reply_send`` stores it, without publishing its delivery task (the test publishes)."""
    now = timezone.now()
    return factories.MessageFactory.create(
        conversation=conversation,
        direction=Direction.OUTBOUND,
        body=body,
        status=MessageStatus.QUEUED,
        provider_sid=None,
        from_number=OFFICE_NUMBER,
        to_number=conversation.constituent.phone,
        processed_at=None,
        created_at=now,
        status_updated_at=now,
    )


def posts_by_body(fake: FakeTwilio) -> Counter[str]:
    return Counter(request.form["Body"][0] for request in fake.requests_for(ROUTE_CREATE_MESSAGE))


def posts_to(fake: FakeTwilio, number: str) -> int:
    return sum(request.form["To"] == [number] for request in fake.requests_for(ROUTE_CREATE_MESSAGE))


def more_than_once(counts: Counter[Any]) -> dict[Any, int]:
    return {key: count for key, count in counts.items() if count > 1}


# --- races ------------------------------------------------------------------------------------------------

REPLIES = 30
PUBLISHED_TIMES = 3


def test_thirty_replies_each_published_three_times_to_two_workers_are_each_sent_once(
    two_workers: Workers, fake: FakeTwilio, office: Any
) -> None:
    token = factories.sid("")[:8]
    replies = [queued_reply(conversation(office), f"Reply {n} ({token})") for n in range(REPLIES)]
    for reply in replies:  # the duplicates side by side, so both workers take the same message at once
        for _ in range(PUBLISHED_TIMES):
            tasks.message_deliver.apply_async(args=(reply.pk,))

    ids = [reply.pk for reply in replies]
    assert wait_for(lambda: not Message.objects.filter(pk__in=ids, provider_sid=None).exists())
    two_workers.wait_idle()

    posts = {body: n for body, n in posts_by_body(fake).items() if token in body}
    assert more_than_once(Counter(posts)) == {}, "a reply was sent more than once"
    assert set(posts) == {reply.body for reply in replies}
    rows = Message.objects.filter(pk__in=ids)
    assert {row.send_attempts for row in rows} == {1}
    assert len({row.provider_sid for row in rows}) == REPLIES
    at_twilio = fake.messages
    assert all(at_twilio[row.provider_sid or ""]["body"] == row.body for row in rows)  # its own SID


ACK_DUE = 20
STOPS = 6
ACKED_THREADS = 5
TEXTS_PER_ACKED_THREAD = 10


def test_one_inbound_batch_drained_by_two_workers_at_once_is_processed_once_with_one_ack_each(
    two_workers: Workers, fake: FakeTwilio, office: Any
) -> None:
    first_texts = [pending_text(conversation(office), "Hello, about the bus route") for _ in range(ACK_DUE)]
    stops = [
        pending_text(conversation(office, auto_ack_sent_at=timezone.now()), "STOP") for _ in range(STOPS)
    ]
    plain = [
        pending_text(thread, f"More about the bus route, part {n}")
        for thread in [conversation(office, auto_ack_sent_at=timezone.now()) for _ in range(ACKED_THREADS)]
        for n in range(TEXTS_PER_ACKED_THREAD)
    ]
    texts = first_texts + stops + plain

    tasks.inbound_drain.apply_async()  # as the webhook's nudge and the sweeper both may
    tasks.inbound_drain.apply_async()
    ids = [text.pk for text in texts]
    assert wait_for(lambda: not Message.objects.filter(pk__in=ids, processed_at=None).exists())
    acked_threads = [text.conversation for text in first_texts]
    numbers = [thread.constituent.phone for thread in acked_threads]
    assert wait_for(lambda: all(posts_to(fake, number) for number in numbers))
    two_workers.wait_idle()

    processed = times_processed()
    assert more_than_once(processed) == {}, "a text was processed more than once"
    assert set(processed) == set(ids)
    acks = Counter(
        Message.objects.filter(direction=Direction.OUTBOUND, body=ACK_TEXT).values_list(
            "conversation_id", flat=True
        )
    )
    assert acks == Counter({thread.pk: 1 for thread in acked_threads})
    assert {number: posts_to(fake, number) for number in numbers} == dict.fromkeys(numbers, 1)
    stopped = [text.conversation.constituent for text in stops]
    consent_changes = Counter(
        ConsentEvent.objects.filter(new=SmsConsent.OPTED_OUT).values_list("constituent_id", flat=True)
    )
    assert consent_changes == Counter({constituent.pk: 1 for constituent in stopped})
    consent_events = Counter(
        ConversationEvent.objects.filter(kind=EventKind.CONSENT).values_list("conversation_id", flat=True)
    )
    assert consent_events == Counter({text.conversation_id: 1 for text in stops})


SNOOZED = 150


def test_due_snoozes_woken_by_two_workers_at_once_end_once_each(
    two_workers: Workers, fake: FakeTwilio, office: Any
) -> None:
    due = timezone.now() - timedelta(minutes=1)
    threads = [
        conversation(office, status=ConversationStatus.SNOOZED, snoozed_until=due) for _ in range(SNOOZED)
    ]
    tasks.snoozed_conversations_wake.apply_async()  # two beat ticks overlapping
    tasks.snoozed_conversations_wake.apply_async()
    ids = [thread.pk for thread in threads]
    assert wait_for(
        lambda: not Conversation.objects.filter(pk__in=ids, status=ConversationStatus.SNOOZED).exists()
    )
    two_workers.wait_idle()

    wake_ups = Counter(
        ConversationEvent.objects.filter(
            kind=EventKind.STATUS, conversation_id__in=ids, data__reason="snooze ended"
        ).values_list("conversation_id", flat=True)
    )
    assert more_than_once(wake_ups) == {}, "a snooze ended more than once"
    assert set(wake_ups) == set(ids)
    assert set(Conversation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        ConversationStatus.OPEN
    }


# --- SIGKILL mid-task ---------------------------------------------------------------------------------------

HOLD_SECONDS = 30.0  # the fake answers the victim's send only after this long: it is dead well before


def test_worker_killed_mid_send_never_resends_and_the_reconciler_records_the_sid_twilio_has(
    two_workers: Workers, fake: FakeTwilio, office: Any
) -> None:
    reply = queued_reply(conversation(office), "We are looking into the bus route.")
    fake.script(Scripted.slow(HOLD_SECONDS), route=ROUTE_CREATE_MESSAGE)  # takes effect at once, answers late
    task_id = tasks.message_deliver.apply_async(args=(reply.pk,)).id
    assert wait_for(lambda: posts_by_body(fake)[reply.body] == 1)
    victim = two_workers.which_received(task_id)
    victim.kill(signal.SIGKILL)
    (survivor,) = [worker for worker in two_workers if worker is not victim]
    (sid,) = [sid for sid, message in fake.messages.items() if message["body"] == reply.body]

    reply.refresh_from_db()
    assert (reply.status, reply.provider_sid) == (MessageStatus.SENDING, None)
    # A sweep must not re-enqueue it (a "sending" row is never resent), before or after it goes stale...
    report = sweep()
    assert (report.outbound_requeued, report.marked_unknown) == (0, 0)
    # ...nor may the task that Redis hands to the other worker send it again.
    assert wait_for(lambda: survivor.received(task_id), timeout=VISIBILITY_TIMEOUT + 5)
    two_workers.wait_idle()
    assert posts_by_body(fake)[reply.body] == 1, "the redelivered task sent it again"
    reply.refresh_from_db()
    assert (reply.status, reply.provider_sid) == (MessageStatus.SENDING, None)

    fake.set_message_status(sid, "sent")
    report = sweep(now=timezone.now() + SENDING_STALE_AFTER + timedelta(seconds=1))
    assert (report.outbound_requeued, report.marked_unknown, report.reconciles_queued) == (0, 1, 1)
    assert wait_for(lambda: Message.objects.filter(pk=reply.pk, provider_sid=sid).exists())
    two_workers.wait_idle()

    reply.refresh_from_db()
    assert (reply.status, reply.provider_sid, reply.send_attempts) == (MessageStatus.SENT, sid, 1)
    assert posts_by_body(fake)[reply.body] == 1
    assert any(
        request.query.get("To") == [reply.to_number] for request in fake.requests_for(ROUTE_LIST_MESSAGES)
    )


@contextmanager
def conversation_locked(pk: int) -> Iterator[None]:
    """Hold the thread's row lock in this test's connection, so a worker's auto-ack waits for it."""
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=pk)
        yield


def lock_waiters() -> int:
    """Sessions on this test database waiting for a lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first reading again
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone() or (0,)
        return int(count)


def message_unlocked(pk: int) -> bool:
    """Whether no transaction holds the message's row lock (a killed worker's one has rolled back)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {MESSAGES_TABLE} WHERE id = %s FOR UPDATE SKIP LOCKED", [pk])  # noqa: S608 - the table name is the model's
        return cursor.fetchone() is not None


def test_worker_killed_mid_processing_leaves_the_text_to_be_processed_once_with_one_ack(
    workers: Workers, fake: FakeTwilio, office: Any
) -> None:
    thread = conversation(office)
    text = pending_text(thread, "Hello, about the bus route")
    with conversation_locked(thread.pk):
        task_id = tasks.inbound_drain.apply_async().id
        assert wait_for(lambda: lock_waiters() > 0)  # the worker is inside inbound_process, at the ack
        victim = workers.which_received(task_id)
        victim.kill(signal.SIGKILL)
    assert wait_for(lambda: message_unlocked(text.pk))  # the dead worker's transaction rolled back
    text.refresh_from_db()
    assert text.processed_at is None
    assert not Message.objects.filter(conversation=thread, direction=Direction.OUTBOUND).exists()

    victim.restart()
    # The drain comes back from Redis to a live worker (the restarted one, or the other if it runs) and
    # processes the text.
    assert wait_for(
        lambda: sum(worker.times_received(task_id) for worker in workers) == 2,
        timeout=VISIBILITY_TIMEOUT + 5,
    )
    assert wait_for(lambda: posts_to(fake, thread.constituent.phone) == 1)
    workers.wait_idle()
    report = sweep(now=timezone.now() + timedelta(minutes=2))
    assert report.inbound_requeued == 0
    workers.wait_idle()

    assert times_processed() == Counter({text.pk: 1})
    acks = Message.objects.filter(conversation=thread, direction=Direction.OUTBOUND)
    assert [(ack.body, ack.status) for ack in acks] == [(ACK_TEXT, MessageStatus.SENDING)]
    assert posts_to(fake, thread.constituent.phone) == 1


def test_a_text_that_kills_every_worker_processing_it_is_dead_lettered_and_the_text_after_it_processed(
    workers: Workers, fake: FakeTwilio, office: Any
) -> None:
    """The oldest pending text kills the worker at every start (here: a held row lock and a SIGKILL). Each
    start is counted before the work, so after CELERY_TASK_MAX_DELIVERIES deaths the next drain dead-letters
    the text instead of dying on it again, and processes the text behind it."""
    worker, other = workers
    if other.alive():
        other.kill(signal.SIGKILL)  # one worker: the one to kill is always the one running the drain
    limit = settings.CELERY_TASK_MAX_DELIVERIES
    poison_thread, later_thread = conversation(office), conversation(office)
    poison = pending_text(poison_thread, "The text no worker survives")
    later = pending_text(later_thread, "A text behind it")

    task_id = tasks.inbound_drain.apply_async().id
    for start in range(1, limit + 1):
        with conversation_locked(poison_thread.pk):
            if not worker.alive():
                worker.restart(wait=False)  # the killed drain comes back from Redis to it, and blocks
            assert wait_for(lambda: lock_waiters() > 0, timeout=VISIBILITY_TIMEOUT + 10)
            worker.kill(signal.SIGKILL)
        assert wait_for(lambda: message_unlocked(poison.pk))
        poison.refresh_from_db()
        assert (poison.processing_starts, poison.processed_at) == (start, None)
    later.refresh_from_db()
    assert later.processed_at is None  # held up behind the text that kills its workers

    with conversation_locked(poison_thread.pk):  # the text would still kill whatever worker processed it
        worker.restart()  # the drain comes back once more, and is dead-lettered itself (not run)
        assert wait_for(
            lambda: DeadLetter.objects.filter(task_id=task_id).exists(), timeout=VISIBILITY_TIMEOUT + 9
        )
        sweep(now=timezone.now() + timedelta(minutes=2))  # a new drain, as the sweeper publishes
        assert wait_for(lambda: posts_to(fake, later_thread.constituent.phone) == 1)
        assert lock_waiters() == 0  # the new drain never reached the text's work
    workers.wait_idle()

    later.refresh_from_db()
    poison.refresh_from_db()
    assert later.processed_at is not None
    assert (poison.processing_starts, poison.processed_at) == (limit + 1, None)
    letter = DeadLetter.objects.get(task_name=DEAD_LETTER_TASK_NAME)
    assert (letter.args, letter.deliveries) == ([poison.pk], limit + 1)
    assert posts_to(fake, poison_thread.constituent.phone) == 0
    assert sweep(now=timezone.now() + timedelta(minutes=2)).inbound_requeued == 0  # not pending any more
