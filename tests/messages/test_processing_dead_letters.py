"""An inbound text whose processing never finishes is dead-lettered after CELERY_TASK_MAX_DELIVERIES starts,
and never holds up the texts after it (messages.services.processing).

Here processing fails by raising (a PostgreSQL trigger refuses to mark one text processed); a worker that
dies under it counts the same way, because each start is counted before the work, in its own statement
(tests/messages/test_worker_races.py kills real workers on a text).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.models import DeadLetter
from messages.models import Direction, Message
from messages.services.inbound_queue import inbound_drain
from messages.services.processing import DEAD_LETTER_TASK_NAME, inbound_process_pending
from messages.services.sweeper import sweep
from tests import factories

pytestmark = pytest.mark.django_db

ACK_TEXT = "Thanks for writing to the office."
TABLE = Message._meta.db_table


@pytest.fixture
def office(phone_number: Any) -> Any:
    office = phone_number.office
    office.sms_auto_ack_text = ACK_TEXT
    office.save()
    return office


def text(office: Any, phone: str, body: str) -> Message:
    constituent = factories.ConstituentFactory.create(office=office, phone=phone)
    conversation = factories.ConversationFactory.create(constituent=constituent)
    return factories.MessageFactory.create(
        conversation=conversation,
        body=body,
        direction=Direction.INBOUND,
        to_number="+14155550100",
        from_number=phone,
        processed_at=None,
        created_at=timezone.now() - timedelta(minutes=5),
    )


@pytest.fixture
def failing(office: Any) -> Message:
    """A text (the oldest pending) whose processing always fails: marking it processed raises."""
    poison = text(office, "+12025550111", "The text that always fails")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_processed() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER refuse_processed BEFORE UPDATE OF processed_at ON {TABLE} FOR EACH ROW "
            f"WHEN (NEW.id = {int(poison.pk)} AND NEW.processed_at IS NOT NULL) "
            "EXECUTE FUNCTION refuse_processed()"
        )
    return poison  # the trigger goes with the test's transaction


def acks_to(phone: str) -> int:
    return Message.objects.filter(direction=Direction.OUTBOUND, to_number=phone, body=ACK_TEXT).count()


def test_a_text_that_always_fails_is_dead_lettered_after_max_starts_and_the_texts_after_it_are_processed(
    office: Any, failing: Message
) -> None:
    later = text(office, "+12025550112", "A later text")
    limit = settings.CELERY_TASK_MAX_DELIVERIES

    for start in range(1, limit + 1):
        inbound_drain(budget_seconds=1.0, pause_seconds=0.0)
        failing.refresh_from_db()
        assert (failing.processing_starts, failing.processed_at) == (start, None)
    later.refresh_from_db()
    assert later.processed_at is not None  # a failure never held it up
    assert (acks_to(later.from_number), acks_to(failing.from_number)) == (1, 0)
    assert not DeadLetter.objects.exists()
    assert sweep(now=timezone.now()).inbound_requeued == 1  # still pending: the sweeper starts a drain

    inbound_drain(budget_seconds=1.0, pause_seconds=0.0)  # the start past the limit is not run
    failing.refresh_from_db()
    assert (failing.processing_starts, failing.processed_at) == (limit + 1, None)
    letter = DeadLetter.objects.get()
    assert (letter.task_name, letter.task_id, letter.args, letter.deliveries) == (
        DEAD_LETTER_TASK_NAME,
        f"inbound-message-{failing.pk}",
        [failing.pk],
        limit + 1,
    )
    # Dead-lettered, it is no longer pending: no sweep starts a drain for it, and no drain counts it again.
    assert sweep(now=timezone.now()).inbound_requeued == 0
    inbound_drain(budget_seconds=1.0, pause_seconds=0.0)
    failing.refresh_from_db()
    assert failing.processing_starts == limit + 1
    assert acks_to(failing.from_number) == 0


def test_a_text_processed_at_its_first_start_counts_one_start(office: Any) -> None:
    one = text(office, "+12025550113", "Hello")
    inbound_drain(budget_seconds=1.0, pause_seconds=0.0)
    one.refresh_from_db()
    assert one.processed_at is not None
    assert one.processing_starts == 1
    assert acks_to(one.from_number) == 1


@pytest.mark.django_db(transaction=True)
def test_a_text_another_drain_is_processing_is_neither_counted_nor_processed_again(office: Any) -> None:
    one = text(office, "+12025550114", "Hello")
    held, release = threading.Event(), threading.Event()

    def other_drain() -> None:  # holds the row as inbound_process does, in its own connection
        try:
            with transaction.atomic():
                Message.objects.select_for_update().get(pk=one.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=other_drain)
    holder.start()
    try:
        assert held.wait(5)
        assert inbound_process_pending(after=0, limit=10) == (one.pk, 0)
    finally:
        release.set()
        holder.join()
    one.refresh_from_db()
    assert (one.processing_starts, one.processed_at) == (0, None)
