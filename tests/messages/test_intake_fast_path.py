"""The inbound-text hot path: few statements per webhook, batch processing, the coalesced worker nudge.

docs/performance.md ("SMS ingest") measures why these matter; these tests pin the behaviour, not the speed.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common import queueing
from constituents.models import Constituent, SmsConsent
from constituents.services import LocationHints, constituent_ref_for_phone
from messages.models import Conversation, ConversationStatus, Message
from messages.services import inbound_queue
from messages.services.processing import inbound_process_batch
from offices.selectors import office_number_route_for, office_number_routes_clear
from tests import factories
from tests.messages.twilio.webhook import SMS_PATH, fixture
from tests.plans import as_never_analyzed

pytestmark = pytest.mark.django_db


def _sid(n: int) -> str:
    return f"SM{n:032x}"


def _text(post_signed: Any, n: int, *, sender: str = "+14155550123", body: str = "Hello") -> Message:
    response = post_signed(
        SMS_PATH, fixture("sms_received__basic", MessageSid=_sid(n), From=sender, Body=body)
    )
    assert response.status_code == 200
    return Message.objects.get(provider_sid=_sid(n))


def _data_statements(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"))
    ]


def test_a_returning_constituents_text_is_one_statement(
    phone_number: Any, post_signed: Any, settings: Any
) -> None:
    settings.OFFICE_NUMBER_CACHE_SECONDS = 60  # as deployed: the number's route is cached per process
    office_number_routes_clear()
    first = _text(post_signed, 1)
    with CaptureQueriesContext(connection) as queries:
        second = _text(post_signed, 2)
    # The Message.objects.get in _text is the test's own read; the webhook's statements come before it.
    statements = _data_statements(queries)[:-1]
    assert len(statements) == 1, statements  # SID check, constituent, thread, message and summary in one
    office_number_routes_clear()
    assert second.conversation_id == first.conversation_id
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert conversation.last_message_preview == "Hello"
    assert conversation.last_inbound_at == second.created_at


def test_a_first_text_is_one_statement_too(phone_number: Any, post_signed: Any, settings: Any) -> None:
    """A call-in day brings thousands of new numbers: their first text starts the constituent and the thread
    in the same single statement, with the thread's inbox summary written as a touch would write it."""
    settings.OFFICE_NUMBER_CACHE_SECONDS = 60
    office_number_routes_clear()
    _text(post_signed, 1, sender="+14155550100")  # caches the number's route
    with CaptureQueriesContext(connection) as queries:
        first = _text(post_signed, 2, body="Vote  no\non HB 12")
    statements = _data_statements(queries)[:-1]
    office_number_routes_clear()
    assert len(statements) == 1, statements
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert conversation.constituent.phone == "+14155550123"
    assert conversation.constituent.carrier_city == "SAN FRANCISCO"
    assert (conversation.office_id, conversation.status) == (phone_number.office_id, ConversationStatus.OPEN)
    assert conversation.created_at == conversation.last_activity_at == first.created_at
    assert conversation.last_inbound_at == first.created_at
    assert conversation.last_message_preview == "Vote no on HB 12"
    assert conversation.last_message_channel == "sms"
    assert conversation.is_unread
    assert (conversation.assignee_id, conversation.queue_id, conversation.closed_at) == (None, None, None)


def test_a_text_long_after_a_thread_closed_starts_a_new_one_in_one_statement(
    phone_number: Any, post_signed: Any, settings: Any
) -> None:
    first = _text(post_signed, 1)
    closed_at = timezone.now() - timedelta(hours=settings.CONVERSATION_REOPEN_WINDOW_HOURS + 1)
    Conversation.objects.filter(pk=first.conversation_id).update(
        status=ConversationStatus.CLOSED, closed_at=closed_at
    )
    settings.OFFICE_NUMBER_CACHE_SECONDS = 60
    office_number_routes_clear()
    _text(post_signed, 2, sender="+14155550100")  # caches the number's route
    with CaptureQueriesContext(connection) as queries:
        second = _text(post_signed, 3)
    statements = _data_statements(queries)[:-1]
    office_number_routes_clear()
    assert len(statements) == 1, statements
    assert second.conversation_id != first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).status == ConversationStatus.CLOSED
    assert Conversation.objects.get(pk=second.conversation_id).status == ConversationStatus.OPEN


def test_a_text_reopens_a_recently_closed_thread_and_wakes_a_snoozed_one(
    phone_number: Any, post_signed: Any
) -> None:
    first = _text(post_signed, 1)
    Conversation.objects.filter(pk=first.conversation_id).update(
        status=ConversationStatus.CLOSED, closed_at=timezone.now() - timedelta(hours=1)
    )
    second = _text(post_signed, 2)
    assert second.conversation_id == first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).status == ConversationStatus.OPEN

    Conversation.objects.filter(pk=first.conversation_id).update(
        status=ConversationStatus.SNOOZED, snoozed_until=timezone.now() + timedelta(days=1)
    )
    _text(post_signed, 3)
    woken = Conversation.objects.get(pk=first.conversation_id)
    assert (woken.status, woken.snoozed_until) == (ConversationStatus.OPEN, None)


def test_location_hints_fill_blanks_and_never_overwrite(office: Any) -> None:
    hints = LocationHints(city="OAKLAND", state="CA", zip_code="94607")
    ref = constituent_ref_for_phone(office_id=office.pk, phone="+15105550100", hints=hints)
    assert ref.created
    Constituent.objects.filter(pk=ref.id).update(carrier_city="BERKELEY", carrier_zip="")
    again = constituent_ref_for_phone(
        office_id=office.pk, phone="+15105550100", hints=LocationHints(city="FRESNO", zip_code="93650")
    )
    assert (again.id, again.created) == (ref.id, False)
    row = Constituent.objects.get(pk=ref.id)
    assert (row.carrier_city, row.carrier_state, row.carrier_zip) == ("BERKELEY", "CA", "93650")


def test_the_same_phone_in_two_offices_is_two_constituents(office: Any) -> None:
    other = factories.OfficeFactory.create(slug="beta")
    a = constituent_ref_for_phone(office_id=office.pk, phone="+15105550100")
    b = constituent_ref_for_phone(office_id=other.pk, phone="+15105550100")
    assert a.id != b.id
    assert Constituent.objects.get(pk=b.id).office_id == other.pk


def test_batch_marks_plain_texts_and_fully_processes_the_others(phone_number: Any, post_signed: Any) -> None:
    office = phone_number.office
    office.sms_auto_ack_text = "Thanks for writing."
    office.save()
    first = _text(post_signed, 1, body="Please vote no")  # first of its thread: the ack is due
    Conversation.objects.filter(pk=first.conversation_id).update(auto_ack_sent_at=timezone.now())
    plain = _text(post_signed, 2, body="Also, fix the bridge")  # acked thread, no keyword: nothing to do
    stop = _text(post_signed, 3, body=" stop ")  # keyword: consent changes
    newcomer = _text(post_signed, 4, sender="+14155550199", body="Hi")  # new thread: ack due

    processed = inbound_process_batch(message_ids=[first.pk, plain.pk, stop.pk, newcomer.pk])

    assert processed == 4
    assert not Message.objects.filter(direction="inbound", processed_at__isnull=True).exists()
    assert Constituent.objects.get(pk=stop.conversation.constituent_id).sms_consent == SmsConsent.OPTED_OUT
    # The first thread was marked acked before processing, so only the newcomer is acknowledged.
    acks = Message.objects.filter(direction="outbound").values_list("conversation_id", "body")
    assert list(acks) == [(newcomer.conversation_id, "Thanks for writing.")]
    assert inbound_process_batch(message_ids=[first.pk, plain.pk]) == 0  # already done: nothing again


def test_a_failing_message_is_left_pending_and_does_not_hold_up_the_batch(
    phone_number: Any, post_signed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _text(post_signed, 1, body="HELP")  # a keyword: goes through inbound_process
    fine = _text(post_signed, 2, body="hello")

    def explode(*, message_id: int) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr("messages.services.processing.inbound_process", explode)
    assert inbound_process_batch(message_ids=[broken.pk, fine.pk]) == 1
    assert Message.objects.get(pk=broken.pk).processed_at is None  # the sweeper retries it
    assert Message.objects.get(pk=fine.pk).processed_at is not None


def test_drain_processes_everything_pending_across_batches(phone_number: Any, post_signed: Any) -> None:
    texts = [_text(post_signed, n, sender=f"+1415555{n:04d}") for n in range(1, 8)]
    assert inbound_queue.inbound_drain(batch_size=3) == len(texts)
    assert not Message.objects.filter(direction="inbound", processed_at__isnull=True).exists()
    assert inbound_queue.inbound_drain(batch_size=3) == 0


def test_drain_pauses_after_a_short_batch_instead_of_busy_polling(
    phone_number: Any, post_signed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 8):
        _text(post_signed, n, sender=f"+1415555{n:04d}")
    pauses: list[float] = []
    monkeypatch.setattr("messages.services.inbound_queue.time.sleep", pauses.append)
    assert inbound_queue.inbound_drain(batch_size=3, pause_seconds=0.25) == 7
    assert pauses == [0.25]  # full batches of 3 and 3 run back to back; the short one (1) pauses once


def test_nudges_coalesce_into_one_published_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[str] = []

    def enqueue(task: Any, *args: Any, **kwargs: Any) -> bool:
        published.append(task.name)
        return True

    monkeypatch.setattr("common.queueing.enqueue", enqueue)
    cache.delete(inbound_queue.NUDGE_KEY)
    assert [inbound_queue.inbound_nudge() for _ in range(5)] == [True, False, False, False, False]
    assert published == ["messages.tasks.inbound_drain"]
    # The drain clears the key first, so a text committed while it runs nudges a successor.
    inbound_queue.inbound_drain()
    assert inbound_queue.inbound_nudge() is True
    assert len(published) == 2
    cache.delete(inbound_queue.NUDGE_KEY)


def test_a_process_that_saw_a_drain_on_its_way_skips_the_round_trip(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.INBOUND_NUDGE_MEMO_SECONDS = 30
    round_trips: list[str] = []
    key_set = queueing._key_set

    def counted(key: str, seconds: int) -> bool:
        round_trips.append(key)
        return key_set(key, seconds)

    monkeypatch.setattr("common.queueing._key_set", counted)
    monkeypatch.setattr("common.queueing.enqueue", lambda *args, **kw: True)
    queueing.nudge_clear(inbound_queue.NUDGE_KEY)
    assert [inbound_queue.inbound_nudge() for _ in range(5)] == [True, False, False, False, False]
    assert len(round_trips) == 1  # the other four trusted what this process saw
    # Another process's key counts as seen too.
    queueing.nudge_clear(inbound_queue.NUDGE_KEY)
    cache.set(inbound_queue.NUDGE_KEY, 1, timeout=10)
    assert [inbound_queue.inbound_nudge() for _ in range(3)] == [False, False, False]
    assert len(round_trips) == 2
    # A drain's own successor nudge never trusts the memo.
    assert inbound_queue.inbound_nudge(memo=False) is False
    assert len(round_trips) == 3
    queueing.nudge_clear(inbound_queue.NUDGE_KEY)


def test_the_drain_reads_from_the_start_until_the_memo_time_has_passed(
    phone_number: Any, post_signed: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook that trusted its memo did not nudge; a text can commit after higher ids were read."""
    settings.INBOUND_NUDGE_MEMO_SECONDS = 0.3
    texts = [_text(post_signed, n, sender=f"+1415555{n:04d}") for n in range(1, 4)]
    real_sleep = time.sleep
    late: list[int] = []

    def sleep(seconds: float) -> None:
        if not late:  # the lowest id becomes pending again, as a transaction committing late would
            Message.objects.filter(pk=texts[0].pk).update(processed_at=None)
            late.append(texts[0].pk)
        real_sleep(seconds)

    monkeypatch.setattr("messages.services.inbound_queue.time.sleep", sleep)
    started = time.monotonic()
    assert inbound_queue.inbound_drain(batch_size=10, pause_seconds=0.05) == 4
    assert time.monotonic() - started >= 0.3
    assert late
    assert not Message.objects.filter(direction="inbound", processed_at__isnull=True).exists()


def test_a_text_that_fails_is_tried_once_per_drain_however_long_it_reads(
    phone_number: Any, post_signed: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INBOUND_NUDGE_MEMO_SECONDS = 0.3
    broken = _text(post_signed, 1, body="HELP")  # a keyword: goes through inbound_process
    _text(post_signed, 2, sender="+14155550999")
    attempts: list[int] = []

    def explode(*, message_id: int) -> bool:
        attempts.append(message_id)
        raise RuntimeError("boom")

    monkeypatch.setattr("messages.services.processing.inbound_process", explode)
    assert inbound_queue.inbound_drain(pause_seconds=0.05) == 1
    assert attempts == [broken.pk]  # left for the sweeper, not retried by every pass from the start
    assert Message.objects.get(pk=broken.pk).processed_at is None


def test_a_failed_publish_clears_the_nudge_so_the_next_text_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    cache.delete(inbound_queue.NUDGE_KEY)
    monkeypatch.setattr("common.queueing.enqueue", lambda *args, **kw: False)  # broker down
    assert inbound_queue.inbound_nudge() is False
    assert cache.get(inbound_queue.NUDGE_KEY) is None


def test_a_nudge_never_raises_when_the_cache_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("redis down")

    monkeypatch.setattr("common.queueing._key_set", down)
    assert inbound_queue.inbound_nudge() is False


def test_number_routes_are_cached_for_their_ttl(phone_number: Any, settings: Any) -> None:
    settings.OFFICE_NUMBER_CACHE_SECONDS = 60
    office_number_routes_clear()
    try:
        route = office_number_route_for(e164=phone_number.e164)
        assert route is not None
        assert route.office_id == phone_number.office_id
        assert office_number_route_for(e164="+14155559999") is None
        other = factories.OfficeFactory.create(slug="beta")
        phone_number.office = other
        phone_number.save()
        factories.PhoneNumberFactory.create(office=other, e164="+14155559999")
        with CaptureQueriesContext(connection) as queries:
            assert office_number_route_for(e164=phone_number.e164) == route  # cached: no query
            assert office_number_route_for(e164="+14155559999") is None  # unknown numbers too
        assert len(queries) == 0
        office_number_routes_clear()  # as if the TTL had passed
        moved = office_number_route_for(e164=phone_number.e164)
        assert moved is not None
        assert moved.office_id == other.pk
    finally:
        office_number_routes_clear()


def test_the_prepared_intake_statement_uses_the_indexes_in_its_generic_plan(
    phone_number: Any, post_signed: Any
) -> None:
    """A prepared statement soon runs a generic plan, which cannot assume anything about the parameters: a
    partial index is usable only if the statement itself implies its predicate. Every lookup of the
    one-statement intake must still be an index lookup on the right index (not a scan of the office)."""
    import json
    import re

    from messages.services.intake import _fast_sql

    _text(post_signed, 1)  # a constituent with an open thread
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    statement = re.sub(r"%\((\w+)\)s", placeholder, _fast_sql())
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute("SET enable_seqscan = off")
        as_never_analyzed(cursor)
        try:
            cursor.execute(f"PREPARE intake_generic AS {statement}")
            cursor.execute(
                f"EXPLAIN (FORMAT JSON) EXECUTE intake_generic({', '.join(['NULL'] * len(names))})"
            )
            plan = json.dumps(cursor.fetchone()[0])
        finally:
            cursor.execute("DEALLOCATE ALL")
            cursor.execute("RESET plan_cache_mode")
            cursor.execute("RESET enable_seqscan")
    scans = re.findall(r'"Index Name": "([^"]+)"', plan)
    assert "constituent_phone_unique_per_office" in scans, scans
    assert "constituents_constituent_office_id_e0f2d63c" not in scans, scans
    assert "conversation_one_unclosed_per_constituent" in scans, scans
    assert any("provider_sid" in name for name in scans), scans  # either index on the SID answers it
    assert '"Seq Scan"' not in plan


def test_the_intake_statement_is_really_prepared_and_reused(phone_number: Any, post_signed: Any) -> None:
    """Django opens connections with psycopg's ``prepare_threshold=None``, under which ``prepare=True`` is
    silently ignored and PostgreSQL plans the statement on every text (more than its execution costs)."""
    from messages.services.intake import _fast_sql

    opening = _fast_sql().split("%(")[0]  # "WITH dup AS (SELECT id FROM <messages> WHERE provider_sid = "
    for n in range(1, 5):
        _text(post_signed, n)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE starts_with(statement, %s)",
            [opening],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, "the intake statement is not prepared on this connection"
    assert rows[0][0] >= 4  # one per text: prepared once, executed again by name


def test_prepared_statements_can_be_turned_off_for_poolers(
    phone_number: Any, post_signed: Any, settings: Any
) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False
    _text(post_signed, 1)
    second = _text(post_signed, 2)
    assert second.conversation.messages.count() == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_a_thread_is_never_left_without_its_message(phone_number: Any) -> None:
    """The one way the statement could start a thread but not store the message: another copy of the SID,
    from another sender, commits first while the statement waits on the SID's index. The statement then
    fails whole, and the slow path answers with the copy that won."""
    import threading

    from django.db import connections, transaction

    from tests.messages.twilio.webhook import post_signed_in_parallel

    sid = _sid(7)
    holding, release = threading.Event(), threading.Event()

    def first_copy() -> None:  # stores the SID from +14155550123 and holds its transaction open
        try:
            with transaction.atomic():
                factories.MessageFactory.create(
                    conversation__constituent__office=phone_number.office, provider_sid=sid
                )
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=first_copy)
    holder.start()
    assert holding.wait(10)
    result: list[list[int]] = []
    poster = threading.Thread(
        target=lambda: result.append(
            post_signed_in_parallel(
                SMS_PATH, [fixture("sms_received__basic", MessageSid=sid, From="+12025550199")], threads=1
            )
        )
    )
    poster.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the new sender's statement waits on the SID
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND starts_with(query, 'WITH dup AS')"
            )
            if cursor.fetchone()[0]:
                break
        time.sleep(0.02)
    else:
        raise AssertionError("the intake statement never waited on the SID")
    release.set()
    holder.join(10)
    poster.join(10)
    assert result == [[200]]
    assert Message.objects.filter(provider_sid=sid).count() == 1
    newcomer = Constituent.objects.filter(phone="+12025550199")
    assert not Conversation.objects.filter(constituent__in=newcomer).exists()
